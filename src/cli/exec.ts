import os from 'node:os';
import { parseArgs, UsageError } from './args.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { BROKEN_PIPE_STATUS, CLIENT_HELP, CLIENT_OPTIONS, clientFrom, EXIT, outputBroken, reportError, takeAgent } from './common.js';

export const help = `Usage: wirekit exec [options] [--] CMD [ARGS...]

Runs CMD on the daemon's machine. Local stdin goes to its stdin (end-of-file included), its
stdout and stderr come out on the local ones, and wirekit exits with its exit code. On an
Overlord ghost (an agent listed as unauthenticated) stdout and stderr arrive merged on stdout,
and signals are not passed on.

Options:
  -C, --cwd DIR        working directory of the program
  -e, --env NAME=VAL   set an environment variable (repeatable)
  -n, --no-stdin       do not read local stdin (the program sees end-of-file at once)
${CLIENT_HELP}

Exit status: the program's exit code; 128+N when killed by signal N; 127 when the program does not
exist and 126 when it is not executable (as in a shell); 141 when local stdout or stderr is a
closed pipe (as for a program killed by SIGPIPE: \`wirekit exec -- yes | head -1\` ends the session
quietly); 255 when the session failed; 3 when the daemon is unreachable; 2 on bad arguments.`;

/** Exit statuses for programs that could not be started, as a shell reports them. */
const SPAWN_STATUS: Record<string, number> = { WK_NO_PROGRAM: 127, WK_NOT_EXECUTABLE: 126 };

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { ...CLIENT_OPTIONS, cwd: { type: 'string', short: 'C' }, env: { type: 'string', short: 'e', multiple: true }, 'no-stdin': { type: 'boolean', short: 'n' } }, { stopAtPositional: true });
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length === 0) throw new UsageError('exec needs a command (wirekit exec -- CMD ARGS...)');
  const env: Record<string, string> = {};
  for (const kv of (p.flags.env as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--env needs NAME=VALUE, got ${JSON.stringify(kv)}`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const client = clientFrom(p);
  const noStdin = p.flags['no-stdin'] === true;
  let s;
  try {
    s = await client.exec(p.positionals, { cwd: p.flags.cwd as string | undefined, env: Object.keys(env).length ? env : undefined, endInput: noStdin });
  } catch (err) {
    const status = err instanceof RemoteCommandError ? SPAWN_STATUS[err.remoteCode ?? ''] : undefined;
    if (status === undefined) throw err;
    reportError('exec', err);
    return status;
  }
  s.stdout.pipe(process.stdout);
  s.stderr.pipe(process.stderr);
  if (!noStdin) {
    process.stdin.pipe(s.stdin);
  }
  const forward = (sig: NodeJS.Signals) => s.signal(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  process.on('SIGHUP', forward);
  // A closed local output (`| head`) ends the session (the daemon kills the program) quietly.
  const broken = outputBroken([process.stdout, process.stderr]).then(() => BROKEN_PIPE_STATUS);
  try {
    const ended = await Promise.race([s.exit.then(async (status) => {
      await Promise.all([flushed(s.stdout, process.stdout), flushed(s.stderr, process.stderr)]);
      return status;
    }), broken]);
    if (typeof ended === 'number') {
      s.close();
      return ended;
    }
    const status = ended;
    if (status.code !== null) return status.code;
    const n = status.signal ? (os.constants.signals as Record<string, number>)[status.signal] : undefined;
    return n ? 128 + n : EXIT.SESSION_FAILED;
  } finally {
    process.stdin.unpipe(s.stdin);
    process.stdin.pause();
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    process.off('SIGHUP', forward);
  }
}

function flushed(src: NodeJS.ReadableStream & { readableEnded?: boolean }, dst: NodeJS.WritableStream & { writableLength?: number }): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!dst.writableLength) resolve();
      else dst.once('drain', resolve);
    };
    if (src.readableEnded) check();
    else src.once('end', check);
  });
}

import os from 'node:os';
import { parseArgs, UsageError } from './args.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { BROKEN_PIPE_STATUS, CLIENT_HELP, CLIENT_OPTIONS, clientFrom, EscapeScanner, EXIT, INTERRUPT_AGAIN_MS, outputBroken, reportError, takeAgent } from './common.js';

export const help = `Usage: wirekit exec [options] [--] CMD [ARGS...]

Runs CMD on the daemon's machine. Local stdin goes to its stdin (end-of-file included), its
stdout and stderr come out on the local ones, and wirekit exits with its exit code. On an
Overlord ghost (an agent listed as unauthenticated) stdout and stderr arrive merged on stdout,
and signals are not passed on.

Ctrl-C (SIGINT), SIGTERM and SIGHUP are passed on to the program. A second Ctrl-C within 1 s ends
the session from this side (the daemon kills the program and everything it started) and exits
130, for programs that ignore SIGINT; so does SIGHUP (exit 129). When stdin is a terminal, ~.
typed at the start of a line ends the session too (exit 255), as in ssh (~~ sends one ~).

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
  // Ways to end the session from this side, with the status wirekit then exits with.
  let endHere!: (status: number, message?: string) => void;
  const endedHere = new Promise<number>((resolve) => {
    endHere = (status, message) => {
      if (message) process.stderr.write(`\r\nwirekit exec: ${message}\r\n`);
      resolve(status);
    };
  });
  const stdin = process.stdin;
  const onInput = (d: Buffer) => {
    const { data, escape } = scanner.scan(d);
    if (data.length > 0) s.stdin.write(data);
    if (escape) endHere(EXIT.SESSION_FAILED, 'session closed (~.)');
  };
  const onInputEnd = () => s.stdin.end();
  const scanner = new EscapeScanner();
  if (!noStdin) {
    if (stdin.isTTY) {
      // Typed input: the ssh escape `~.` at the start of a line ends the session.
      stdin.on('data', onInput);
      stdin.once('end', onInputEnd);
    } else stdin.pipe(s.stdin);
  }
  let lastInterrupt = -Infinity;
  const onInterrupt = () => {
    const now = performance.now();
    s.signal('SIGINT');
    // A second Ctrl-C soon after the first: the program did not stop, so stop waiting for it.
    if (now - lastInterrupt <= INTERRUPT_AGAIN_MS) endHere(128 + os.constants.signals.SIGINT, 'interrupted twice, session closed');
    lastInterrupt = now;
  };
  const onTerminate = () => s.signal('SIGTERM');
  // The local terminal is gone: pass the hangup on and leave.
  const onHangup = () => {
    s.signal('SIGHUP');
    endHere(128 + os.constants.signals.SIGHUP);
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  process.on('SIGHUP', onHangup);
  // A closed local output (`| head`) ends the session (the daemon kills the program) quietly.
  const broken = outputBroken([process.stdout, process.stderr]).then(() => BROKEN_PIPE_STATUS);
  try {
    const ended = await Promise.race([
      s.exit.then(async (status) => {
        await Promise.all([flushed(s.stdout, process.stdout), flushed(s.stderr, process.stderr)]);
        return status;
      }),
      broken,
      endedHere,
    ]);
    if (typeof ended === 'number') {
      s.close();
      return ended;
    }
    const status = ended;
    if (status.code !== null) return status.code;
    const n = status.signal ? (os.constants.signals as Record<string, number>)[status.signal] : undefined;
    return n ? 128 + n : EXIT.SESSION_FAILED;
  } finally {
    stdin.unpipe(s.stdin);
    stdin.off('data', onInput);
    stdin.off('end', onInputEnd);
    stdin.pause();
    process.off('SIGINT', onInterrupt);
    // wirekit exits right after: a further Ctrl-C must not turn the chosen status into a signal.
    process.on('SIGINT', () => {});
    process.off('SIGTERM', onTerminate);
    process.off('SIGHUP', onHangup);
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

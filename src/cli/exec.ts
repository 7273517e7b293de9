import os from 'node:os';
import { parseArgs, UsageError, type Spec } from './args.js';
import { runInteractive, sessionEnvFrom } from './interactive.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, EXIT, reportError, takeAgent } from './common.js';

export const help = `Usage: wirekit exec [options] [--] CMD [ARGS...]

Runs CMD with ARGS on the daemon's machine (an argv, not a shell line: for pipes, ; or globs,
run \`wirekit exec -- sh -c 'LINE'\`). Local stdin goes to its stdin (end-of-file included), its
stdout and stderr come out on the local ones, and wirekit exits with its exit code. As with ssh,
the program starts in the user's home directory with a clean environment: HOME, USER, LOGNAME,
SHELL, PATH (/usr/local/bin:/usr/bin:/bin; root's adds the sbin directories), LANG and LC_* from
here, and -e; never the daemon's own. On an Overlord ghost (an agent listed as unauthenticated)
stdout and stderr arrive merged on stdout, signals are not passed on, and the exit code is
approximate (the command prints it after itself; 255 if that is lost); a classic ghost.py gets
no stdin (docs/overlord.md).

Options:
  -C, --cwd DIR        working directory of the program (relative to the home directory;
                       ~ and ~/x expanded); a missing one is WK_NOT_FOUND
  -e, --env NAME=VAL   set an environment variable (repeatable)
  -n, --no-stdin       do not read local stdin (the program sees end-of-file at once)
  -t, --tty            run CMD under a pseudo-terminal, like ssh -t (stdout and stderr merged;
                       TERM set; the escape keys of wirekit shell end the session)
  -i, --interactive    accepted for kubectl's -it: stdin is always passed on unless -n
      --term NAME      with -t: TERM for the remote side (default: $TERM or xterm-256color)
      --escape KEY     with -t: what ends the session (see wirekit help shell)
${CLIENT_HELP}

Exit status: the program's exit code; 128+N when killed by signal N; 127 when the program does not
exist and 126 when it is not executable (as in a shell); 255 when the session failed; 3 when the
daemon is unreachable; 2 on bad arguments.`;

const EXEC_OPTIONS: Spec = {
  ...CLIENT_OPTIONS,
  cwd: { type: 'string', short: 'C' },
  env: { type: 'string', short: 'e', multiple: true },
  'no-stdin': { type: 'boolean', short: 'n' },
  tty: { type: 'boolean', short: 't' },
  interactive: { type: 'boolean', short: 'i' },
  term: { type: 'string' },
  escape: { type: 'string' },
};

/**
 * For one argument that is not a program but looks like a shell command line (`exec 'echo hi;
 * ls'`): exec runs argv, and `sh -c` runs a line.
 */
export function shellLineHint(argv: string[], err: RemoteCommandError): string | undefined {
  if (argv.length !== 1 || err.remoteCode !== 'WK_NO_PROGRAM' || !/[\s;|&<>()$`'"*?]/.test(argv[0]!)) return undefined;
  const quoted = `'${argv[0]!.replace(/'/g, `'\\''`)}'`;
  return `exec runs a program with its arguments (argv), not a shell command line; for a line with spaces or ; | & > $, run it with a shell: wirekit exec -- sh -c ${quoted}`;
}

/** Exit statuses for programs that could not be started, as a shell reports them. */
const SPAWN_STATUS: Record<string, number> = { WK_NO_PROGRAM: 127, WK_NOT_EXECUTABLE: 126 };

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, EXEC_OPTIONS, { stopAtPositional: true });
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length === 0) throw new UsageError('exec needs a command (wirekit exec -- CMD ARGS...)');
  const env = sessionEnvFrom(p);
  const client = clientFrom(p);
  if (p.flags.tty) {
    if (p.flags['no-stdin']) throw new UsageError('-t and -n do not go together (a terminal reads the keyboard)');
    return runInteractive(client, { argv: p.positionals, cwd: p.flags.cwd as string | undefined, env, term: p.flags.term as string | undefined, escape: p.flags.escape as string | undefined });
  }
  const noStdin = p.flags['no-stdin'] === true;
  let s;
  try {
    s = await client.exec(p.positionals, { cwd: p.flags.cwd as string | undefined, env, endInput: noStdin });
  } catch (err) {
    const status = err instanceof RemoteCommandError ? SPAWN_STATUS[err.remoteCode ?? ''] : undefined;
    if (status === undefined) throw err;
    reportError('exec', err);
    const hint = shellLineHint(p.positionals, err as RemoteCommandError);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
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
  try {
    const status = await s.exit;
    await Promise.all([flushed(s.stdout, process.stdout), flushed(s.stderr, process.stderr)]);
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

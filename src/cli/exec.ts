import os from 'node:os';
import { parseArgs, UsageError, type Spec } from './args.js';
import { runInteractive, sessionEnvFrom, statusCode } from './interactive.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { BROKEN_PIPE_STATUS, CLIENT_HELP, CLIENT_OPTIONS, clientFrom, INTERRUPT_AGAIN_MS, outputBroken, reportError, takeAgent } from './common.js';

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

Ctrl-C (SIGINT), SIGTERM and SIGHUP are passed on to the program. A second Ctrl-C within 1 s ends
the session from this side (the daemon kills the program and everything it started) and exits
130, for programs that ignore SIGINT; so does SIGHUP (exit 129). With -t, the escape keys of
wirekit shell (Ctrl-] and ~. at the start of a line) end the session too (exit 255).

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
exist and 126 when it is not executable (as in a shell); 141 when local stdout or stderr is a
closed pipe (as for a program killed by SIGPIPE: \`wirekit exec -- yes | head -1\` ends the session
quietly); 255 when the session failed; 3 when the daemon is unreachable; 2 on bad arguments.`;

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
  // Ways to end the session from this side, with the status wirekit then exits with.
  let endHere!: (status: number, message?: string) => void;
  const endedHere = new Promise<number>((resolve) => {
    endHere = (status, message) => {
      if (message) process.stderr.write(`\r\nwirekit exec: ${message}\r\n`);
      resolve(status);
    };
  });
  const stdin = process.stdin;
  if (!noStdin) stdin.pipe(s.stdin);
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
    return statusCode(ended);
  } finally {
    stdin.unpipe(s.stdin);
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

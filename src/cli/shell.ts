import { parseArgs } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';
import { runInteractive, sessionEnvFrom } from './interactive.js';

export const help = `Usage: wirekit shell [options] [--] [CMD ARGS...]

Opens an interactive login shell (or CMD) under a pseudo-terminal on the daemon's machine, like
ssh. The local terminal is put in raw mode, window-size changes are sent on SIGWINCH, and the
terminal is restored on exit. The program starts in the user's home directory with a clean
environment (HOME, USER, LOGNAME, SHELL, PATH, TERM; LANG and LC_* from here; -e), never the
daemon's own. To end the session from this side, press Ctrl-] or type ~. at the start of a
line (the remote program and everything it started are hung up: SIGHUP, then SIGKILL after 2 s).
On an Overlord ghost (listed as unauthenticated) it is the ghost's own shell (CMD is refused),
and the exit status is 0 when the ghost ends the session (a ghost reports none).

Options:
  -C, --cwd DIR        start in DIR (relative to the home directory; ~ and ~/x expanded)
  -e, --env NAME=VAL   set an environment variable (repeatable)
      --term NAME      TERM for the remote side (default: $TERM or xterm-256color)
      --escape KEY     what ends the session: ^X (a control key, e.g. '^]' or '^A'), a
                       character C for C. after a newline (ssh's ~), or none
                       (default: Ctrl-] anywhere and ~. after a newline)
${CLIENT_HELP}

Exit status: the program's exit code (128+N for signal N); 141 when local output is a closed pipe
(the session is ended quietly); 255 when ended by the escape key or when the session failed.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(
    argv,
    { ...CLIENT_OPTIONS, term: { type: 'string' }, cwd: { type: 'string', short: 'C' }, env: { type: 'string', short: 'e', multiple: true }, escape: { type: 'string' } },
    { stopAtPositional: true },
  );
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  const env = sessionEnvFrom(p);
  const client = clientFrom(p);
  return runInteractive(client, {
    argv: p.positionals,
    cwd: p.flags.cwd as string | undefined,
    env,
    term: p.flags.term as string | undefined,
    escape: p.flags.escape as string | undefined,
  });
}

import { parseArgs } from './args.js';
import { BROKEN_PIPE_STATUS, CLIENT_HELP, CLIENT_OPTIONS, clientFrom, EscapeScanner, EXIT, outputBroken, takeAgent } from './common.js';
import os from 'node:os';

export const help = `Usage: wirekit shell [options] [--] [CMD ARGS...]

Opens an interactive shell (or CMD) under a pseudo-terminal on the daemon's machine. The local
terminal is put in raw mode, window-size changes are sent on SIGWINCH, and the terminal is
restored on exit. Press Ctrl-], or type ~. at the start of a line (as in ssh; ~~ sends one ~),
to detach: the session is closed from this side, even when the program ignores every key, and
the daemon hangs up everything the session started (SIGHUP, then SIGKILL after 2 s). On an
Overlord ghost (listed as unauthenticated) it is the ghost's own shell (CMD is refused), and the
exit status is 0 when the ghost ends the session (a ghost reports none).

Options:
      --term NAME      TERM for the remote side (default: $TERM or xterm-256color)
${CLIENT_HELP}

Exit status: the program's exit code (128+N for signal N); 141 when local output is a closed pipe
(the session is ended quietly); 255 when detached or the session failed.`;

const DETACH = 0x1d; // Ctrl-]

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { ...CLIENT_OPTIONS, term: { type: 'string' } }, { stopAtPositional: true });
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  const client = clientFrom(p);
  const stdin = process.stdin;
  const stdout = process.stdout;
  const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const t = await client.terminal({
    argv: p.positionals.length ? p.positionals : undefined,
    ...size(),
    term: (p.flags.term as string | undefined) ?? process.env.TERM ?? 'xterm-256color',
  });
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (stdin.isTTY) stdin.setRawMode(true);
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
  };
  process.once('exit', restore);
  let detached = false;
  const scanner = new EscapeScanner();
  const onInput = (d: Buffer) => {
    if (detached) return;
    if (!stdin.isTTY) return void t.write(d);
    // Ctrl-] anywhere, or ~. at the start of a line (as in ssh), detaches.
    const i = d.indexOf(DETACH);
    const { data, escape } = scanner.scan(i >= 0 ? d.subarray(0, i) : d);
    if (data.length > 0) t.write(data);
    if (i >= 0 || escape) {
      detached = true;
      t.close();
    }
  };
  const onResize = () => {
    const s = size();
    t.resize(s.cols, s.rows);
  };
  stdin.on('data', onInput);
  process.on('SIGWINCH', onResize);
  t.output.pipe(stdout, { end: false });
  const broken = outputBroken([stdout, process.stderr]).then(() => BROKEN_PIPE_STATUS);
  try {
    const status = await Promise.race([t.exit, broken]);
    if (typeof status === 'number') {
      t.close();
      return status;
    }
    if (status.code !== null) return status.code;
    const n = status.signal ? (os.constants.signals as Record<string, number>)[status.signal] : undefined;
    return n ? 128 + n : EXIT.SESSION_FAILED;
  } catch (err) {
    if (detached) {
      process.stderr.write('\r\n[detached]\r\n');
      return EXIT.SESSION_FAILED;
    }
    throw err;
  } finally {
    restore();
    stdin.off('data', onInput);
    stdin.pause();
    process.off('SIGWINCH', onResize);
  }
}

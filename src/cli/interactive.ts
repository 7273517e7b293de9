/**
 * A program under a remote pseudo-terminal, driven from the local one (`shell`, `exec -t`): raw
 * mode while it runs, window sizes on SIGWINCH, the escape that ends the session, the exit status
 * (141, quietly, when local output is a closed pipe).
 * Also the options both commands take for the program's environment and directory.
 */
import os from 'node:os';
import type { AgentClient } from '../agent/client.js';
import { UsageError, type Parsed } from './args.js';
import { BROKEN_PIPE_STATUS, EXIT, outputBroken } from './common.js';
import { DEFAULT_ESCAPE, EscapeScanner, parseEscape, type EscapeResult } from './escape.js';

/**
 * The environment a command sends: LANG and LC_* of this terminal (as ssh's `SendEnv LANG LC_*`),
 * then each `-e NAME=VALUE`.
 */
export function sessionEnvFrom(p: Parsed, env: NodeJS.ProcessEnv = process.env): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if ((k === 'LANG' || k.startsWith('LC_')) && v) out[k] = v;
  for (const kv of (p.flags.env as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--env needs NAME=VALUE, got ${JSON.stringify(kv)}`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return Object.keys(out).length ? out : undefined;
}

export interface InteractiveOptions {
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  term?: string;
  /** The `--escape` text (default: Ctrl-] anywhere, `~.` after a newline). */
  escape?: string;
}

/** Exit status from a program's exit (128+N for signal N). */
export function statusCode(status: { code: number | null; signal: string | null }): number {
  if (status.code !== null) return status.code;
  const n = status.signal ? (os.constants.signals as Record<string, number>)[status.signal] : undefined;
  return n ? 128 + n : EXIT.SESSION_FAILED;
}

/** Runs a program under a remote terminal until it exits or the escape is typed. */
export async function runInteractive(client: AgentClient, opts: InteractiveOptions): Promise<number> {
  const escape = opts.escape === undefined ? DEFAULT_ESCAPE : parseEscape(opts.escape);
  const stdin = process.stdin;
  const stdout = process.stdout;
  const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const t = await client.terminal({
    argv: opts.argv?.length ? opts.argv : undefined,
    cwd: opts.cwd,
    env: opts.env,
    ...size(),
    term: opts.term ?? process.env.TERM ?? 'xterm-256color',
  });
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (stdin.isTTY) stdin.setRawMode(true);
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
  };
  process.once('exit', restore);
  // The escape is watched only on a terminal: piped input is sent as it is.
  const scanner = stdin.isTTY ? new EscapeScanner(escape) : undefined;
  let ended: string | undefined;
  const onInput = (d: Buffer) => {
    if (ended !== undefined) return;
    const r: EscapeResult = scanner ? scanner.feed(d) : { send: d };
    if (r.send.length > 0) t.write(r.send);
    if (r.end !== undefined) {
      ended = r.end;
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
  // A closed local output (`| head`) ends the session (the daemon hangs the program up) quietly.
  const broken = outputBroken([stdout, process.stderr]).then(() => BROKEN_PIPE_STATUS);
  try {
    const status = await Promise.race([t.exit, broken]);
    if (typeof status === 'number') {
      t.close();
      return status;
    }
    return statusCode(status);
  } catch (err) {
    if (ended !== undefined) {
      process.stderr.write(`\r\n[session ended by ${ended}; the remote program was hung up]\r\n`);
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

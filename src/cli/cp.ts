import { constants as osConstants } from 'node:os';
import { v8Collector } from '../agent/gc.js';
import { AbortedError } from '../errors.js';
import { parseArgs, UsageError } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';
import type { TransferProgress } from '../agent/client.js';
import { HASH_NAMES, isHashName } from '../agent/hash-algorithms.js';

export const help = `Usage: wirekit cp [options] SRC DEST

Copies a file to or from the daemon's machine. Exactly one side is remote, written with a
leading colon: \`wirekit cp ./local.bin :/remote/path\` uploads, \`wirekit cp :/remote/path .\`
downloads. Through a fleet hub, name the agent as scp names a host:
\`wirekit cp ./local.bin dev1:/tmp/x\`, \`wirekit cp dev1:/etc/hostname .\`. Size, mode and SHA-256 are checked; the destination appears only when the copy is
complete and verified: an interrupted copy leaves nothing behind (a download stopped by
SIGINT, SIGTERM or SIGHUP, or that fails in any way, removes its hidden .part file; the daemon
removes an upload's). A copy in which no byte moves for --timeout fails (exit 1).

Options:
      --mode OCTAL     mode of the destination file (default: the source's permission bits)
      --setid          keep setuid/setgid bits of the mode (dropped otherwise, both ways)
      --json           print the result as JSON on stdout (no progress bar)
      --no-progress    never show the progress bar (shown only when stderr is a terminal)
${CLIENT_HELP}

Exit status: 0 copied, 1 failed (remote error, checksum mismatch, path refused), 2 bad
arguments, 3 daemon unreachable.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { ...CLIENT_OPTIONS, mode: { type: 'string' }, setid: { type: 'boolean' }, json: { type: 'boolean' }, 'no-progress': { type: 'boolean' }, checksum: { type: 'string' } });
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length !== 2) throw new UsageError('cp needs SRC and DEST');
  let [src, dest] = p.positionals as [string, string];
  // AGENT:PATH (or @AGENT:PATH) names a file on an agent reached through the hub, as scp's HOST:PATH.
  for (const side of ['src', 'dest'] as const) {
    const text = side === 'src' ? src : dest;
    const m = /^@?([^/:@][^/:]*):(.*)$/.exec(text);
    if (!m) continue;
    if (typeof p.flags.agent === 'string' && p.flags.agent !== m[1]) throw new UsageError(`${text} names agent ${m[1]}, but --agent says ${p.flags.agent}`);
    p.flags.agent = m[1]!;
    if (side === 'src') src = `:${m[2]}`;
    else dest = `:${m[2]}`;
  }
  const srcRemote = src.startsWith(':');
  const destRemote = dest.startsWith(':');
  if (srcRemote === destRemote) throw new UsageError('exactly one of SRC and DEST must be remote (":PATH", or AGENT:PATH through a hub)');
  let mode: number | undefined;
  if (p.flags.mode !== undefined) {
    if (!/^[0-7]{1,4}$/.test(p.flags.mode as string)) throw new UsageError('--mode must be octal, e.g. 644');
    mode = parseInt(p.flags.mode as string, 8);
  }
  const checksum = p.flags.checksum as string | undefined;
  if (checksum !== undefined && !isHashName(checksum)) throw new UsageError(`--checksum must be ${HASH_NAMES.join(' or ')}`);
  const json = p.flags.json === true;
  const bar = !json && !p.flags['no-progress'] && process.stderr.isTTY ? progressBar() : undefined;
  const client = clientFrom(p);
  const t0 = performance.now();
  const setid = p.flags.setid === true;
  // A signal stops the copy through its AbortSignal, so the temporary file is removed before the
  // process exits (128 + the signal's number, as a shell reports it).
  const stop = new AbortController();
  let caught: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    caught ??= sig;
    stop.abort(new AbortedError(`copy (${sig})`));
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, onSignal);
  try {
    const result = srcRemote
      ? await client.download(src.slice(1), dest, { onProgress: bar, mode, setid, collectGarbage: v8Collector(), signal: stop.signal, checksum })
      : await client.upload(src, dest.slice(1) || '.', { mode, setid, onProgress: bar, signal: stop.signal, checksum });
    const seconds = (performance.now() - t0) / 1000;
    if (bar) process.stderr.write('\n');
    if (json) console.log(JSON.stringify({ direction: srcRemote ? 'download' : 'upload', ...result, seconds }));
    else if (!bar) process.stderr.write(`${result.size} bytes -> ${srcRemote ? result.path : ':' + result.path} ${result.blake3 ? `blake3 ${result.blake3}` : `sha256 ${result.sha256}`}\n`);
    return 0;
  } catch (err) {
    if (caught) {
      process.stderr.write(`${bar ? '\n' : ''}wirekit cp: stopped by ${caught}\n`);
      return 128 + (osConstants.signals[caught] ?? 0);
    }
    throw err;
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
    if (bar) process.stderr.write('\x1b[K');
  }
}

function progressBar(): (p: TransferProgress) => void {
  const t0 = performance.now();
  return ({ bytes, size }) => {
    const frac = size > 0 ? bytes / size : 1;
    const width = 30;
    const full = Math.round(frac * width);
    const mbs = bytes / 1e6 / Math.max(0.001, (performance.now() - t0) / 1000);
    process.stderr.write(`\r[${'#'.repeat(full)}${' '.repeat(width - full)}] ${(frac * 100).toFixed(0).padStart(3)}% ${(bytes / 1e6).toFixed(1)}/${(size / 1e6).toFixed(1)} MB ${mbs.toFixed(0)} MB/s`);
  };
}

import { lstatSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, rename, stat, symlink, unlink, utimes } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { v8Collector } from '../agent/gc.js';
import { AbortedError } from '../errors.js';
import { parseArgs, UsageError } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';
import type { AgentClient, TransferProgress, TransferResult } from '../agent/client.js';
import { WirekitError } from '../errors.js';
import { tempNameFor } from '../agent/temp-journal.js';
import { HASH_NAMES, isHashName } from '../agent/hash-algorithms.js';

export const help = `Usage: wirekit cp [options] SRC... DEST

Copies files and, with -r, directory trees to or from the daemon's machine, like scp. The remote
side is written with a leading colon: \`wirekit cp ./local.bin :/remote/path\` uploads,
\`wirekit cp :/remote/path .\` downloads. Through a fleet hub, name the agent as scp names a
host: \`wirekit cp ./local.bin dev1:/tmp/x\`, \`wirekit cp dev1:/etc/hostname .\`.

Remote paths: relative paths, \`~\` and \`~/x\` start at the home directory of the user the
daemon runs as (under a daemon's --root, at the root); \`:\` alone is that directory. A
destination that is a directory (or ends with \`/\`) gets the file inside it under its own name;
several sources need a directory destination.

Size, mode and an integrity hash are checked (BLAKE3 when both sides have it, else SHA-256); a
file appears only when complete and verified: an interrupted copy leaves nothing behind (a
download stopped by SIGINT, SIGTERM or SIGHUP, or that fails in any way, removes its hidden .part
file; the daemon removes an upload's). A copy in which no byte moves for --timeout fails.

Options:
  -r, --recursive      copy directories and their contents; modes are kept, symbolic links are
                       copied as links (never followed; the daemon never follows one out of
                       its --root)
  -p, --preserve       keep modification and access times (files and, with -r, directories)
      --checksum HASH  blake3 or sha256 only (default: blake3 when both sides have it)
      --partial        resumable, as rsync's --partial/--append: an interrupted copy keeps what
                       arrived in .NAME.wirekit-partial beside the destination, and the next
                       --partial copy sends only the rest; the hash still covers the whole
                       file (a mismatch removes the partial file). --append is the same
      --mode OCTAL     mode of the destination file (default: the source's permission bits)
      --setid          keep setuid/setgid bits of the mode (dropped otherwise, both ways)
      --json           print each result as JSON on stdout (no progress)
      --no-progress    never show progress (shown only when stderr is a terminal, for files
                       of 1 MiB and more: name, bytes, percent, rate and time left)
${CLIENT_HELP}

Exit status: 0 copied, 1 failed (remote error, checksum mismatch, path refused), 2 bad
arguments, 3 daemon unreachable.`;

/** Files smaller than this copy without a progress line. */
const PROGRESS_MIN = 1024 * 1024;

interface Job {
  client: AgentClient;
  recursive: boolean;
  preserve: boolean;
  mode: number | undefined;
  setid: boolean;
  checksum: 'sha256' | 'blake3' | undefined;
  partial: boolean;
  json: boolean;
  progress: boolean;
  signal: AbortSignal;
  results: (TransferResult & { direction: string; seconds: number })[];
}

export async function run(argv: string[]): Promise<number> {
  // -rp as -r -p
  argv = argv.flatMap((a) => (/^-[rp]{2,}$/.test(a) ? [...a.slice(1)].map((c) => `-${c}`) : [a]));
  const p = parseArgs(argv, {
    ...CLIENT_OPTIONS,
    recursive: { type: 'boolean', short: 'r' },
    preserve: { type: 'boolean', short: 'p' },
    mode: { type: 'string' },
    setid: { type: 'boolean' },
    json: { type: 'boolean' },
    'no-progress': { type: 'boolean' },
    checksum: { type: 'string' },
    partial: { type: 'boolean' },
    append: { type: 'boolean' },
  });
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length < 2) throw new UsageError('cp needs SRC and DEST');
  // AGENT:PATH (or @AGENT:PATH) names a file on an agent reached through the hub, as scp's HOST:PATH.
  const args = p.positionals.map((text) => {
    const m = /^@?([^/:@][^/:]*):(.*)$/.exec(text);
    if (!m) return text;
    if (typeof p.flags.agent === 'string' && p.flags.agent !== m[1]) throw new UsageError(`${text} names agent ${m[1]}, but --agent says ${p.flags.agent}`);
    p.flags.agent = m[1]!;
    return `:${m[2]}`;
  });
  const dest = args.pop()!;
  const sources = args;
  const destRemote = dest.startsWith(':');
  if (sources.some((s) => s.startsWith(':') === destRemote)) throw new UsageError('exactly one side must be remote: every SRC local and DEST remote (":PATH", or AGENT:PATH through a hub), or the reverse');
  let mode: number | undefined;
  if (p.flags.mode !== undefined) {
    if (!/^[0-7]{1,4}$/.test(p.flags.mode as string)) throw new UsageError('--mode must be octal, e.g. 644');
    mode = parseInt(p.flags.mode as string, 8);
  }
  const checksum = p.flags.checksum as string | undefined;
  if (checksum !== undefined && !isHashName(checksum)) throw new UsageError(`--checksum must be ${HASH_NAMES.join(' or ')}`);
  const json = p.flags.json === true;
  // A signal stops the copy through its AbortSignal, so the temporary file is removed before the
  // process exits (128 + the signal's number, as a shell reports it).
  const stop = new AbortController();
  let caught: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    caught ??= sig;
    stop.abort(new AbortedError(`copy (${sig})`));
  };
  const job: Job = {
    client: clientFrom(p),
    recursive: p.flags.recursive === true,
    preserve: p.flags.preserve === true,
    mode,
    setid: p.flags.setid === true,
    checksum,
    partial: p.flags.partial === true || p.flags.append === true,
    json,
    progress: !json && !p.flags['no-progress'] && process.stderr.isTTY === true,
    signal: stop.signal,
    results: [],
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const sig of signals) process.on(sig, onSignal);
  try {
    if (destRemote) {
      // Several sources go into a directory, which must exist.
      let to = dest.slice(1) || '.';
      if (sources.length > 1 && !to.endsWith('/')) to += '/';
      for (const src of sources) await uploadAny(job, src, to);
    } else {
      if (sources.length > 1) {
        const st = await stat(dest).catch(() => undefined);
        if (!st?.isDirectory()) throw new UsageError(`${dest}: several sources need an existing directory as the destination`);
      }
      for (const src of sources) await downloadAny(job, src.slice(1), dest);
    }
    return 0;
  } catch (err) {
    if (caught) {
      process.stderr.write(`wirekit cp: stopped by ${caught}\n`);
      return 128 + (osConstants.signals[caught] ?? 0);
    }
    throw err;
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
  }
}

/** Reports one copied file: JSON on stdout, the progress line's end, or a summary on stderr. */
function report(job: Job, direction: 'upload' | 'download', result: TransferResult, seconds: number, shown: boolean): void {
  if (job.json) console.log(JSON.stringify({ direction, ...result, seconds }));
  else if (!shown) process.stderr.write(`${result.size} bytes -> ${direction === 'download' ? result.path : ':' + result.path} ${result.blake3 ? `blake3 ${result.blake3}` : `sha256 ${result.sha256}`}\n`);
}

async function uploadFile(job: Job, local: string, remote: string, size: number): Promise<void> {
  const bar = job.progress && size >= PROGRESS_MIN ? progressLine(path.basename(local)) : undefined;
  const t0 = performance.now();
  try {
    const r = await job.client.upload(local, remote, { mode: job.mode, setid: job.setid, onProgress: bar?.update, signal: job.signal, checksum: job.checksum, preserveTimes: job.preserve, partial: job.partial });
    bar?.done(r.size);
    report(job, 'upload', r, (performance.now() - t0) / 1000, bar !== undefined);
  } catch (err) {
    bar?.abandon();
    throw err;
  }
}

async function uploadAny(job: Job, local: string, remote: string): Promise<void> {
  const st = await stat(local); // a link named on the command line is followed, as scp does
  if (!st.isDirectory()) return uploadFile(job, local, remote, st.size);
  if (!job.recursive) throw new WirekitError('WK_IS_DIR', `${local} is a directory (use -r to copy it)`, { origin: 'local' });
  const name = path.basename(path.resolve(local));
  const top = await job.client.makeEntry(remote, { type: 'dir', name, mode: st.mode & 0o7777 });
  await uploadTree(job, local, top);
  if (job.preserve) await job.client.makeEntry(top, { type: 'dir', mode: st.mode & 0o7777, times: { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs } });
}

/** Uploads the contents of local directory `dir` into the existing remote directory `top`. */
async function uploadTree(job: Job, dir: string, top: string): Promise<void> {
  for (const name of (await readdir(dir)).sort()) {
    job.signal.throwIfAborted();
    const local = path.join(dir, name);
    const st = await lstat(local);
    if (st.isSymbolicLink()) await job.client.makeEntry(top, { type: 'link', name, target: await readlink(local) });
    else if (st.isDirectory()) {
      const sub = await job.client.makeEntry(top, { type: 'dir', name, mode: st.mode & 0o7777 });
      await uploadTree(job, local, sub);
      if (job.preserve) await job.client.makeEntry(sub, { type: 'dir', mode: st.mode & 0o7777, times: { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs } });
    } else if (st.isFile()) await uploadFile(job, local, `${top}/${name}`, st.size);
    else process.stderr.write(`wirekit cp: ${local}: not a regular file, directory or link; skipped\n`);
  }
}

async function downloadFile(job: Job, remote: string, local: string, size: number | undefined): Promise<void> {
  const bar = job.progress && (size === undefined || size >= PROGRESS_MIN) ? progressLine(path.posix.basename(remote), PROGRESS_MIN) : undefined;
  const t0 = performance.now();
  try {
    const r = await job.client.download(remote, local, {
      onProgress: bar?.update,
      mode: job.mode,
      setid: job.setid,
      collectGarbage: v8Collector(),
      signal: job.signal,
      checksum: job.checksum,
      preserveTimes: job.preserve,
      partial: job.partial,
    });
    const shown = bar?.done(r.size) ?? false;
    report(job, 'download', r, (performance.now() - t0) / 1000, shown);
  } catch (err) {
    bar?.abandon();
    throw err;
  }
}

async function downloadAny(job: Job, remote: string, local: string): Promise<void> {
  if (!job.recursive) return downloadFile(job, remote, local, undefined);
  let listing;
  try {
    listing = await job.client.list(remote);
  } catch (err) {
    // Not a directory: an ordinary file copy.
    if (err instanceof WirekitError && (err.code === 'WK_NOT_DIR' || (err as { remoteCode?: string }).remoteCode === 'WK_NOT_DIR')) return downloadFile(job, remote, local, undefined);
    throw err;
  }
  const into = (await stat(local).catch(() => undefined))?.isDirectory() ? path.join(local, path.posix.basename(listing.path) || 'root') : local;
  await downloadTree(job, listing, into);
}

function isPlain(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** Writes a remote directory (already listed) to local directory `dir` (created if missing). */
async function downloadTree(job: Job, listing: Awaited<ReturnType<AgentClient['list']>>, dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatSync(dir).isDirectory()) throw err;
  }
  const base = listing.path.endsWith('/') ? listing.path : listing.path + '/';
  for (const e of listing.entries) {
    job.signal.throwIfAborted();
    if (!isPlain(e.name)) continue;
    const local = path.join(dir, e.name);
    if (e.type === 'file') await downloadFile(job, base + e.name, local, e.size);
    else if (e.type === 'dir') await downloadTree(job, await job.client.list(base + e.name), local);
    else if (e.type === 'link' && typeof e.target === 'string') {
      // Created beside its place and renamed over it: an existing link is replaced, not followed.
      const temp = tempNameFor(local);
      await symlink(e.target, temp);
      await rename(temp, local).catch(async (err: unknown) => {
        await unlink(temp).catch(() => {});
        throw err;
      });
    }
  }
  await chmod(dir, job.mode ?? listing.mode & 0o1777);
  if (job.preserve) await utimes(dir, listing.atime / 1000, listing.mtime / 1000);
}

/** Seconds as scp shows them: `mm:ss`, or `h:mm:ss`. */
function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  const two = (n: number) => String(n).padStart(2, '0');
  return hms[0]! > 0 ? `${hms[0]}:${two(hms[1]!)}:${two(hms[2]!)}` : `${two(hms[1]!)}:${two(hms[2]!)}`;
}

/** Bytes in the units scp uses (B, KB, MB, GB, TB; powers of 1024). */
function amount(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 * 9.995 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n}${units[0]}` : `${n.toFixed(n < 100 ? 1 : 0)}${units[i]}`;
}

/**
 * One file's progress on stderr, as scp draws it: name, percent, bytes, rate and time left,
 * fitted to the terminal's width (the name is shortened first) and redrawn in place with `\r`,
 * at most 10 times a second; `done` draws the final line (total time instead of time left) and
 * ends it with a newline. Files that turn out smaller than `minSize` draw nothing.
 */
export function progressLine(name: string, minSize = 0, out: NodeJS.WriteStream = process.stderr): { update(p: TransferProgress): void; done(size: number): boolean; abandon(): void } {
  const t0 = performance.now();
  let last = 0;
  let drawn = false;
  const draw = (bytes: number, size: number, final: boolean) => {
    const elapsed = (performance.now() - t0) / 1000;
    const rate = elapsed > 0 ? bytes / elapsed : 0;
    const pct = size > 0 ? Math.floor((bytes / size) * 100) : 100;
    const tail = ` ${String(pct).padStart(3)}% ${amount(bytes).padStart(7)} ${(amount(Math.round(rate)) + '/s').padStart(9)} ${final ? clock(elapsed) + '    ' : clock(rate > 0 ? (size - bytes) / rate : NaN) + ' ETA'}`;
    // One column is left free: writing the last column makes some terminals wrap.
    const cols = Math.max(20, (out.columns || 80) - 1);
    let head = name;
    const room = cols - tail.length;
    if (room <= 0) head = '';
    else if ([...head].length > room) head = room > 1 ? [...head].slice(0, room - 1).join('') + '…' : '';
    const line = head.padEnd(Math.max(0, room)) + tail;
    out.write(`\r${[...line].slice(0, cols).join('')}`);
    drawn = true;
  };
  return {
    update({ bytes, size }) {
      if (size < minSize) return;
      const now = performance.now();
      if (now - last < 100 && bytes < size) return;
      last = now;
      draw(bytes, size, false);
    },
    done(size) {
      if (size < minSize) return false;
      draw(size, size, true);
      out.write('\n');
      return true;
    },
    abandon() {
      if (drawn) out.write('\n');
    },
  };
}

/**
 * File sessions, both directions. The data goes raw after the reply (no session frames): exactly
 * `size` bytes, then their digest (32 bytes: SHA-256, or BLAKE3 when the request offered it and
 * the daemon has it; see `hash-algorithms.ts`).
 *
 * Remote paths: a relative path (and `~`, `~/x`) is taken from the home directory of the user the
 * daemon runs as; under `--root` the root plays the home directory (`x`, `~/x` and `/x` all name
 * `<root>/x`). An upload whose destination is a directory (or ends with `/`) puts the file inside
 * it under the request's `name`, as scp and cp do.
 * - upload: daemon half `uploadKind` (path confined, temporary file created before the reply
 *   `{"path"}`, then the data in, progress and result as control lines out, renamed into place
 *   only when complete and verified); client half `clientUpload`.
 * - download: daemon half `downloadKind` (regular file opened before the reply
 *   `{"path", "size", "mode"}`, then the data out); client half `clientDownload`.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readlink, rename, stat, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WirekitError } from '../../errors.js';
import { hashPrefix, receiveFile, sendFile, type CollectGarbage, type FileSource } from '../file-pump.js';
import { ChecksumError } from '../errors.js';
import { acceptedHash, availableHashes, chooseHash, hashAvailable, HASH_LABELS, type HashName } from '../hash-algorithms.js';
import { streamHashFor, type StreamHash } from '../hash-offload.js';
import type { Logger } from '../log.js';
import { fileError, resolveBeneath, type BeneathPath } from '../paths.js';
import { destInTerminal } from './terminal-registry.js';
import { sweepStaleTempFiles, tempNameFor } from '../temp-journal.js';
import { TransferReceiver } from '../transfer.js';
import type { ClientContext, SessionKind } from './context.js';
import { badOptions } from './options.js';
import { grace } from './process.js';
import { transferReplies, type TransferReplies } from './replies.js';

export type { TransferReplies } from './replies.js';
export { tempNameFor } from '../temp-journal.js';

/** Progress of a transfer. */
export interface TransferProgress {
  bytes: number;
  size: number;
}

/**
 * Result of a transfer: the hex digest under the name of the hash used (`sha256` or `blake3`;
 * exactly one of them).
 */
export interface TransferResult {
  path: string;
  size: number;
  sha256?: string;
  blake3?: string;
  /** A resumed transfer (`partial`): the bytes that were already there and were not sent again. */
  resumedFrom?: number;
}

/** The result's digest field for `hash`. */
function resultOf(p: string, size: number, hash: HashName, hex: string): TransferResult {
  return hash === 'sha256' ? { path: p, size, sha256: hex } : { path: p, size, blake3: hex };
}

/**
 * A remote path as the client wrote it, made absolute: relative paths, `~` and `~/x` from the
 * home directory (`home`, default the daemon user's), or under a root from the root itself.
 */
export function fromHome(userPath: string, root: string | undefined, home = os.homedir()): string {
  const rest = userPath === '~' ? '' : userPath.startsWith('~/') ? userPath.slice(2) : undefined;
  if (root !== undefined) return rest !== undefined ? '/' + rest : userPath;
  if (rest !== undefined) return path.join(home, rest);
  return userPath.length === 0 || userPath.includes('\0') ? userPath : path.resolve(home, userPath);
}

/** A single path component (a file's own name, never a path). */
function isPlainName(n: unknown): n is string {
  return typeof n === 'string' && n.length > 0 && n !== '.' && n !== '..' && !n.includes('/') && !n.includes('\0');
}

/** Access and modification times in ms since the epoch (`cp -p`). */
export interface FileTimes {
  atimeMs: number;
  mtimeMs: number;
}

/** `{atime, mtime}` of a request as `FileTimes` (both finite numbers, or none). */
function timesOf(o: Record<string, unknown>): FileTimes | undefined {
  const { atime, mtime } = o;
  if (typeof mtime !== 'number' || !Number.isFinite(mtime)) return undefined;
  return { atimeMs: typeof atime === 'number' && Number.isFinite(atime) ? atime : mtime, mtimeMs: mtime };
}

/** One entry of a directory listing (`download` with `"list": true`). */
export interface ListEntry {
  name: string;
  type: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  size: number;
  atime: number;
  mtime: number;
  /** A link's target, as stored (never followed). */
  target?: string;
}

/**
 * The stable name of a resumable transfer's partial file beside `dest` (`--partial`): kept when
 * the transfer fails, continued from its size by the next `--partial` copy.
 */
export function partialNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.wirekit-partial`);
}

/** Entries of one directory listing at most. */
export const LIST_LIMIT = 100_000;

/** The permission bits a received file gets: setuid and setgid only when asked for explicitly. */
export function receivedMode(mode: number, keepSetid = false): number {
  return mode & (keepSetid ? 0o7777 : 0o1777);
}

/**
 * Receives a file into the open temporary file `out` through `rx`, then sets its mode and renames
 * it to `dest`. On any failure the temporary file is closed and removed and the error rethrown.
 * Setuid and setgid bits of `mode` are dropped unless `keepSetid`.
 */
export async function commitReceivedFile(
  io: Duplex,
  rx: TransferReceiver,
  out: FileHandle,
  temp: string,
  dest: string,
  mode: number | undefined,
  opts: { fsync?: boolean; keepSetid?: boolean; onProgress?: (bytes: number) => void; collectGarbage?: CollectGarbage; stallTimeoutMs?: number; signal?: AbortSignal; hash?: StreamHash; times?: FileTimes; start?: number; keepPartial?: boolean } = {},
): Promise<void> {
  let committed = false;
  let keep = false;
  try {
    if (opts.start && opts.hash) await hashPrefix(out, opts.start, opts.hash);
    await receiveFile(io, rx, out, { onProgress: opts.onProgress, collectGarbage: opts.collectGarbage, stallTimeoutMs: opts.stallTimeoutMs, signal: opts.signal, hash: opts.hash, start: opts.start }).catch((err: unknown) => {
      // A resumable transfer keeps what arrived, unless the whole is wrong.
      keep = opts.keepPartial === true && !(err instanceof ChecksumError);
      throw err;
    });
    if (mode !== undefined) await out.chmod(receivedMode(mode, opts.keepSetid));
    if (opts.times) await out.utimes(opts.times.atimeMs / 1000, opts.times.mtimeMs / 1000);
    if (opts.fsync) await out.datasync();
    await out.close();
    await rename(temp, dest);
    committed = true;
  } finally {
    if (!committed) {
      await out.close().catch(() => {});
      if (!keep) await unlink(temp).catch(() => {});
    }
  }
}

// ---- upload, daemon half ----

/** Options of an upload request. */
export interface UploadRequest {
  /** The path as the client named it (confined in `prepare`). */
  dest: string;
  size: number;
  mode: number | undefined;
  /** Keep setuid/setgid bits of `mode` (`"setid": true`); dropped otherwise. */
  keepSetid: boolean;
  /** The source's own name: the file's name when `dest` is a directory. */
  name: string | undefined;
  /** The hash chosen from the request's offer. */
  hash: HashName;
  /** Whether the request offered hashes (the reply names the choice only then). */
  negotiated: boolean;
  /** What to create: a file (data follows), a directory or a symbolic link (no data). */
  type: 'file' | 'dir' | 'link';
  /** A link's target. */
  target: string | undefined;
  /** Times to give the file or directory (`cp -p`). */
  times: FileTimes | undefined;
  /** Resumable (`"partial": true`): continue a kept partial file, keep this one on failure. */
  partial?: boolean;
  /** A terminal of this daemon (its id): a relative `dest` is taken from its current directory. */
  terminal?: string;
}

/** An upload prepared before the switch: the destination was checked and the temp file created. */
export interface PreparedUpload {
  /** The destination as the client may be shown it. */
  dest: string;
  /** The destination's directory, held open (see `BeneathPath`). */
  at: BeneathPath;
  /** The temporary file's name in that directory. */
  tempName: string;
  out: FileHandle;
  size: number;
  mode: number | undefined;
  keepSetid: boolean;
  /** The integrity hash of the transfer (default SHA-256). */
  hash?: HashName;
  negotiated?: boolean;
  times?: FileTimes;
  /** Bytes already in the partial file (`partial: true`); the client sends the rest. */
  offset?: number;
  /** The temp file is the stable partial file, kept on failure. */
  partial?: boolean;
  /** Called once the temp file is gone or renamed (the journal entry is dropped). */
  settled?: () => void;
}

/** Options of an upload as the daemon runs it. */
export interface UploadOptions {
  /** Flush the file to stable storage before the rename (default false, like cp and rsync). */
  fsync?: boolean;
  /** Bytes between progress replies (default 8 MiB). */
  progressEvery?: number;
  /** Releases spent socket buffers now and then (see `ReceiveFileOptions.collectGarbage`). */
  collectGarbage?: CollectGarbage;
  /** Fails the upload when no data arrives for this long (default: never). */
  stallTimeoutMs?: number;
}

/** How long a failed transfer's connection may take to flush the error reply before it is destroyed. */
const FAIL_LINGER_MS = 5000;

const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_NONBLOCK } = fsConstants;

/**
 * Creates the temporary file next to the destination (mode 0600, exclusive, never through a
 * link) and opens it for writing. `at` is the resolved destination; it stays open until the
 * upload settles (closed here on failure).
 */
export async function prepareUpload(at: BeneathPath, size: number, mode: number | undefined, keepSetid = false, partial = false): Promise<PreparedUpload> {
  try {
    const st = await lstat(at.at()).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st?.isDirectory()) throw new WirekitError('WK_IS_DIR', `${at.shown} is a directory`, { origin: 'remote' });
    if (partial) {
      // Continued from its size when it is a regular file no longer than the upload (else restarted).
      const tempName = path.basename(partialNameFor(at.name));
      const out = await open(at.at(tempName), O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
      const have = (await out.stat()).size;
      const offset = (await out.stat()).isFile() && have <= size ? have : 0;
      if (offset !== have) await out.truncate(0);
      return { dest: at.shown, at, tempName, out, size, mode, keepSetid, offset, partial: true };
    }
    const tempName = path.basename(tempNameFor(at.name));
    const out = await open(at.at(tempName), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    return { dest: at.shown, at, tempName, out, size, mode, keepSetid };
  } catch (err) {
    await at.close();
    throw fileError(err, at.shown);
  }
}

/**
 * Receives an upload from the raw stream `io`: data, then the digest; writes to the temp file,
 * and renames it into place only when complete and verified. Any failure removes the temp file.
 */
export async function runUpload(io: Duplex, up: PreparedUpload, replies: TransferReplies, log: Logger, opts: UploadOptions = {}): Promise<void> {
  const algorithm = up.hash ?? 'sha256';
  const start = up.offset ?? 0;
  const rx = new TransferReceiver(up.size - start, null, algorithm);
  const every = opts.progressEvery ?? 8 * 1024 * 1024;
  let nextProgress = every;
  try {
    await commitReceivedFile(io, rx, up.out, up.at.at(up.tempName), up.at.at(), up.mode, {
      fsync: opts.fsync,
      stallTimeoutMs: opts.stallTimeoutMs,
      keepSetid: up.keepSetid,
      collectGarbage: opts.collectGarbage,
      hash: streamHashFor(algorithm, up.size),
      times: up.times,
      start,
      keepPartial: up.partial,
      onProgress: (bytes) => {
        if (bytes < nextProgress) return;
        nextProgress = bytes + every;
        void replies.progress({ bytes, size: up.size });
      },
    });
    await replies.ok(resultOf(up.dest, up.size, algorithm, rx.digestHex!));
    log.info(`upload ${up.dest}: ${up.size} bytes`);
  } catch (err) {
    log.warn(`upload ${up.dest} failed: ${(err as Error).message}`);
    await Promise.resolve(replies.fail(fileError(err, up.dest))).catch(() => {});
    // A client that stopped reading must not keep the connection: the reply gets a moment.
    setTimeout(() => io.destroy(), FAIL_LINGER_MS).unref();
  } finally {
    up.settled?.();
    await up.at.close();
  }
  io.end();
}

/** Daemon half of the `upload` command. */
export const uploadKind: SessionKind<UploadRequest, PreparedUpload | { made: Record<string, unknown> }> = {
  cmd: 'upload',
  parse(o) {
    if (typeof o.path !== 'string') throw badOptions('upload needs {"path": string, "size": integer}');
    const type = o.type === undefined || o.type === 'file' ? 'file' : o.type === 'dir' || o.type === 'link' ? o.type : undefined;
    if (type === undefined) throw badOptions('upload "type" must be "file", "dir" or "link"');
    if (type === 'link' && (typeof o.target !== 'string' || o.target.length === 0 || o.target.includes('\0'))) throw badOptions('a link upload needs {"target": string}');
    if (type !== 'file') {
      const mode = typeof o.mode === 'number' && Number.isInteger(o.mode) ? o.mode : undefined;
      const name = isPlainName(o.name) ? o.name : undefined;
      return { dest: o.path, size: 0, mode, keepSetid: false, name, hash: 'sha256', negotiated: false, type, target: o.target as string | undefined, times: timesOf(o) };
    }
    if (o.terminal !== undefined && o.terminal !== null && (typeof o.terminal !== 'string' || o.terminal.length === 0 || o.terminal.length > 128)) throw badOptions('upload "terminal" must be a terminal id');
    const size = o.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw badOptions('upload needs a non-negative integer size');
    const mode = typeof o.mode === 'number' && Number.isInteger(o.mode) ? o.mode : undefined;
    const name = isPlainName(o.name) ? o.name : undefined;
    return { dest: o.path, size, mode, keepSetid: o.setid === true, name, hash: chooseHash(o.hashes), negotiated: o.hashes !== undefined && o.hashes !== null, type: 'file', target: undefined, times: timesOf(o), partial: o.partial === true, terminal: (o.terminal as string | null | undefined) ?? undefined };
  },
  prepare: async (req, ctx) => {
    if (req.type !== 'file') return { made: await makeEntry(req, ctx.root) };
    if (req.terminal !== undefined) req.dest = await destInTerminal(req.dest, req.terminal, ctx);
    const up = await prepareUpload(await uploadTarget(req.dest, req.name, ctx.root), req.size, req.mode, req.keepSetid, req.partial);
    up.hash = req.hash;
    up.negotiated = req.negotiated;
    up.times = req.times;
    // A partial file is meant to outlive this daemon: the sweep at the next start must leave it.
    if (!up.partial) up.settled = await ctx.tempFiles?.add(path.join(await up.at.realDir().catch(() => '.'), up.tempName));
    return up;
  },
  reply: (up) => ('made' in up ? up.made : up.negotiated ? { path: up.dest, hash: up.hash, ...(up.partial ? { offset: up.offset } : {}) } : { path: up.dest }),
  run: async (up, io, ctx) => {
    if ('made' in up) {
      io.resume();
      io.end();
      return;
    }
    return runUpload(io, up, transferReplies(io), ctx.log, { fsync: ctx.fsync, collectGarbage: ctx.collectGarbage, stallTimeoutMs: ctx.transferTimeoutMs });
  },
};

/**
 * Creates a directory (or keeps an existing one) or a symbolic link for `upload` with `"type"`
 * `"dir"` or `"link"`, placed like a file (inside `dest` when that is a directory and a name is
 * given). A link is created beside its place and renamed over it; its target is stored as
 * given and never followed by the daemon (path resolution stays confined). The reply is final:
 * `{path, type}`.
 */
async function makeEntry(req: UploadRequest, root: string | undefined): Promise<Record<string, unknown>> {
  const at = await uploadTarget(req.dest, req.name, root);
  try {
    if (req.type === 'dir') {
      try {
        await mkdir(at.at(), { mode: (req.mode ?? 0o755) & 0o1777 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await lstat(at.at())).isDirectory()) throw err;
      }
      if (req.mode !== undefined) await chmod(at.at(), req.mode & 0o1777);
      if (req.times) await utimes(at.at(), req.times.atimeMs / 1000, req.times.mtimeMs / 1000);
    } else {
      const st = await lstat(at.at()).catch(() => undefined);
      if (st?.isDirectory()) throw new WirekitError('WK_IS_DIR', `${at.shown} is a directory`, { origin: 'remote' });
      const temp = path.basename(tempNameFor(at.name));
      await symlink(req.target!, at.at(temp));
      try {
        await rename(at.at(temp), at.at());
      } catch (err) {
        await unlink(at.at(temp)).catch(() => {});
        throw err;
      }
    }
    return { path: at.shown, type: req.type };
  } catch (err) {
    throw fileError(err, at.shown);
  } finally {
    await at.close();
  }
}

/** The entries of directory `dir` (lstat: links are reported, never followed). */
async function listDirectory(dir: string, shown: string): Promise<{ mode: number; atime: number; mtime: number; entries: ListEntry[] }> {
  const st = await stat(dir);
  if (!st.isDirectory()) throw new WirekitError('WK_NOT_DIR', `${shown}: not a directory`, { origin: 'remote' });
  const names = await readdir(dir);
  if (names.length > LIST_LIMIT) throw new WirekitError('WK_LIMIT', `${shown} holds more than ${LIST_LIMIT} entries`, { origin: 'remote' });
  const entries: ListEntry[] = [];
  for (const name of names.sort()) {
    const e = await lstat(path.join(dir, name)).catch(() => undefined);
    if (!e) continue;
    const type = e.isFile() ? 'file' : e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'link' : 'other';
    const entry: ListEntry = { name, type, mode: e.mode & 0o7777, size: e.size, atime: e.atimeMs, mtime: e.mtimeMs };
    if (type === 'link') entry.target = await readlink(path.join(dir, name));
    entries.push(entry);
  }
  return { mode: st.mode & 0o7777, atime: st.atimeMs, mtime: st.mtimeMs, entries };
}

/**
 * Where an upload goes: `dest` from the home directory (or the root), and inside it under `name`
 * when it is a directory (or written with a trailing `/`, which then must be one).
 */
export async function uploadTarget(dest: string, name: string | undefined, root: string | undefined): Promise<BeneathPath> {
  const at = await resolveBeneath(fromHome(dest, root), { root });
  const st = await stat(at.at()).catch(() => undefined);
  const dirWanted = dest.endsWith('/') || dest === '~' || dest === '.' || dest === '';
  if (st?.isDirectory() && name !== undefined) {
    await at.close();
    return resolveBeneath(path.join(fromHome(dest, root), name), { root });
  }
  if (dirWanted && !st?.isDirectory()) {
    await at.close();
    throw new WirekitError(st ? 'WK_NOT_DIR' : 'WK_NOT_FOUND', `${dest}: ${st ? 'not a directory' : 'no such directory'}`, { origin: 'remote' });
  }
  return at;
}

// ---- download, daemon half ----

/** A file opened for download. */
export interface PreparedDownload {
  path: string;
  /** The file, or a snapshot of it (see `prepareDownload`). */
  handle: FileSource & { close(): Promise<void> };
  size: number;
  mode: number;
  /** The integrity hash of the transfer (default SHA-256). */
  hash?: HashName;
  negotiated?: boolean;
  times?: FileTimes;
  /** A directory listing (`"list": true`): the reply is all, no data follows. */
  listing?: Record<string, unknown>;
  /** Send from this offset (`"offset"` in the request, when not past the end; else 0). */
  offset?: number;
  /** The request asked for an offset (the reply names the one used). */
  resumable?: boolean;
}

/** Largest snapshot of a file that reports size 0 (`/proc`, `/sys`). */
export const SNAPSHOT_LIMIT = 16 * 1024 * 1024;

/**
 * Opens a file for download: resolves with its handle, size and mode (regular files only).
 *
 * The file is opened with `O_NONBLOCK | O_NOFOLLOW` and checked with `fstat` on that descriptor,
 * so a FIFO or device is refused (`WK_NOT_FILE`) without the open waiting for a writer, and a
 * link swapped in after resolution is refused rather than followed. A regular file that reports
 * size 0 but has content (`/proc/cpuinfo` and the like) is read whole first, up to
 * `SNAPSHOT_LIMIT`, and that snapshot is sent with its real size.
 */
export async function prepareDownload(file: string, shown = file): Promise<{ handle: FileSource & { close(): Promise<void> }; size: number; mode: number; times: FileTimes }> {
  let handle: FileHandle;
  try {
    handle = await open(file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
  } catch (err) {
    throw fileError(err, shown);
  }
  try {
    const st = await handle.stat();
    if (st.isDirectory()) throw new WirekitError('WK_IS_DIR', `${shown} is a directory`, { origin: 'remote' });
    if (!st.isFile()) throw new WirekitError('WK_NOT_FILE', `${shown} is not a regular file`, { origin: 'remote' });
    const mode = st.mode & 0o7777;
    const times = { atimeMs: st.atimeMs, mtimeMs: st.mtimeMs };
    if (st.size > 0) return { handle, size: st.size, mode, times };
    const snap = await snapshot(handle, shown);
    await handle.close();
    return { handle: memorySource(snap), size: snap.length, mode, times };
  } catch (err) {
    await handle.close();
    throw fileError(err, shown);
  }
}

/** Reads a file of unknown length to its end (at most `SNAPSHOT_LIMIT` bytes). */
async function snapshot(handle: FileHandle, shown: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    const { bytesRead } = await handle.read(buf, 0, buf.length, null);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > SNAPSHOT_LIMIT) throw new WirekitError('WK_LIMIT', `${shown} reports size 0 and holds more than ${SNAPSHOT_LIMIT} bytes`, { origin: 'remote' });
    chunks.push(buf.subarray(0, bytesRead));
  }
  return Buffer.concat(chunks);
}

function memorySource(data: Uint8Array): FileSource & { close(): Promise<void> } {
  return {
    read: async (buffer, offset, length, position) => {
      const n = Math.max(0, Math.min(length, data.length - position));
      buffer.set(data.subarray(position, position + n), offset);
      return { bytesRead: n };
    },
    close: async () => {},
  };
}

/** Sends exactly `size` bytes of the file, then their digest (SHA-256 unless `dl.hash` says otherwise). */
export async function runDownload(io: Duplex, dl: { handle: FileSource & { close(): Promise<void> }; size: number; hash?: HashName; offset?: number }, log: Logger, opts: { stallTimeoutMs?: number } = {}): Promise<void> {
  try {
    const hash = streamHashFor(dl.hash ?? 'sha256', dl.size);
    const start = dl.offset ?? 0;
    if (start > 0) await hashPrefix(dl.handle, start, hash);
    const digest = await sendFile(dl.handle, dl.size, io, { stallTimeoutMs: opts.stallTimeoutMs, hash, start });
    io.end(digest);
  } catch (err) {
    log.warn(`download failed: ${(err as Error).message}`);
    io.destroy();
  } finally {
    await dl.handle.close().catch(() => {});
  }
}

/** Daemon half of the `download` command. */
export const downloadKind: SessionKind<{ file: string; hash: HashName; negotiated: boolean; list: boolean; offset: number | undefined }, PreparedDownload> = {
  cmd: 'download',
  parse(o) {
    if (typeof o.path !== 'string') throw badOptions('download needs {"path": string}');
    if (o.offset !== undefined && (typeof o.offset !== 'number' || !Number.isSafeInteger(o.offset) || o.offset < 0)) throw badOptions('download "offset" must be a non-negative integer');
    return { file: o.path, hash: chooseHash(o.hashes), negotiated: o.hashes !== undefined && o.hashes !== null, list: o.list === true, offset: o.offset as number | undefined };
  },
  prepare: async ({ file, hash, negotiated, list, offset }, ctx) => {
    const at = await resolveBeneath(fromHome(file, ctx.root), { root: ctx.root });
    try {
      if (list) {
        const l = await listDirectory(at.at(), at.shown).catch((err: unknown) => {
          throw fileError(err, at.shown);
        });
        return { path: at.shown, handle: memorySource(new Uint8Array(0)), size: 0, mode: l.mode, listing: { path: at.shown, type: 'dir', ...l } };
      }
      const dl: PreparedDownload = { path: at.shown, ...(await prepareDownload(at.at(), at.shown)), hash, negotiated };
      if (offset !== undefined) {
        dl.resumable = true;
        dl.offset = offset <= dl.size ? offset : 0;
      }
      return dl;
    } finally {
      await at.close();
    }
  },
  reply: (dl) =>
    dl.listing ??
    (dl.negotiated
      ? { path: dl.path, size: dl.size, mode: dl.mode, hash: dl.hash, atime: dl.times?.atimeMs, mtime: dl.times?.mtimeMs, ...(dl.resumable ? { offset: dl.offset } : {}) }
      : { path: dl.path, size: dl.size, mode: dl.mode }),
  run(dl, io, ctx) {
    io.resume(); // nothing more is expected from the client; let its end arrive
    if (dl.listing) {
      io.end();
      return Promise.resolve();
    }
    return runDownload(io, dl, ctx.log, { stallTimeoutMs: ctx.transferTimeoutMs });
  },
};

// ---- client halves ----

/** Options of an upload. */
export interface ClientUploadOptions {
  /** Mode of the remote file (default: the local file's permission bits, without setuid/setgid). */
  mode?: number;
  /** Keep the setuid/setgid bits of `mode` (the daemon drops them otherwise). */
  setid?: boolean;
  onProgress?: (p: TransferProgress) => void;
  /** Stops the upload; the daemon removes its temporary file. */
  signal?: AbortSignal;
  /** Use this hash only (default: BLAKE3 when both sides have it, else SHA-256). */
  checksum?: HashName;
  /** Give the remote file the local file's access and modification times (`cp -p`). */
  preserveTimes?: boolean;
  /**
   * Resumable (`cp --partial`): the daemon continues a partial file an earlier `partial` upload
   * left, and keeps this one's if it fails; the digest covers the whole file.
   */
  partial?: boolean;
}

/** The hashes a client offers: the one asked for, or every one it has, fastest first. */
function offerFor(checksum: HashName | undefined): HashName[] {
  if (checksum === undefined) return availableHashes();
  if (!hashAvailable(checksum)) throw new WirekitError('WK_HASH_UNSUPPORTED', `${HASH_LABELS[checksum]} is not available here (the optional module @napi-rs/blake-hash is not installed)`, { origin: 'local' });
  return [checksum];
}

/**
 * Client half of `upload`: sends a local file to `remotePath` (size, mode and SHA-256 checked by
 * the daemon). The transfer fails with `TimeoutError` when nothing moves for the client's
 * timeout, and at once when the daemon answers with an error (its reply wins over a stalled send).
 */
export async function clientUpload(client: ClientContext, localPath: string, remotePath: string, opts: ClientUploadOptions = {}): Promise<TransferResult> {
  const offer = offerFor(opts.checksum);
  const fh = await open(localPath, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new WirekitError('WK_NOT_FILE', `${localPath} is not a regular file`, { origin: 'local' });
    const size = st.size;
    const conn = await client.connect();
    const sock = conn.socket;
    try {
      // The request is answered before any data is sent; the daemon's progress lines and final
      // reply then come back on the same connection while the data goes out raw.
      const request: Record<string, unknown> = { path: remotePath, size, mode: opts.mode ?? st.mode & 0o777, name: path.basename(localPath), hashes: offer };
      if (opts.setid) request.setid = true;
      if (opts.preserveTimes) Object.assign(request, { atime: st.atimeMs, mtime: st.mtimeMs });
      if (opts.partial) request.partial = true;
      const accepted = await conn.call('upload', request, { timeout: client.timeoutMs, signal: opts.signal });
      // A daemon from before BLAKE3 ignores the offer and answers without "hash": SHA-256.
      const hash = acceptedHash(accepted, offer);
      const given = (accepted as { offset?: unknown } | null)?.offset;
      const start = opts.partial && typeof given === 'number' && Number.isSafeInteger(given) && given >= 0 && given <= size ? given : 0;
      const replyP = conn.expectReply('upload', {
        onProgress: (p) => {
          const b = (p as { bytes?: number } | null)?.bytes;
          if (typeof b === 'number') opts.onProgress?.({ bytes: b, size });
        },
      });
      // An error reply while data still goes out (the daemon's disk is full, say) stops the send:
      // the daemon reads no more, so waiting for the socket to drain would wait for ever.
      const stop = new AbortController();
      replyP.catch((err: unknown) => stop.abort(err));
      const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
      try {
        const streamHash = streamHashFor(hash, size);
        if (start > 0) await hashPrefix(fh, start, streamHash);
        const digest = await sendFile(fh, size, sock, { stallTimeoutMs: client.timeoutMs, signal, hash: streamHash, start });
        sock.write(digest);
        const r = (await replyP) as TransferResult;
        opts.onProgress?.({ bytes: size, size });
        return start > 0 ? { ...r, resumedFrom: start } : r;
      } catch (err) {
        // If the daemon reported an error, prefer it.
        const remote = await Promise.race([replyP.then(() => undefined, (e: unknown) => e), grace(200)]);
        throw remote instanceof Error ? remote : err;
      }
    } finally {
      conn.close();
    }
  } finally {
    await fh.close();
  }
}

/** Options of a download. */
export interface ClientDownloadOptions {
  onProgress?: (p: TransferProgress) => void;
  mode?: number;
  /** Keep the setuid/setgid bits of the mode (dropped otherwise). */
  setid?: boolean;
  /** Releases spent socket buffers every 8 MiB (see `ReceiveFileOptions.collectGarbage`). */
  collectGarbage?: CollectGarbage;
  /** Stops the download; the temporary file is removed before the promise rejects. */
  signal?: AbortSignal;
  /** Use this hash only (default: BLAKE3 when both sides have it, else SHA-256). */
  checksum?: HashName;
  /** Give the local file the remote file's access and modification times (`cp -p`). */
  preserveTimes?: boolean;
  /**
   * Resumable (`cp --partial`): written to `.NAME.wirekit-partial` beside the destination, which
   * is kept when the download fails and continued from its size by the next `partial` download
   * (the daemon sends the rest; the digest covers the whole file). A mismatch removes it.
   */
  partial?: boolean;
}

/**
 * Client half of `download`: `remotePath` to `localPath`, written to a temporary file beside it
 * and renamed into place only when the size and SHA-256 match.
 */
export async function clientDownload(client: ClientContext, remotePath: string, localPath: string, opts: ClientDownloadOptions = {}): Promise<TransferResult> {
  opts.signal?.throwIfAborted();
  const offer = offerFor(opts.checksum);
  let dest = path.resolve(localPath);
  try {
    if ((await stat(dest)).isDirectory()) dest = path.join(dest, path.basename(remotePath));
  } catch {
    // does not exist: fine
  }
  // A partial file from an earlier `partial` download is continued from its size.
  const partialName = opts.partial ? partialNameFor(dest) : undefined;
  let out: FileHandle | undefined;
  let have = 0;
  if (partialName) {
    out = await open(partialName, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
    const st = await out.stat();
    have = st.isFile() ? st.size : 0;
  }
  const request: Record<string, unknown> = { path: remotePath, hashes: offer };
  if (partialName) request.offset = have;
  let opened;
  try {
    opened = await client.open('download', request);
  } catch (err) {
    await out?.close();
    throw err;
  }
  const { reply, stream: io } = opened;
  const info = reply as { size: number; mode: number; atime?: unknown; mtime?: unknown };
  if (!info || typeof info.size !== 'number' || !Number.isSafeInteger(info.size) || info.size < 0) {
    io.destroy();
    throw new WirekitError('WK_PROTOCOL', 'download reply without a valid size', { origin: 'remote' });
  }
  let hash: HashName;
  try {
    hash = acceptedHash(reply, offer);
  } catch (err) {
    io.destroy();
    await out?.close();
    throw err;
  }
  // The daemon names the offset it sends from: ours, or 0 (the file is shorter than our part, or
  // the daemon is older than resuming) and then the partial file starts again.
  const start = partialName && (reply as { offset?: unknown }).offset === have && have <= info.size ? have : 0;
  if (out && start === 0 && have > 0) await out.truncate(0);
  if (!partialName) await sweepStaleTempFiles(dest);
  const temp = partialName ?? tempNameFor(dest);
  try {
    out ??= await open(temp, 'wx', 0o600);
  } catch (err) {
    io.destroy();
    throw err;
  }
  const rx = new TransferReceiver(info.size - start, null, hash);
  let lastReport = 0;
  try {
    await commitReceivedFile(io, rx, out, temp, dest, opts.mode ?? info.mode, {
      hash: streamHashFor(hash, info.size),
      times: opts.preserveTimes ? timesOf(info) : undefined,
      start,
      keepPartial: partialName !== undefined,
      collectGarbage: opts.collectGarbage,
      keepSetid: opts.setid,
      stallTimeoutMs: client.timeoutMs,
      signal: opts.signal,
      onProgress: (bytes) => {
        if (!opts.onProgress || bytes - lastReport < 1024 * 1024) return;
        lastReport = bytes;
        opts.onProgress({ bytes, size: info.size });
      },
    });
    opts.onProgress?.({ bytes: info.size, size: info.size });
    const r = resultOf(dest, info.size, hash, rx.digestHex!);
    return start > 0 ? { ...r, resumedFrom: start } : r;
  } finally {
    io.destroy();
  }
}

/** What `clientList` returns: a remote directory and its entries (links not followed). */
export interface RemoteListing {
  path: string;
  mode: number;
  atime: number;
  mtime: number;
  entries: ListEntry[];
}

/** Lists a remote directory (`download` with `"list": true`; one level, links as links). */
export async function clientList(client: ClientContext, remotePath: string): Promise<RemoteListing> {
  const { reply, stream } = await client.open('download', { path: remotePath, list: true });
  stream.destroy();
  const l = reply as RemoteListing | null;
  if (!l || !Array.isArray(l.entries) || (l as { type?: unknown }).type !== 'dir') throw new WirekitError('WK_PROTOCOL', 'the daemon does not list directories (it is older than cp -r)', { origin: 'remote' });
  return l;
}

/**
 * Creates a remote directory (kept when it exists) or symbolic link, placed like an upload:
 * inside `remotePath` under `name` when that is a directory. Resolves with the path as the
 * daemon shows it.
 */
export async function clientMakeEntry(
  client: ClientContext,
  remotePath: string,
  entry: { type: 'dir' | 'link'; name?: string; mode?: number; target?: string; times?: FileTimes },
): Promise<string> {
  const opts: Record<string, unknown> = { path: remotePath, size: 0, type: entry.type };
  if (entry.name !== undefined) opts.name = entry.name;
  if (entry.mode !== undefined) opts.mode = entry.mode;
  if (entry.target !== undefined) opts.target = entry.target;
  if (entry.times) Object.assign(opts, { atime: entry.times.atimeMs, mtime: entry.times.mtimeMs });
  const { reply, stream } = await client.open('upload', opts);
  stream.destroy();
  const r = reply as { path?: unknown; type?: unknown } | null;
  if (typeof r?.path !== 'string' || r.type !== entry.type) throw new WirekitError('WK_PROTOCOL', `the daemon cannot create a remote ${entry.type === 'dir' ? 'directory' : 'link'} (it is older than cp -r)`, { origin: 'remote' });
  return r.path;
}

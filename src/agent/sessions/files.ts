/**
 * File sessions, both directions. The data goes raw after the reply (no session frames): exactly
 * `size` bytes, then their SHA-256 (32 bytes).
 * - upload: daemon half `uploadKind` (path confined, temporary file created before the reply
 *   `{"path"}`, then the data in, progress and result as control lines out, renamed into place
 *   only when complete and verified); client half `clientUpload`.
 * - download: daemon half `downloadKind` (regular file opened before the reply
 *   `{"path", "size", "mode"}`, then the data out); client half `clientDownload`.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { WirekitError } from '../../errors.js';
import { receiveFile, sendFile, type CollectGarbage } from '../file-pump.js';
import type { Logger } from '../log.js';
import { confinePath } from '../paths.js';
import { TransferReceiver } from '../transfer.js';
import type { ClientContext, SessionKind } from './context.js';
import { badOptions } from './options.js';
import { grace } from './process.js';
import { transferReplies, type TransferReplies } from './replies.js';

export type { TransferReplies } from './replies.js';

/** Progress of a transfer. */
export interface TransferProgress {
  bytes: number;
  size: number;
}

/** Result of a transfer. */
export interface TransferResult {
  path: string;
  size: number;
  sha256: string;
}

/** The name of the temporary file an upload or download of `dest` is written to. */
export function tempNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.wirekit-${randomBytes(6).toString('hex')}.part`);
}

/**
 * Receives a file into the open temporary file `out` through `rx`, then sets its mode and renames
 * it to `dest`. On any failure the temporary file is closed and removed and the error rethrown.
 */
export async function commitReceivedFile(
  io: Duplex,
  rx: TransferReceiver,
  out: FileHandle,
  temp: string,
  dest: string,
  mode: number | undefined,
  opts: { fsync?: boolean; onProgress?: (bytes: number) => void; collectGarbage?: CollectGarbage } = {},
): Promise<void> {
  let committed = false;
  try {
    await receiveFile(io, rx, out, { onProgress: opts.onProgress, collectGarbage: opts.collectGarbage });
    if (mode !== undefined) await out.chmod(mode & 0o7777);
    if (opts.fsync) await out.datasync();
    await out.close();
    await rename(temp, dest);
    committed = true;
  } finally {
    if (!committed) {
      await out.close().catch(() => {});
      await unlink(temp).catch(() => {});
    }
  }
}

// ---- upload, daemon half ----

/** Options of an upload request, its path confined. */
export interface UploadRequest {
  dest: string;
  size: number;
  mode: number | undefined;
}

/** An upload prepared before the switch: the destination was checked and the temp file created. */
export interface PreparedUpload {
  dest: string;
  temp: string;
  out: FileHandle;
  size: number;
  mode: number | undefined;
}

/** Options of an upload as the daemon runs it. */
export interface UploadOptions {
  /** Flush the file to stable storage before the rename (default false, like cp and rsync). */
  fsync?: boolean;
  /** Bytes between progress replies (default 8 MiB). */
  progressEvery?: number;
  /** Releases spent socket buffers now and then (see `ReceiveFileOptions.collectGarbage`). */
  collectGarbage?: CollectGarbage;
}

/** Creates the temporary file next to `dest` (mode 0600, exclusive) and opens it for writing. */
export async function prepareUpload(dest: string, size: number, mode: number | undefined): Promise<PreparedUpload> {
  const dir = path.dirname(dest);
  const st = await stat(dir);
  if (!st.isDirectory()) throw new WirekitError('WK_NOT_DIR', `${dir} is not a directory`, { origin: 'local' });
  try {
    if ((await stat(dest)).isDirectory()) throw new WirekitError('WK_IS_DIR', `${dest} is a directory`, { origin: 'local' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const temp = tempNameFor(dest);
  const out = await open(temp, 'wx', 0o600);
  return { dest, temp, out, size, mode };
}

/**
 * Receives an upload from the raw stream `io`: data, then the digest; writes to the temp file,
 * and renames it into place only when complete and verified. Any failure removes the temp file.
 */
export async function runUpload(io: Duplex, up: PreparedUpload, replies: TransferReplies, log: Logger, opts: UploadOptions = {}): Promise<void> {
  const rx = new TransferReceiver(up.size, null);
  const every = opts.progressEvery ?? 8 * 1024 * 1024;
  let nextProgress = every;
  try {
    await commitReceivedFile(io, rx, up.out, up.temp, up.dest, up.mode, {
      fsync: opts.fsync,
      collectGarbage: opts.collectGarbage,
      onProgress: (bytes) => {
        if (bytes < nextProgress) return;
        nextProgress = bytes + every;
        void replies.progress({ bytes, size: up.size });
      },
    });
    await replies.ok({ path: up.dest, size: up.size, sha256: rx.sha256 });
    log.info(`upload ${up.dest}: ${up.size} bytes`);
  } catch (err) {
    log.warn(`upload ${up.dest} failed: ${(err as Error).message}`);
    await Promise.resolve(replies.fail(err)).catch(() => {});
  }
  io.end();
}

/** Daemon half of the `upload` command. */
export const uploadKind: SessionKind<UploadRequest, PreparedUpload> = {
  cmd: 'upload',
  async parse(o, ctx) {
    if (typeof o.path !== 'string') throw badOptions('upload needs {"path": string, "size": integer}');
    const size = o.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw badOptions('upload needs a non-negative integer size');
    const mode = typeof o.mode === 'number' && Number.isInteger(o.mode) ? o.mode : undefined;
    return { dest: await confinePath(o.path, { root: ctx.root }), size, mode };
  },
  prepare: ({ dest, size, mode }) => prepareUpload(dest, size, mode),
  reply: (up) => ({ path: up.dest }),
  run: (up, io, ctx) => runUpload(io, up, transferReplies(io), ctx.log, { fsync: ctx.fsync, collectGarbage: ctx.collectGarbage }),
};

// ---- download, daemon half ----

/** A file opened for download. */
export interface PreparedDownload {
  path: string;
  handle: FileHandle;
  size: number;
  mode: number;
}

/** Opens a file for download: resolves with its handle, size and mode (regular files only). */
export async function prepareDownload(file: string): Promise<{ handle: FileHandle; size: number; mode: number }> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new WirekitError('WK_NOT_FILE', `${file} is not a regular file`, { origin: 'local' });
    return { handle, size: st.size, mode: st.mode & 0o7777 };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Sends exactly `size` bytes of the file, then their SHA-256. */
export async function runDownload(io: Duplex, dl: { handle: FileHandle; size: number }, log: Logger): Promise<void> {
  try {
    const digest = await sendFile(dl.handle, dl.size, io);
    io.end(digest);
  } catch (err) {
    log.warn(`download failed: ${(err as Error).message}`);
    io.destroy();
  } finally {
    await dl.handle.close().catch(() => {});
  }
}

/** Daemon half of the `download` command. */
export const downloadKind: SessionKind<string, PreparedDownload> = {
  cmd: 'download',
  async parse(o, ctx) {
    if (typeof o.path !== 'string') throw badOptions('download needs {"path": string}');
    return confinePath(o.path, { root: ctx.root });
  },
  prepare: async (file) => ({ path: file, ...(await prepareDownload(file)) }),
  reply: (dl) => ({ path: dl.path, size: dl.size, mode: dl.mode }),
  run(dl, io, ctx) {
    io.resume(); // nothing more is expected from the client; let its end arrive
    return runDownload(io, dl, ctx.log);
  },
};

// ---- client halves ----

/** Client half of `upload`: sends a local file to `remotePath` (size, mode and SHA-256 checked by the daemon). */
export async function clientUpload(client: ClientContext, localPath: string, remotePath: string, opts: { mode?: number; onProgress?: (p: TransferProgress) => void } = {}): Promise<TransferResult> {
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
      await conn.call('upload', { path: remotePath, size, mode: opts.mode ?? st.mode & 0o777 }, { timeout: client.timeoutMs });
      const replyP = conn.expectReply('upload', {
        onProgress: (p) => {
          const b = (p as { bytes?: number } | null)?.bytes;
          if (typeof b === 'number') opts.onProgress?.({ bytes: b, size });
        },
      });
      replyP.catch(() => {});
      try {
        const digest = await sendFile(fh, size, sock);
        sock.write(digest);
        const r = (await replyP) as TransferResult;
        opts.onProgress?.({ bytes: size, size });
        return r;
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
  /** Releases spent socket buffers every 8 MiB (see `ReceiveFileOptions.collectGarbage`). */
  collectGarbage?: CollectGarbage;
}

/**
 * Client half of `download`: `remotePath` to `localPath`, written to a temporary file beside it
 * and renamed into place only when the size and SHA-256 match.
 */
export async function clientDownload(client: ClientContext, remotePath: string, localPath: string, opts: ClientDownloadOptions = {}): Promise<TransferResult> {
  const { reply, stream: io } = await client.open('download', { path: remotePath });
  const info = reply as { size: number; mode: number };
  if (!info || typeof info.size !== 'number' || !Number.isSafeInteger(info.size) || info.size < 0) {
    io.destroy();
    throw new WirekitError('WK_PROTOCOL', 'download reply without a valid size', { origin: 'remote' });
  }
  let dest = path.resolve(localPath);
  try {
    if ((await stat(dest)).isDirectory()) dest = path.join(dest, path.basename(remotePath));
  } catch {
    // does not exist: fine
  }
  const temp = tempNameFor(dest);
  let out: FileHandle;
  try {
    out = await open(temp, 'wx', 0o600);
  } catch (err) {
    io.destroy();
    throw err;
  }
  const rx = new TransferReceiver(info.size, null);
  let lastReport = 0;
  try {
    await commitReceivedFile(io, rx, out, temp, dest, opts.mode ?? info.mode, {
      collectGarbage: opts.collectGarbage,
      onProgress: (bytes) => {
        if (!opts.onProgress || bytes - lastReport < 1024 * 1024) return;
        lastReport = bytes;
        opts.onProgress({ bytes, size: info.size });
      },
    });
    opts.onProgress?.({ bytes: info.size, size: info.size });
    return { path: dest, size: info.size, sha256: rx.sha256! };
  } finally {
    io.destroy();
  }
}

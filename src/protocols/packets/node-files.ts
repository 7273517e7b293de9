/**
 * File transfer for Armchair's packet protocol, between disk and a `PacketConnection`: the only
 * file-system code of the protocol. The connection moves the bytes (`sendFileStreams`,
 * `receiveFileStreams`); this file reads and writes the files.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { WaitOptions } from '../../channels/frame-channel.js';
import { PacketProtocolError, PacketUsageError } from './errors.js';
import type { FileSink, PacketConnection } from './node-connection.js';
import { MarkerScanner } from './packet-session.js';

/** A file received by `receiveFiles`. */
export interface ReceivedFile {
  name: string;
  path: string;
  size: number;
}

/** Options of `receiveFiles`. */
export interface ReceiveFilesOptions extends WaitOptions {
  /** Send the `ready` for the `sending_files` packet when done. Default true. */
  ack?: boolean;
  /**
   * Opens the destination of a file; default: `atomicFileWriter(dir/name)`, which writes a hidden
   * temporary file beside it and renames it into place only when the file ended completely (an
   * existing file keeps its old content when the transfer is cut off).
   */
  open?: FileSink;
}

/** Options of `sendFiles`. */
export interface SendFilesOptions extends WaitOptions {
  /** Wait for the receiver's `ready`. Default true. */
  waitAck?: boolean;
  /** Read size. Default 256 KiB. */
  chunkSize?: number;
}

/**
 * Sends files from disk over `conn`: a `sending_files` packet with their base names (waits for
 * the window), then each file's bytes streamed from disk, then waits for the receiver's `ready`.
 * In compat mode a file that contains the end marker is refused (`WK_PACKET_MARKER_IN_FILE`)
 * before anything is sent.
 */
export async function sendFiles(conn: PacketConnection, paths: string[], options: SendFilesOptions = {}): Promise<number> {
  const chunkSize = options.chunkSize ?? 256 * 1024;
  if (conn.session.fileMode === 'compat') {
    for (const p of paths) {
      if (await fileContains(p, conn.session.endMarker, chunkSize)) {
        throw new PacketUsageError('WK_PACKET_MARKER_IN_FILE', `file ${p} contains the end marker and cannot be sent in compat mode`);
      }
    }
  }
  const files = paths.map((p) => ({ name: path.basename(p), read: () => readFile(p, chunkSize) }));
  return conn.sendFileStreams(files, options);
}

/**
 * Receives the next file transfer on `conn` into directory `dir`: each file is written as
 * `dir/name` while its bytes arrive (or into `options.open(name)`), then the transfer is
 * acknowledged with `ready`. Names that are not plain base names are refused by the session
 * (`UnsafeFileNameError`) and their bytes discarded.
 */
export async function receiveFiles(conn: PacketConnection, dir: string, options: ReceiveFilesOptions = {}): Promise<ReceivedFile[]> {
  const open: FileSink = (name) => {
    const full = path.join(dir, name);
    if (path.dirname(full) !== path.resolve(dir) && path.dirname(full) !== path.normalize(dir)) {
      throw new PacketProtocolError('WK_PACKET_FILE_NAME', `refused file name ${JSON.stringify(name)}`, { origin: 'remote' });
    }
    return options.open ? options.open(name) : atomicFileWriter(full);
  };
  const received = await conn.receiveFileStreams(open, options);
  return received.map((f) => ({ name: f.name, path: path.join(dir, f.name), size: f.size }));
}

/**
 * A writable stream for the file `dest` that is atomic or nothing: the bytes go to a hidden
 * temporary file beside it (`.NAME.part-PID-RANDOM`, created exclusively), which `end()` renames
 * to `dest` once everything is on disk; `destroy()` (or any error) before that removes it, and
 * `dest` is never touched. Late completions after a destroy are ignored.
 */
export function atomicFileWriter(dest: string): Writable {
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.part-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined;
  let committed = false;
  return new Writable({
    construct(cb) {
      open(temp, 'wx', 0o666).then(
        (h) => {
          fh = h;
          cb();
        },
        (err: Error) => cb(err),
      );
    },
    writev(chunks, cb) {
      fh!.writev(chunks.map((c) => c.chunk as Buffer)).then(() => cb(), (err: Error) => cb(err));
    },
    final(cb) {
      const h = fh!;
      fh = undefined;
      h.close()
        .then(() => rename(temp, dest))
        .then(
          () => {
            committed = true;
            cb();
          },
          (err: Error) => cb(err),
        );
    },
    destroy(err, cb) {
      if (committed) return cb(err);
      const h = fh;
      fh = undefined;
      // The stream may be destroyed with a write pending: its completion finds no handle to use.
      Promise.resolve(h?.close())
        .catch(() => {})
        .then(() => unlink(temp))
        .catch(() => {})
        .then(() => cb(err));
    },
  });
}

/** The bytes of the file at `p`, in reads of `chunkSize`; the file is closed when iteration stops. */
async function* readFile(p: string, chunkSize: number): AsyncGenerator<Uint8Array> {
  const input = createReadStream(p, { highWaterMark: chunkSize });
  try {
    for await (const chunk of input as AsyncIterable<Uint8Array>) yield chunk;
  } finally {
    input.destroy();
  }
}

/** True when the file at `p` contains `marker` (streamed, linear). */
async function fileContains(p: string, marker: Uint8Array, chunkSize: number): Promise<boolean> {
  const scanner = new MarkerScanner(marker);
  for await (const chunk of readFile(p, chunkSize)) if (scanner.push(chunk)) return true;
  return false;
}

/**
 * File transfer for Armchair's packet protocol, between disk and a `PacketConnection`: the only
 * file-system code of the protocol. The connection moves the bytes (`sendFileStreams`,
 * `receiveFileStreams`); this file reads and writes the files.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import path from 'node:path';
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
  /** Opens the destination of a file; default: the file `dir/name`, created or truncated. */
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
    return options.open ? options.open(name) : createWriteStream(full);
  };
  const received = await conn.receiveFileStreams(open, options);
  return received.map((f) => ({ name: f.name, path: path.join(dir, f.name), size: f.size }));
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

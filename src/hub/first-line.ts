/**
 * Reads the first link line of a connection (the `register` or `attach` of an agent, the hub's
 * `attached` or `refused` on a dial-back): one JSON line of at most 64 KiB, within a time limit.
 * The socket is paused when the promise settles, with the bytes read past the line left in the
 * returned reader, so the next owner continues from the exact next byte.
 */
import type { Duplex } from 'node:stream';
import { FrameReader } from '../codecs/codec.js';
import { ndjson } from '../codecs/lines.js';
import { ConnectionClosedError, TimeoutError } from '../errors.js';
import { MAX_LINK_LINE } from './link-messages.js';

export interface FirstLine {
  /** The decoded JSON value of the line (not yet checked as a link message). */
  readonly value: unknown;
  /** Holds the bytes after the line (`takeRemaining()`), and decodes further lines. */
  readonly reader: FrameReader<unknown>;
}

/**
 * Rejects with the codec's error (not JSON, over 64 KiB), `ConnectionClosedError` or `TimeoutError`.
 * `reader`: the reader of an earlier line on this socket (its leftover bytes are decoded first), for
 * handshakes of several lines.
 */
export function readFirstLine(socket: Duplex, timeoutMs: number, reader: FrameReader<unknown> = new FrameReader<unknown>(ndjson({ maxLineLength: MAX_LINK_LINE }))): Promise<FirstLine> {
  return new Promise((resolve, reject) => {
    let buffered: unknown;
    try {
      buffered = reader.next();
    } catch (err) {
      reject(err as Error);
      return;
    }
    if (buffered !== undefined) {
      resolve({ value: buffered, reader });
      return;
    }
    const settle = () => {
      clearTimeout(timer);
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('end', onGone);
      socket.removeListener('close', onGone);
    };
    const timer = setTimeout(() => {
      settle();
      reject(new TimeoutError('the first line', timeoutMs));
    }, timeoutMs);
    const onGone = () => {
      settle();
      reject(new ConnectionClosedError('closed before its first line'));
    };
    const onData = (chunk: Uint8Array) => {
      let value: unknown;
      try {
        reader.feed(chunk);
        value = reader.next();
      } catch (err) {
        settle();
        reject(err);
        return;
      }
      if (value === undefined) return;
      settle();
      resolve({ value, reader });
    };
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
    // A socket an earlier line paused does not flow again by a new 'data' listener alone.
    socket.resume();
  });
}

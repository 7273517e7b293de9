/**
 * Takes `\n`-terminated lines (an optional `\r` before the `\n` is dropped) off a `ByteQueue`,
 * with a length limit enforced while scanning. An over-long line is reported once and skipped up
 * to its newline; lines after it, even in the same chunk, are kept.
 *
 * (The core `LinesCodec` drops every buffered byte on overflow, including complete lines after
 * the long one; see the report. This reader avoids that.)
 */
import type { ByteQueue } from '../../bytes/byte-queue.js';

const LF = 0x0a;
const CR = 0x0d;

/** Returned by `LineReader.next` for a line over the limit (already skipped or being skipped). */
export const LINE_TOO_LONG: unique symbol = Symbol('line too long');

export class LineReader {
  private discarding = false;

  constructor(readonly maxLineLength: number) {}

  /** The next line, `undefined` when more bytes are needed, or `LINE_TOO_LONG` once per long line. */
  next(queue: ByteQueue): Uint8Array | undefined | typeof LINE_TOO_LONG {
    if (this.discarding) {
      const at = queue.indexOf(LF);
      if (at < 0) {
        queue.skip(queue.length);
        return undefined;
      }
      queue.skip(at + 1);
      this.discarding = false;
    }
    const max = this.maxLineLength;
    // Scan at most max + 1 bytes (room for a CR) before the LF.
    const at = queue.indexOf(LF, max + 1);
    if (at < 0) {
      if (queue.length > max + 1) {
        queue.skip(max + 1);
        this.discarding = true;
        return LINE_TOO_LONG;
      }
      return undefined;
    }
    const raw = queue.read(at)!;
    queue.skip(1);
    const line = at > 0 && raw[at - 1] === CR ? raw.subarray(0, at - 1) : raw;
    if (line.length > max) return LINE_TOO_LONG;
    return line;
  }
}

/** True for a line holding only spaces, tabs or CRs. */
export function isBlankLine(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

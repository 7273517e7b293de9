/**
 * Takes `\n`-terminated lines (an optional `\r` before the `\n` is dropped) off a `ByteQueue`,
 * with a length limit enforced while scanning: the core `lines()` codec, with an over-long line
 * turned into a sentinel value (reported once; the line is skipped up to its newline and lines
 * after it, even in the same chunk, are kept).
 */
import type { ByteQueue } from '../../bytes/byte-queue.js';
import { FrameTooLargeError } from '../../codecs/errors.js';
import { lines, type LinesCodec } from '../../codecs/lines.js';

const CR = 0x0d;

/** Returned by `LineReader.next` for a line over the limit (already skipped or being skipped). */
export const LINE_TOO_LONG: unique symbol = Symbol('line too long');

export class LineReader {
  private readonly codec: LinesCodec<Uint8Array>;

  constructor(readonly maxLineLength: number) {
    this.codec = lines({ maxLineLength, allowUnterminated: true });
  }

  /** The next line, `undefined` when more bytes are needed, or `LINE_TOO_LONG` once per long line. */
  next(queue: ByteQueue): Uint8Array | undefined | typeof LINE_TOO_LONG {
    try {
      return this.codec.decode(queue);
    } catch (err) {
      if (err instanceof FrameTooLargeError) return LINE_TOO_LONG;
      throw err;
    }
  }

  /**
   * At end of input, after `next` gave `undefined`: the unterminated last line (osctld serves a
   * last request without its newline), `undefined` when nothing is left (or only the rest of an
   * over-long line being skipped), or `LINE_TOO_LONG`.
   */
  last(queue: ByteQueue): Uint8Array | undefined | typeof LINE_TOO_LONG {
    try {
      return this.codec.decodeEof(queue);
    } catch (err) {
      if (err instanceof FrameTooLargeError) return LINE_TOO_LONG;
      throw err;
    }
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

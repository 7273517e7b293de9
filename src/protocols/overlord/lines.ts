/**
 * The line framing of the Overlord link (sans-I/O): messages end in LF (ghosts send CRLF; a CR
 * before the LF is dropped). The scan remembers where it stopped, so bytes are looked at once.
 * A line over `maxLine` bytes is reported once (`{ tooLong: true }`) and its bytes are discarded,
 * never buffered, up to its LF; the stream then goes on.
 *
 * `take()` returns what is buffered past the last line handed out: a child connection's session
 * bytes that came in the same read as its register.
 */
import { concatBytes } from '../../bytes/text.js';

export type LineEvent = { readonly line: Uint8Array } | { readonly tooLong: true };

export const DEFAULT_MAX_LINE = 1024 * 1024;

export class LineSplitter {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes of `chunks` already scanned for LF. */
  private scanned = 0;
  private discarding = false;

  constructor(readonly maxLine: number = DEFAULT_MAX_LINE) {}

  get length(): number {
    return this.buffered;
  }

  /** Adds bytes. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.discarding) {
      const lf = chunk.indexOf(0x0a);
      if (lf < 0) return;
      this.discarding = false;
      chunk = chunk.subarray(lf + 1);
      if (chunk.length === 0) return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next line, a too-long report, or `undefined` (need more). */
  next(): LineEvent | undefined {
    // Find an LF at or after `scanned`.
    let pos = 0;
    for (const c of this.chunks) {
      const start = Math.max(0, this.scanned - pos);
      if (start < c.length) {
        const i = c.indexOf(0x0a, start);
        if (i >= 0) {
          const end = pos + i;
          if (end > this.maxLine) {
            this.consume(end + 1);
            return { tooLong: true };
          }
          const raw = this.consume(end + 1);
          const stop = raw.length >= 2 && raw[raw.length - 2] === 0x0d ? raw.length - 2 : raw.length - 1;
          return { line: raw.subarray(0, stop) };
        }
      }
      pos += c.length;
    }
    this.scanned = this.buffered;
    if (this.buffered > this.maxLine + 1) {
      // Over the limit with no end in sight: drop it now and skip the rest of it as it comes.
      this.chunks = [];
      this.buffered = 0;
      this.scanned = 0;
      this.discarding = true;
      return { tooLong: true };
    }
    return undefined;
  }

  /** Everything buffered (bytes after the last line); the splitter is empty afterwards. */
  take(): Uint8Array {
    const out = this.chunks.length === 1 ? this.chunks[0]! : concatBytes(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.scanned = 0;
    return out;
  }

  private consume(n: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        parts.push(c);
        left -= c.length;
        this.chunks.shift();
      } else {
        parts.push(c.subarray(0, left));
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
    this.scanned = 0;
    return parts.length === 1 ? parts[0]! : concatBytes(parts);
  }
}

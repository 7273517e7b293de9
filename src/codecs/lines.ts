import type { ByteQueue } from '../bytes/byte-queue.js';
import { utf8Decode, utf8Encode } from '../bytes/text.js';
import { WirekitError } from '../errors.js';
import type { Codec } from './codec.js';
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from './errors.js';

const LF = 0x0a;
const CR = 0x0d;

/** Options shared by every line codec. */
export interface LinesOptions {
  /**
   * Maximum line length in bytes, not counting the line ending. Enforced while scanning: a longer
   * line raises `FrameTooLargeError` once, is discarded up to its newline, and decoding goes on.
   * Default 1 MiB.
   */
  maxLineLength?: number;
  /** Line ending written by the encoder. Both LF and CRLF are always accepted when decoding. */
  eol?: '\n' | '\r\n';
  /** At end of input, return a last line that has no line ending instead of raising. Default false. */
  allowUnterminated?: boolean;
}

export const DEFAULT_MAX_LINE_LENGTH = 1024 * 1024;

/**
 * Newline-delimited frames (LF or CRLF). The line body is turned into a frame by `parse`; the
 * encoder appends the line ending to what `serialize` produces.
 */
export class LinesCodec<T> implements Codec<T> {
  readonly name: string;
  readonly maxLineLength: number;
  private readonly eol: Uint8Array;
  private readonly allowUnterminated: boolean;
  private discarding = false;

  constructor(
    private readonly parse: (line: Uint8Array) => T | undefined,
    private readonly serialize: (frame: T) => Uint8Array | string,
    options: LinesOptions = {},
    name = 'line',
  ) {
    this.name = name;
    this.maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.eol = utf8Encode(options.eol ?? '\n');
    this.allowUnterminated = options.allowUnterminated ?? false;
  }

  decode(queue: ByteQueue): T | undefined {
    for (;;) {
      if (this.discarding) {
        const at = queue.indexOf(LF);
        if (at < 0) {
          queue.skip(queue.length);
          return undefined;
        }
        queue.skip(at + 1);
        this.discarding = false;
      }
      // A CR before the LF does not count toward the limit.
      const max = this.maxLineLength;
      const at = queue.indexOf(LF, max + 1);
      if (at < 0) {
        if (queue.length > max + 1) return this.overflow(queue, queue.length);
        return undefined;
      }
      const raw = queue.read(at)!;
      queue.skip(1);
      const line = at > 0 && raw[at - 1] === CR ? raw.subarray(0, at - 1) : raw;
      if (line.length > max) throw new FrameTooLargeError(this.name, line.length, max, false);
      const frame = this.parse(line);
      if (frame !== undefined) return frame;
      // `undefined` from parse means "skip this line" (blank lines in NDJSON).
    }
  }

  decodeEof(queue: ByteQueue): T | undefined {
    if (this.discarding || queue.length === 0) {
      queue.skip(queue.length);
      return undefined;
    }
    if (!this.allowUnterminated) throw new TruncatedFrameError(`a ${this.name}`, queue.length, ' (no line ending)');
    let line = queue.drain();
    if (line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
    if (line.length > this.maxLineLength) throw new FrameTooLargeError(this.name, line.length, this.maxLineLength, false);
    return this.parse(line);
  }

  encode(frame: T): Uint8Array {
    const body = this.serialize(frame);
    const bytes = typeof body === 'string' ? utf8Encode(body) : body;
    if (bytes.indexOf(LF) >= 0) {
      throw new WirekitError('WK_ENCODE', `cannot encode a ${this.name} that contains a newline`, { origin: 'local' });
    }
    const out = new Uint8Array(bytes.length + this.eol.length);
    out.set(bytes, 0);
    out.set(this.eol, bytes.length);
    return out;
  }

  private overflow(queue: ByteQueue, seen: number): never {
    queue.skip(queue.length);
    this.discarding = true;
    throw new FrameTooLargeError(this.name, seen, this.maxLineLength, false);
  }
}

/** Lines as raw bytes (without the line ending). */
export function lines(options?: LinesOptions): LinesCodec<Uint8Array> {
  return new LinesCodec<Uint8Array>((l) => l, (b) => b, options, 'line');
}

/** Lines as UTF-8 text (without the line ending). */
export function textLines(options?: LinesOptions): LinesCodec<string> {
  return new LinesCodec<string>((l) => utf8Decode(l), (s) => s, options, 'text line');
}

/** Options of the NDJSON codec. */
export interface NdjsonOptions extends LinesOptions {
  /** Skip lines that are empty or only whitespace. Default true. */
  skipBlank?: boolean;
}

function isBlank(line: Uint8Array): boolean {
  for (let i = 0; i < line.length; i++) {
    const b = line[i];
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

/**
 * Newline-delimited JSON: one JSON value per line. A line that is not valid JSON raises
 * `MalformedFrameError` (the line is consumed; the next line decodes normally).
 */
export function ndjson<T = unknown>(options: NdjsonOptions = {}): LinesCodec<T> {
  const skipBlank = options.skipBlank ?? true;
  return new LinesCodec<T>(
    (line) => {
      if (line.length === 0 || (skipBlank && line[0] !== 0x7b && isBlank(line))) {
        if (skipBlank) return undefined;
      }
      const text = utf8Decode(line);
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new MalformedFrameError('invalid JSON in line', line, err);
      }
    },
    (value) => {
      const text = JSON.stringify(value);
      if (text === undefined) throw new WirekitError('WK_ENCODE', 'value cannot be encoded as JSON', { origin: 'local' });
      return text;
    },
    options,
    'NDJSON line',
  );
}

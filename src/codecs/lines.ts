import type { ByteQueue } from '../bytes/byte-queue.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { utf8Decode, utf8Encode } from '../bytes/text.js';
import type { Codec } from './codec.js';
import { EncodeError, FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from './errors.js';

const LF = 0x0a;
const CR = 0x0d;
const NO_CACHE: unique symbol = Symbol('no-cache');
const SKIPPED: unique symbol = Symbol('skipped');

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
  // Text fast path: complete lines at the front of the first chunk, decoded into one string.
  // Valid only while the queue's front is unchanged by anyone else (checked via frontVersion),
  // and only when every byte maps to one UTF-16 unit so that byte and character offsets agree.
  private cache: string | undefined;
  private cachePos = 0;
  private cacheVersion = -1;

  /**
   * @param parse turns the line's bytes into a frame; `undefined` skips the line.
   * @param serialize turns a frame into the line's bytes or text (without line ending).
   * @param parseText optional: the same as `parse` for a line already decoded as UTF-8; enables
   *   decoding many short lines from one string.
   */
  constructor(
    private readonly parse: (line: Uint8Array) => T | undefined,
    private readonly serialize: (frame: T) => Uint8Array | string,
    options: LinesOptions = {},
    name = 'line',
    private readonly parseText?: (line: string, raw: () => Uint8Array) => T | undefined,
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
      if (this.parseText !== undefined) {
        const r = this.decodeCached(queue);
        if (r !== NO_CACHE) {
          if (r !== SKIPPED) return r as T;
          continue;
        }
      }
      // A CR before the LF does not count toward the limit.
      const max = this.maxLineLength;
      const at = queue.indexOf(LF, max + 1);
      if (at < 0) {
        if (queue.length > max + 1) return this.overflow(queue, Math.min(queue.length, max + 2));
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

  /** Takes one line from the decoded-text cache, refilling it from the first chunk when useful. */
  private decodeCached(queue: ByteQueue): T | typeof NO_CACHE | typeof SKIPPED {
    let text = this.cache;
    if (text === undefined || this.cacheVersion !== queue.frontVersion || this.cachePos >= text.length) {
      this.cache = text = undefined;
      const front = queue.frontChunk();
      if (front === undefined || front.length < 256) return NO_CACHE;
      const last = front.lastIndexOf(LF);
      // Worth it only for several lines; one long line takes the byte path.
      if (last < 128) return NO_CACHE;
      const decoded = utf8Decode(front, 0, last + 1);
      if (decoded.length !== last + 1) return NO_CACHE; // multi-byte text: offsets would differ
      this.cache = text = decoded;
      this.cachePos = 0;
    }
    const pos = this.cachePos;
    const nl = text.indexOf('\n', pos);
    let end = nl;
    if (end > pos && text.charCodeAt(end - 1) === CR) end--;
    this.cachePos = nl + 1;
    queue.skip(nl + 1 - pos);
    this.cacheVersion = queue.frontVersion;
    if (end - pos > this.maxLineLength) throw new FrameTooLargeError(this.name, end - pos, this.maxLineLength, false);
    const line = text.slice(pos, end);
    const frame = this.parseText!(line, () => utf8Encode(line));
    return frame === undefined ? SKIPPED : frame;
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

  encode(frame: T, out: ByteWriter): void {
    const body = this.serialize(frame);
    const bytes = typeof body === 'string' ? utf8Encode(body) : body;
    if (bytes.indexOf(LF) >= 0) {
      throw new EncodeError(`cannot encode a ${this.name} that contains a newline`);
    }
    out.append(bytes);
    out.bytes(this.eol);
  }

  /** Drops the `scanned` bytes known to hold no LF; the rest of the line is skipped by later calls. */
  private overflow(queue: ByteQueue, scanned: number): never {
    const seen = queue.length;
    queue.skip(scanned);
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
  return new LinesCodec<string>((l) => utf8Decode(l), (s) => s, options, 'text line', (s) => s);
}

/** Options of the NDJSON codec. */
export interface NdjsonOptions extends LinesOptions {
  /** Skip lines that are empty or only whitespace. Default true. */
  skipBlank?: boolean;
}

/**
 * Newline-delimited JSON: one JSON value per line. A line that is not valid JSON raises
 * `MalformedFrameError` (the line is consumed; the next line decodes normally).
 */
export function ndjson<T = unknown>(options: NdjsonOptions = {}): LinesCodec<T> {
  const skipBlank = options.skipBlank ?? true;
  const parseText = (text: string, raw: () => Uint8Array): T | undefined => {
    if (skipBlank && (text.length === 0 || (text.charCodeAt(0) !== 0x7b && text.trim() === ''))) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new MalformedFrameError('invalid JSON in line', raw(), err);
    }
  };
  return new LinesCodec<T>(
    (line) => parseText(utf8Decode(line), () => line),
    (value) => {
      const text = JSON.stringify(value);
      if (text === undefined) throw new EncodeError('value cannot be encoded as JSON');
      return text;
    },
    options,
    'NDJSON line',
    parseText,
  );
}

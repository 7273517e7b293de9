import type { ByteQueue } from '../bytes/byte-queue.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { base64Decode, base64Encode, utf8DecodeStrict, utf8Encode } from '../bytes/text.js';
import type { Codec } from './codec.js';
import { CodecUsageError, FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from './errors.js';

/** Turns a message body into a frame and back. `decode` throws `MalformedFrameError` on bad input. */
export interface BodyTransform<T> {
  decode(body: Uint8Array): T;
  encode(frame: T): Uint8Array;
}

export interface DelimitedOptions<T> {
  /** Start marker (bytes or a string encoded as UTF-8). */
  start: Uint8Array | string;
  /** End marker. */
  end: Uint8Array | string;
  body: BodyTransform<T>;
  /** Maximum body length in bytes, enforced while scanning for the end marker. Default 16 MiB. */
  maxBodyLength?: number;
  /**
   * What to do with bytes before a start marker: `'skip'` them silently (as the original `%base64$` UDS codec
   * does) or raise `MalformedFrameError` naming them (they are consumed either way). Default 'skip'.
   */
  junk?: 'skip' | 'error';
  name?: string;
}

export const DEFAULT_MAX_BODY_LENGTH = 16 * 1024 * 1024;

function toBytes(m: Uint8Array | string): Uint8Array {
  return typeof m === 'string' ? utf8Encode(m) : m;
}

/**
 * Messages bounded by a start and an end marker, with a body transform (for example base64, so
 * that the body cannot contain the markers). An empty body is a message.
 */
export class DelimitedCodec<T> implements Codec<T> {
  readonly name: string;
  readonly maxBodyLength: number;
  private readonly start: Uint8Array;
  private readonly end: Uint8Array;
  private readonly startNeedle: number | Uint8Array;
  private readonly endNeedle: number | Uint8Array;
  private readonly body: BodyTransform<T>;
  private readonly junk: 'skip' | 'error';
  private discarding = false;

  constructor(options: DelimitedOptions<T>) {
    this.start = toBytes(options.start);
    this.end = toBytes(options.end);
    if (this.start.length === 0 || this.end.length === 0) throw new CodecUsageError('DelimitedCodec: markers must not be empty');
    // Single-byte markers use the fast byte scan.
    this.startNeedle = this.start.length === 1 ? this.start[0]! : this.start;
    this.endNeedle = this.end.length === 1 ? this.end[0]! : this.end;
    this.body = options.body;
    this.maxBodyLength = options.maxBodyLength ?? DEFAULT_MAX_BODY_LENGTH;
    this.junk = options.junk ?? 'skip';
    this.name = options.name ?? 'delimited message';
  }

  decode(queue: ByteQueue): T | undefined {
    if (this.discarding) {
      const at = queue.indexOf(this.endNeedle);
      if (at < 0) {
        queue.skip(Math.max(0, queue.length - (this.end.length - 1)));
        return undefined;
      }
      queue.skip(at + this.end.length);
      this.discarding = false;
    }
    if (queue.length === 0) return undefined;
    // Find the start marker at the front; anything before it is junk. The front is checked
    // directly so the resumable scan below keeps its place between calls.
    const front = this.startsWithMarker(queue);
    if (front === undefined) return undefined;
    if (!front) {
      const s = queue.indexOf(this.startNeedle);
      const junkLen = s < 0 ? Math.max(0, queue.length - (this.start.length - 1)) : s;
      if (junkLen > 0) {
        const junk = this.junk === 'error' ? queue.read(junkLen) : (queue.skip(junkLen), undefined);
        if (junk) throw new MalformedFrameError(`${junkLen} byte${junkLen === 1 ? '' : 's'} before the start marker of a ${this.name}`, junk);
      }
      if (s < 0) return undefined;
      if (this.startsWithMarker(queue) !== true) return undefined;
    }
    const startLen = this.start.length;
    const max = this.maxBodyLength;
    const e = queue.indexOf(this.endNeedle, startLen + max, startLen);
    if (e < 0) {
      if (queue.length - startLen > max + this.end.length - 1) {
        const seen = queue.length - startLen;
        // No end marker starts before startLen + max: drop that much, the discard state skips the rest.
        queue.skip(startLen + max);
        this.discarding = true;
        throw new FrameTooLargeError(this.name, seen, max, false);
      }
      return undefined;
    }
    if (e - startLen > max) {
      queue.skip(e + this.end.length);
      throw new FrameTooLargeError(this.name, e - startLen, max, false);
    }
    const raw = queue.read(e)!;
    queue.skip(this.end.length);
    return this.body.decode(raw.subarray(startLen));
  }

  /** true/false when the queue does or does not start with the start marker; undefined if too short to tell. */
  private startsWithMarker(queue: ByteQueue): boolean | undefined {
    const m = this.start;
    for (let i = 0; i < m.length; i++) {
      const b = queue.byteAt(i);
      if (b < 0) return undefined;
      if (b !== m[i]) return false;
    }
    return true;
  }

  decodeEof(queue: ByteQueue): T | undefined {
    if (queue.length === 0 || this.discarding) {
      queue.skip(queue.length);
      return undefined;
    }
    const n = queue.length;
    const startsWithMarker = this.startsWithMarker(queue) !== false;
    queue.skip(n);
    if (!startsWithMarker && this.junk === 'skip') return undefined;
    throw new TruncatedFrameError(`a ${this.name}`, n, startsWithMarker ? ' (start marker without end marker)' : '');
  }

  encode(frame: T, out: ByteWriter): void {
    const body = this.body.encode(frame);
    out.bytes(this.start);
    out.append(body);
    out.bytes(this.end);
  }
}

/** Body transform: strict base64 of raw bytes. */
export const base64Body: BodyTransform<Uint8Array> = {
  decode(body) {
    const out = base64Decode(body);
    if (typeof out === 'number') {
      const at = -out - 1;
      throw new MalformedFrameError(
        at >= body.length ? `invalid base64 body: length ${body.length} is not a multiple of 4` : `invalid base64 body at offset ${at}`,
        body,
      );
    }
    return out;
  },
  encode: base64Encode,
};

/** Body transform: strict base64 of UTF-8 text. */
export const base64TextBody: BodyTransform<string> = {
  decode(body) {
    const bytes = base64Body.decode(body);
    try {
      return utf8DecodeStrict(bytes);
    } catch (err) {
      throw new MalformedFrameError('message body is not valid UTF-8', bytes, err);
    }
  },
  encode(text) {
    return base64Encode(utf8Encode(text));
  },
};

export interface PercentDollarOptions {
  maxBodyLength?: number;
  junk?: 'skip' | 'error';
}

/**
 * The `%base64$` UDS codec's message format: `%`, the base64 of the message's UTF-8 text, `$`.
 * `percentDollar()` decodes to strings; `percentDollar({ binary: true })` to bytes.
 */
export function percentDollar(options?: PercentDollarOptions & { binary?: false }): DelimitedCodec<string>;
export function percentDollar(options: PercentDollarOptions & { binary: true }): DelimitedCodec<Uint8Array>;
export function percentDollar(options: PercentDollarOptions & { binary?: boolean } = {}): DelimitedCodec<string> | DelimitedCodec<Uint8Array> {
  const common = { start: '%', end: '$', maxBodyLength: options.maxBodyLength, junk: options.junk, name: '%base64$ message' };
  if (options.binary) return new DelimitedCodec<Uint8Array>({ ...common, body: base64Body });
  return new DelimitedCodec<string>({ ...common, body: base64TextBody });
}

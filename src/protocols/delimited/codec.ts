/**
 * The seed 002 message codec as this protocol uses it: `%`, base64 body, `$`.
 *
 * Same wire format and body rules as `percentDollar()` in `src/codecs/delimited.ts` (strict
 * base64, strict UTF-8 for text, empty messages allowed, junk before `%` skipped as the seed does),
 * with one difference: when a message passes the size limit, only the bytes already scanned are
 * dropped and the rest of that message is discarded up to its `$`, so messages already buffered
 * behind it still decode. (The shared codec drops the whole buffer at that point, losing any
 * message that arrived in the same read; see docs/delimited.md.)
 *
 * Linear: the end-marker scan resumes where it stopped (`ByteQueue.indexOf`), so a message that
 * arrives in many small reads is scanned once.
 */
import type { ByteQueue } from '../../bytes/byte-queue.js';
import {
  FrameTooLargeError,
  TruncatedFrameError,
  base64Body,
  base64TextBody,
  DEFAULT_MAX_BODY_LENGTH,
  type BodyTransform,
  type Codec,
} from '../../codecs/index.js';

const START = 0x25; // '%'
const END = 0x24; // '$'

/** A `%base64$` codec with a maximum body length checked while scanning. */
export class MessageCodec<T> implements Codec<T> {
  readonly name = '%base64$ message';
  private discarding = false;

  constructor(
    private readonly body: BodyTransform<T>,
    /** Maximum base64 body length in bytes. */
    readonly maxBodyLength: number = DEFAULT_MAX_BODY_LENGTH,
  ) {}

  decode(queue: ByteQueue): T | undefined {
    if (this.discarding) {
      const at = queue.indexOf(END);
      if (at < 0) {
        queue.skip(queue.length);
        return undefined;
      }
      queue.skip(at + 1);
      this.discarding = false;
    }
    if (queue.length === 0) return undefined;
    if (queue.byteAt(0) !== START) {
      // Junk before the start marker is skipped, as the seed's codec does.
      const s = queue.indexOf(START);
      queue.skip(s < 0 ? queue.length : s);
      if (s < 0) return undefined;
    }
    const max = this.maxBodyLength;
    // Bytes [0, min(length, max + 2)) are examined at most; none of them is '$' when -1 comes back.
    const e = queue.indexOf(END, 1 + max, 1);
    if (e < 0) {
      if (queue.length > max + 1) {
        const seen = queue.length - 1;
        queue.skip(Math.min(queue.length, max + 2));
        this.discarding = true;
        throw new FrameTooLargeError(this.name, seen, max, false);
      }
      return undefined;
    }
    const raw = queue.read(e)!;
    queue.skip(1);
    return this.body.decode(raw.subarray(1));
  }

  decodeEof(queue: ByteQueue): T | undefined {
    const n = queue.length;
    const partial = n > 0 && !this.discarding && queue.byteAt(0) === START;
    queue.skip(n);
    if (partial) throw new TruncatedFrameError(`a ${this.name}`, n, ' (start marker without end marker)');
    return undefined;
  }

  encode(message: T): Uint8Array {
    const body = this.body.encode(message);
    const out = new Uint8Array(body.length + 2);
    out[0] = START;
    out.set(body, 1);
    out[body.length + 1] = END;
    return out;
  }
}

export interface MessageCodecOptions {
  /** Maximum base64 body length in bytes. Default 16 MiB. */
  maxMessageLength?: number;
}

/** The seed 002 codec: text messages, or bytes with `{ binary: true }`. */
export function messageCodec(options?: MessageCodecOptions & { binary?: false }): MessageCodec<string>;
export function messageCodec(options: MessageCodecOptions & { binary: true }): MessageCodec<Uint8Array>;
export function messageCodec(options: MessageCodecOptions & { binary?: boolean } = {}): MessageCodec<string> | MessageCodec<Uint8Array> {
  if (options.binary) return new MessageCodec(base64Body, options.maxMessageLength);
  return new MessageCodec(base64TextBody, options.maxMessageLength);
}

import { ByteQueue } from '../bytes/byte-queue.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { CodecUsageError, isFatal, TruncatedFrameError } from './errors.js';

/**
 * A sans-I/O decoder: takes one frame off the front of a byte queue.
 *
 * `decode` returns the frame, or `undefined` when the queue does not yet hold a complete frame
 * (running short of input is never an error). On invalid input it throws a `CodecError`; when the
 * error is recoverable, the bad frame has been consumed and the next call continues with the
 * following frame. The decoder keeps no bytes of its own: everything not yet decoded stays in the
 * queue, so another decoder (or a raw stream) can continue from the exact next byte.
 */
export interface Decoder<F> {
  decode(queue: ByteQueue): F | undefined;
  /**
   * Called at end of input after `decode` returned `undefined`. May return a final frame;
   * throws `TruncatedFrameError` when a partial frame is left. Optional: the default throws when
   * any bytes remain.
   */
  decodeEof?(queue: ByteQueue): F | undefined;
  /** A short name used in error messages ("NDJSON line", "u32be frame"). */
  readonly name?: string;
}

/**
 * A sans-I/O encoder: writes the bytes that carry one frame into a sink the caller owns (as
 * tokio's `Encoder` appends to the caller's buffer). Headers and other small pieces go into the
 * writer's scratch; a large payload is appended by reference (`out.append`), never copied to
 * prepend a header. A channel then writes the parts under one cork; `encodeToBytes` gives one array.
 */
export interface Encoder<F> {
  encode(frame: F, out: ByteWriter): void;
}

/** A decoder and encoder for the same frame type. */
export interface Codec<F, E = F> extends Decoder<F>, Encoder<E> {}

/**
 * Encodes one frame into a single array (a copy of the payload when it was appended by
 * reference). For callers that want bytes in hand: tests, captures, a peer's typed-ahead input.
 */
export function encodeToBytes<F>(encoder: Encoder<F>, frame: F): Uint8Array {
  const out = new ByteWriter();
  encoder.encode(frame, out);
  return out.finish();
}

/** Encodes one frame as the parts a writer would send (header and payload apart, payload uncopied). */
export function encodeParts<F>(encoder: Encoder<F>, frame: F): Uint8Array[] {
  const out = new ByteWriter();
  encoder.encode(frame, out);
  return out.parts();
}

/** The default end-of-input rule: any buffered byte is a partial frame. */
export function decodeEofDefault<F>(decoder: Decoder<F>, queue: ByteQueue): F | undefined {
  if (decoder.decodeEof) return decoder.decodeEof(queue);
  if (queue.length > 0) throw new TruncatedFrameError(decoder.name ?? 'a frame', queue.length);
  return undefined;
}

/**
 * Pairs a decoder with a byte queue: push chunks in, take frames out.
 *
 * ```ts
 * const reader = new FrameReader(ndjson());
 * for (const msg of reader.push(chunk)) handle(msg);
 * reader.end(); // throws TruncatedFrameError if a partial line is left
 * ```
 *
 * Errors keep their place in the stream: when a chunk holds good frames before a bad one, `push`
 * returns the good frames and the error is thrown by the next `push`, `next` or `end` call.
 *
 * Errors follow tokio's `FramedRead` rule. A fatal error (see `isFatal`: `CodecError.fatal`, an
 * error that is not a `WirekitError`, and every error at end of input) is reported once, then
 * every later call fails with the same error: the framing is lost, so nothing after it can be
 * trusted. After a recoverable error (an over-long line skipped, junk skipped, a bad JSON line)
 * the bad frame has been consumed and decoding goes on with the next one.
 */
export class FrameReader<F> {
  readonly queue: ByteQueue;
  /** A recoverable error to throw at the next call, after the frames before it were returned. */
  private pendingError: unknown = undefined;
  /** The fatal error every call throws from now on. */
  private fatalError: unknown = undefined;
  private ended = false;
  private finished = false;

  constructor(
    readonly decoder: Decoder<F>,
    queue: ByteQueue = new ByteQueue(),
  ) {
    this.queue = queue;
  }

  /** Bytes received but not yet decoded. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  /** The fatal error this reader stopped on, if any (every call throws it). */
  get failure(): unknown {
    return this.fatalError;
  }

  /** True once end of input was handled (by `end()`) without an error left to report. */
  get done(): boolean {
    return this.finished && this.pendingError === undefined && this.fatalError === undefined;
  }

  /** Appends bytes without decoding. */
  feed(chunk: Uint8Array): void {
    if (this.fatalError !== undefined) throw this.fatalError;
    if (this.ended) throw new CodecUsageError('FrameReader: data pushed after end()');
    this.queue.push(chunk);
  }

  /** The next complete frame, or `undefined` when more bytes are needed. */
  next(): F | undefined {
    this.throwPending();
    if (this.finished) return undefined;
    return this.decodeOne();
  }

  /** Appends a chunk and returns every frame now complete. */
  push(chunk: Uint8Array): F[] {
    this.feed(chunk);
    return this.collect();
  }

  /**
   * Signals end of input: returns the remaining frames, then throws `TruncatedFrameError` if a
   * partial frame is left. When an error is left to report after the returned frames, the next
   * call to `end()` throws it.
   */
  end(): F[] {
    const frames = this.collect();
    if (this.pendingError !== undefined || this.fatalError !== undefined || this.finished) return frames;
    this.ended = true;
    this.finished = true;
    try {
      const last = decodeEofDefault(this.decoder, this.queue);
      if (last !== undefined) frames.push(last);
    } catch (err) {
      // Nothing follows the end of input: every error there is final.
      this.fatalError = err;
      if (frames.length === 0) throw err;
    }
    return frames;
  }

  /** Removes and returns the bytes not yet decoded, so another codec can continue from them. */
  takeRemaining(): Uint8Array {
    return this.queue.drain();
  }

  /** A reader for another codec that continues from the exact next byte of this one. */
  switchTo<G>(decoder: Decoder<G>): FrameReader<G> {
    return new FrameReader(decoder, this.queue);
  }

  /** Decodes one frame, recording a fatal error so that every later call throws it. */
  private decodeOne(): F | undefined {
    try {
      return this.decoder.decode(this.queue);
    } catch (err) {
      if (isFatal(err)) this.fatalError = err;
      throw err;
    }
  }

  private collect(): F[] {
    const frames: F[] = [];
    this.throwPending();
    if (this.finished) return frames;
    for (;;) {
      let frame: F | undefined;
      try {
        frame = this.decodeOne();
      } catch (err) {
        if (frames.length === 0) throw err;
        if (this.fatalError === undefined) this.pendingError = err;
        return frames;
      }
      if (frame === undefined) return frames;
      frames.push(frame);
    }
  }

  private throwPending(): void {
    if (this.fatalError !== undefined) throw this.fatalError;
    if (this.pendingError === undefined) return;
    const err = this.pendingError;
    this.pendingError = undefined;
    throw err;
  }
}

import { ByteQueue } from '../bytes/byte-queue.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { FrameReader, type Decoder, type Encoder } from '../codecs/codec.js';
import { AbortedError, ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { ChannelDetachedError } from './errors.js';

/** Options of a single wait. */
export interface WaitOptions {
  /** Give up after this many milliseconds with a `TimeoutError`. */
  timeout?: number;
  /** Give up when this signal fires, with an `AbortedError`. */
  signal?: AbortSignal;
}

/**
 * Where a channel's bytes come from. A source pushes chunks to the channel while resumed; the
 * channel pauses it when enough bytes are buffered and nobody is reading (backpressure).
 */
export interface ByteSource {
  /** Starts delivering. Called once. */
  attach(sink: { data(chunk: Uint8Array): void; end(): void; error(err: unknown): void }): void;
  pause(): void;
  resume(): void;
  /** Stops delivering to the channel for good (used by hijack and close). */
  detach(): void;
}

/** Where a channel's bytes go. */
export interface ByteSink {
  /** Writes bytes; resolves when the sink can take more (after `drain` on Node streams). */
  write(bytes: Uint8Array): Promise<void> | void;
  /**
   * Writes the parts of one frame in order, as one write where the transport allows (a Node
   * stream is corked around them); resolves when the sink can take more. Optional: without it,
   * the channel writes the parts one by one.
   */
  writev?(parts: readonly Uint8Array[]): Promise<void> | void;
  /**
   * Writes the parts without waiting; returns false once the sink's buffer is full (then wait for
   * `drained()`). Needed for `FrameChannelCore.send`.
   */
  offer?(parts: readonly Uint8Array[]): boolean;
  /** Resolves when the sink can take more (at once if it can now); rejects if it closes first. */
  drained?(): Promise<void>;
  /** Ends the outgoing direction. */
  end(): Promise<void> | void;
}

/** A codec pair for a channel: decoder for incoming frames, encoder for outgoing ones. */
export type ChannelCodec<In, Out> = Decoder<In> & Encoder<Out>;
/** The frame type a codec decodes. */
export type DecodedBy<C> = C extends { decode(queue: never): infer F | undefined } ? Exclude<F, undefined> : never;
/** The frame type a codec encodes. */
export type EncodedBy<C> = C extends { encode(frame: infer F, out: ByteWriter): void } ? F : never;

export interface ChannelOptions {
  /**
   * The source is paused once this many bytes are buffered and no read is waiting. A frame larger
   * than this still arrives: the source is resumed while a read waits for it. Default 1 MiB.
   */
  highWaterMark?: number;
  /** Bytes already read from the stream by someone else, to be decoded first. */
  leftover?: Uint8Array;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

// Re-exported for modules that imported it from here; it lives in errors.ts.
export { ChannelDetachedError };

/**
 * The transport-independent part of a frame channel: a byte queue fed by a source, a
 * `FrameReader` that takes frames off it lazily (only when someone reads, so a switch or hijack
 * never finds frames decoded ahead of time), and an encoder feeding a sink.
 *
 * A complete frame already buffered is returned at once, without waiting for more input. Decode
 * errors follow `FrameReader`'s rule: a recoverable one rejects one read and the next read goes
 * on after the bad frame; a fatal one (and every error at end of input, including the stream's
 * failure) rejects that read and every later one.
 */
export class FrameChannelCore<In, Out> implements AsyncIterable<In> {
  protected readonly queue: ByteQueue;
  protected reader: FrameReader<In>;
  protected encoder: Encoder<Out>;
  /** The channel's own writer: its scratch is never reused under parts still being written. */
  private readonly out = new ByteWriter();
  private readonly highWaterMark: number;
  private waiters: Waiter<In | null>[] = [];
  private eof = false;
  private failure: unknown = undefined;
  /** The stream failed and nothing was left to decode: every read rejects with this. */
  private closedError: ConnectionClosedError | undefined;
  /** The end of input was handed to the reader (or the failure reported). */
  private endHandled = false;
  /** Frames `end()` returned beyond the first one read. */
  private readonly tail: In[] = [];
  protected detached: string | undefined;
  private paused = false;

  constructor(
    protected readonly source: ByteSource,
    protected readonly sink: ByteSink,
    codec: ChannelCodec<In, Out>,
    options: ChannelOptions & { queue?: ByteQueue } = {},
  ) {
    this.queue = options.queue ?? new ByteQueue();
    if (options.leftover) this.queue.push(options.leftover);
    this.reader = new FrameReader(codec, this.queue);
    this.encoder = codec;
    this.highWaterMark = options.highWaterMark ?? 1024 * 1024;
    source.attach({
      data: (chunk) => {
        this.queue.push(chunk);
        this.pump();
      },
      end: () => {
        this.eof = true;
        this.pump();
      },
      error: (err) => {
        this.failure = err;
        this.eof = true;
        this.pump();
      },
    });
    this.pump();
  }

  /** Bytes received but not yet decoded. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  /** True once the peer's end of stream has been reached and every frame before it was read. */
  get readableEnded(): boolean {
    return this.endHandled && this.tail.length === 0;
  }

  /**
   * Reads the next frame. Resolves with `null` at a clean end of stream; rejects with a
   * `CodecError` on invalid input (after a recoverable one, `error.fatal === false`, the next read
   * continues after the bad frame; after a fatal one every later read rejects with it), with
   * `TruncatedFrameError` if the stream ends inside a frame, or with `ConnectionClosedError` if
   * the stream fails (both final too).
   */
  read(options: WaitOptions = {}): Promise<In | null> {
    if (this.detached) return Promise.reject(new ChannelDetachedError(this.detached));
    // Fast path: a frame already buffered is returned without waiting.
    if (this.waiters.length === 0) {
      try {
        const frame = this.tryDecode();
        if (frame !== undefined) return Promise.resolve(frame);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise<In | null>((resolve, reject) => {
      const waiter: Waiter<In | null> = { resolve, reject };
      const cleanup = attachWait('read', options, (err) => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.flowControl();
        reject(err);
      });
      waiter.resolve = (v) => {
        cleanup();
        resolve(v);
      };
      waiter.reject = (e) => {
        cleanup();
        reject(e);
      };
      this.waiters.push(waiter);
      this.pump();
    });
  }

  async *[Symbol.asyncIterator](): AsyncIterator<In> {
    for (;;) {
      const frame = await this.read();
      if (frame === null) return;
      yield frame;
    }
  }

  /**
   * Encodes and writes a frame; resolves when the transport can take more. Header and payload go
   * out as separate parts under one cork: a large payload is written as it is, never copied.
   */
  async write(frame: Out): Promise<void> {
    if (this.detached) throw new ChannelDetachedError(this.detached);
    const parts = this.encodeParts(frame);
    const sink = this.sink;
    if (parts.length === 1) await sink.write(parts[0]!);
    else if (sink.writev) await sink.writev(parts);
    else for (const p of parts) await sink.write(p);
  }

  /**
   * Encodes and writes a frame without waiting. Returns false when the transport's buffer is
   * full: wait for `drained()` before sending more. For writers that cannot await each frame
   * (a pump fed by `data` events). Throws `ConnectionClosedError` when the transport is closed.
   */
  send(frame: Out): boolean {
    if (this.detached) throw new ChannelDetachedError(this.detached);
    if (!this.sink.offer) throw new WirekitError('WK_USAGE', 'this channel\'s sink cannot write without waiting; use write()', { origin: 'local' });
    return this.sink.offer(this.encodeParts(frame));
  }

  /** Resolves when the transport can take more (at once if it can now); rejects if it closes first. */
  drained(): Promise<void> {
    return this.sink.drained ? this.sink.drained() : Promise.resolve();
  }

  private encodeParts(frame: Out): Uint8Array[] {
    const out = this.out;
    try {
      this.encoder.encode(frame, out);
    } catch (err) {
      out.discard();
      throw err;
    }
    return out.parts();
  }

  /** Writes bytes as they are, bypassing the encoder. */
  async writeBytes(bytes: Uint8Array): Promise<void> {
    if (this.detached) throw new ChannelDetachedError(this.detached);
    await this.sink.write(bytes);
  }

  /** Ends the outgoing direction (half-close); reading goes on. */
  async end(): Promise<void> {
    await this.sink.end();
  }

  /**
   * Replaces the codec. The new decoder starts at the exact next byte after the last frame read;
   * bytes already buffered are decoded by it. Returns this channel, retyped.
   */
  switchCodec<I2, O2>(codec: ChannelCodec<I2, O2>): FrameChannelCore<I2, O2> {
    if (this.waiters.length > 0) throw new WirekitError('WK_BUSY', 'cannot switch codec while a read is pending', { origin: 'local' });
    const self = this as unknown as FrameChannelCore<I2, O2>;
    self.reader = self.reader.switchTo(codec);
    self.encoder = codec;
    return self;
  }

  /** Stops reading frames and hands over the bytes not yet decoded. */
  protected detach(reason: string): Uint8Array[] {
    if (this.detached) throw new ChannelDetachedError(this.detached);
    if (this.waiters.length > 0) throw new WirekitError('WK_BUSY', `cannot ${reason.replace(/ed$/, '')} while a read is pending`, { origin: 'local' });
    this.detached = reason;
    this.source.detach();
    return this.queue.drainChunks();
  }

  protected get sourceEnded(): boolean {
    return this.eof;
  }

  protected get sourceFailure(): unknown {
    return this.failure;
  }

  private tryDecode(): In | null | undefined {
    if (this.tail.length > 0) return this.tail.shift()!;
    if (this.closedError) throw this.closedError;
    if (this.reader.done) return null;
    const frame = this.reader.next();
    if (frame !== undefined) return frame;
    if (!this.eof) return undefined;
    // End of input: the decoder decides what is left (a final frame or a truncation error).
    this.endHandled = true;
    if (this.failure !== undefined && this.queue.length === 0) throw this.closed();
    const rest = this.reader.end();
    if (rest.length > 0) {
      this.tail.push(...rest.slice(1));
      if (this.failure !== undefined) this.closed(); // reported after the last frames
      return rest[0]!;
    }
    if (this.failure !== undefined) throw this.closed();
    return null;
  }

  private closed(): ConnectionClosedError {
    this.closedError ??= new ConnectionClosedError(`connection failed: ${errorMessage(this.failure)}`, this.failure);
    return this.closedError;
  }

  private pump(): void {
    if (this.detached) return;
    while (this.waiters.length > 0) {
      let frame: In | null | undefined;
      try {
        frame = this.tryDecode();
      } catch (err) {
        this.waiters.shift()!.reject(err);
        continue;
      }
      if (frame === undefined) break;
      this.waiters.shift()!.resolve(frame);
    }
    this.flowControl();
  }

  private flowControl(): void {
    if (this.detached || this.eof) return;
    const wantMore = this.waiters.length > 0 || this.queue.length < this.highWaterMark;
    if (wantMore && this.paused) {
      this.paused = false;
      this.source.resume();
    } else if (!wantMore && !this.paused) {
      this.paused = true;
      this.source.pause();
    }
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Arms a timeout and an abort listener for one wait. `fail` is called at most once; the returned
 * function disarms both.
 */
export function attachWait(what: string, options: WaitOptions, fail: (err: Error) => void): () => void {
  const { timeout, signal } = options;
  if (timeout === undefined && signal === undefined) return noop;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  const onAbort = () => finish(new AbortedError(what, signal?.reason));
  const finish = (err: Error) => {
    if (done) return;
    cleanup();
    fail(err);
  };
  const cleanup = () => {
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  };
  if (signal?.aborted) {
    queueMicrotask(onAbort);
  } else {
    signal?.addEventListener('abort', onAbort, { once: true });
  }
  // setTimeout turns Infinity (or anything over 2^31-1 ms) into 1 ms: treat that as "no timeout".
  if (timeout !== undefined && timeout <= 0x7fffffff) timer = setTimeout(() => finish(new TimeoutError(what, timeout)), timeout);
  return cleanup;
}

function noop(): void {}

/** Runs `promise` under a timeout and/or AbortSignal. */
export function withWait<T>(what: string, options: WaitOptions, promise: Promise<T>): Promise<T> {
  if (options.timeout === undefined && options.signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const cleanup = attachWait(what, options, reject);
    promise.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e) => {
        cleanup();
        reject(e);
      },
    );
  });
}

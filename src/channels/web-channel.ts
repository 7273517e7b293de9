import { ConnectionClosedError } from '../errors.js';
import { FrameChannelCore, type ByteSink, type ByteSource, type ChannelCodec, type ChannelOptions, type DecodedBy, type EncodedBy } from './frame-channel.js';

type ReadResult = ReadableStreamReadResult<Uint8Array>;

/** Pulls from a WHATWG `ReadableStream` while the channel wants bytes. */
export class WebStreamSource implements ByteSource {
  private handlers: { data(c: Uint8Array): void; end(): void; error(e: unknown): void } | undefined;
  private paused = false;
  private running = false;
  private detached = false;
  /** A read that was in flight when the source was detached; its result belongs to whoever takes over. */
  inFlight: Promise<ReadResult> | undefined;

  constructor(readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  attach(handlers: { data(c: Uint8Array): void; end(): void; error(e: unknown): void }): void {
    this.handlers = handlers;
    void this.loop();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (!this.running) void this.loop();
  }

  detach(): void {
    this.detached = true;
    this.handlers = undefined;
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.paused && !this.detached) {
        const p = this.reader.read();
        this.inFlight = p;
        let r: ReadResult;
        try {
          r = await p;
        } catch (err) {
          this.inFlight = undefined;
          this.handlers?.error(err);
          return;
        }
        if (this.detached) return; // leave inFlight for the taker
        this.inFlight = undefined;
        if (r.done) {
          this.handlers?.end();
          return;
        }
        this.handlers?.data(r.value);
      }
    } finally {
      this.running = false;
    }
  }
}

/** Writes to a WHATWG `WritableStream`, respecting its backpressure (`ready`). */
export class WebStreamSink implements ByteSink {
  constructor(readonly writer: WritableStreamDefaultWriter<Uint8Array>) {}

  async write(bytes: Uint8Array): Promise<void> {
    try {
      await this.writer.ready;
      void this.writer.write(bytes).catch(() => {});
    } catch (err) {
      throw new ConnectionClosedError('cannot write: stream is closed', err);
    }
  }

  /** Writes the parts in order, after one wait for `ready`. */
  async writev(parts: readonly Uint8Array[]): Promise<void> {
    try {
      await this.writer.ready;
      for (const p of parts) void this.writer.write(p).catch(() => {});
    } catch (err) {
      throw new ConnectionClosedError('cannot write: stream is closed', err);
    }
  }

  /** Queues the parts in order; false once the stream's queue is full (see `drained`). */
  offer(parts: readonly Uint8Array[]): boolean {
    for (const p of parts) void this.writer.write(p).catch(() => {});
    const room = this.writer.desiredSize;
    return room === null || room > 0;
  }

  /** Resolves when the stream's queue has room. */
  async drained(): Promise<void> {
    try {
      await this.writer.ready;
    } catch (err) {
      throw new ConnectionClosedError('stream closed while waiting to write', err);
    }
  }

  async end(): Promise<void> {
    await this.writer.close();
  }
}

/** A raw byte stream pair, as returned by `WebFrameChannel.hijack()`. */
export interface WebByteStreams {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Frames over a pair of WHATWG streams (for Deno, Bun, browsers, or Node's web streams). */
export class WebFrameChannel<In, Out = In> extends FrameChannelCore<In, Out> {
  private readonly webSource: WebStreamSource;
  private readonly writer: WritableStreamDefaultWriter<Uint8Array>;

  constructor(streams: WebByteStreams, codec: ChannelCodec<In, Out>, options: ChannelOptions = {}) {
    const reader = streams.readable.getReader();
    const writer = streams.writable.getWriter();
    const source = new WebStreamSource(reader);
    super(source, new WebStreamSink(writer), codec, options);
    this.webSource = source;
    this.writer = writer;
  }

  override switchCodec<I2, O2>(codec: ChannelCodec<I2, O2>): WebFrameChannel<I2, O2> {
    return super.switchCodec(codec) as WebFrameChannel<I2, O2>;
  }

  /**
   * Stops framing and returns raw streams: the readable yields the undecoded buffered bytes
   * first, then the live bytes; the writable writes to the same transport.
   */
  hijack(): WebByteStreams {
    const leftover = this.detach('hijacked');
    const source = this.webSource;
    const ended = this.sourceEnded;
    const failure = this.sourceFailure;
    let pending = source.inFlight;
    const reader = source.reader;
    const readable = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (leftover.length > 0) {
          controller.enqueue(leftover.shift()!);
          return;
        }
        if (failure !== undefined) return controller.error(failure);
        if (ended) return controller.close();
        const r = await (pending ?? reader.read());
        pending = undefined;
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    const writer = this.writer;
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => writer.write(chunk),
      close: () => writer.close(),
      abort: (reason) => writer.abort(reason),
    });
    return { readable, writable };
  }
}

/** Creates a frame channel over WHATWG streams. */
export function webChannel<C extends ChannelCodec<any, any>>(streams: WebByteStreams, codec: C, options?: ChannelOptions): WebFrameChannel<DecodedBy<C>, EncodedBy<C>> {
  return new WebFrameChannel(streams, codec, options);
}

import { Duplex } from 'node:stream';
import { concatBytes } from '../bytes/text.js';
import { ConnectionClosedError } from '../errors.js';
import { FrameChannelCore, type ByteSink, type ByteSource, type ChannelCodec, type ChannelOptions, type DecodedBy, type EncodedBy } from './frame-channel.js';

/** Reads a Node readable stream through its `data` events, with pause/resume for backpressure. */
export class NodeStreamSource implements ByteSource {
  private handlers: { data(c: Uint8Array): void; end(): void; error(e: unknown): void } | undefined;
  private readonly onData = (chunk: Uint8Array | string) => {
    this.handlers?.data(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
  };
  private readonly onEnd = () => this.handlers?.end();
  private failed = false;
  private readonly onError = (err: unknown) => {
    if (this.failed || this.ended) return;
    this.failed = true;
    this.handlers?.error(err);
  };
  private readonly onClose = () => this.onError(new ConnectionClosedError('stream closed before its end'));
  /** True once the stream emitted 'end'. */
  ended = false;
  private readonly markEnded = () => {
    this.ended = true;
  };

  constructor(readonly stream: NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean }) {}

  attach(handlers: { data(c: Uint8Array): void; end(): void; error(e: unknown): void }): void {
    this.handlers = handlers;
    const s = this.stream;
    s.on('end', this.markEnded);
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('error', this.onError);
    s.on('close', this.onClose);
    if (s.readableEnded) this.onEnd();
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  detach(): void {
    const s = this.stream;
    s.pause();
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onError);
    s.removeListener('close', this.onClose);
    this.handlers = undefined;
  }
}

/** Writes to a Node writable stream, waiting for `drain` when its buffer is full. */
export class NodeStreamSink implements ByteSink {
  constructor(readonly stream: NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean }) {}

  private drainWait: Promise<void> | undefined;

  write(bytes: Uint8Array): Promise<void> | void {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return Promise.reject(new ConnectionClosedError('cannot write: stream is closed'));
    if (s.write(bytes)) return;
    return this.waitDrain();
  }

  /** Writes the parts under one cork (one `writev` to the socket); waits for `drain` if needed. */
  writev(parts: readonly Uint8Array[]): Promise<void> | void {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return Promise.reject(new ConnectionClosedError('cannot write: stream is closed'));
    if (this.offer(parts)) return;
    return this.waitDrain();
  }

  /** Writes the parts under one cork; false when the stream's buffer is full (see `drained`). */
  offer(parts: readonly Uint8Array[]): boolean {
    const s = this.stream as NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean; cork?(): void; uncork?(): void; writableLength?: number; writableHighWaterMark?: number };
    if (s.destroyed || s.writableEnded) throw new ConnectionClosedError('cannot write: stream is closed');
    let ok = true;
    s.cork?.();
    for (const p of parts) ok = s.write(p) && ok;
    s.uncork?.();
    return ok && (s.writableLength === undefined || s.writableHighWaterMark === undefined || s.writableLength < s.writableHighWaterMark);
  }

  /**
   * Resolves when the stream can take more (at once if it can now, or if it is already destroyed:
   * the next write reports that); rejects if it closes while waiting.
   */
  drained(): Promise<void> {
    const s = this.stream as NodeJS.WritableStream & { destroyed?: boolean; writableLength?: number; writableHighWaterMark?: number; writableNeedDrain?: boolean };
    if (s.destroyed) return Promise.resolve();
    if (!s.writableNeedDrain && (s.writableLength === undefined || s.writableHighWaterMark === undefined || s.writableLength < s.writableHighWaterMark)) return Promise.resolve();
    return this.waitDrain();
  }

  private waitDrain(): Promise<void> {
    const s = this.stream;
    // One shared wait for every writer blocked on the same 'drain'.
    this.drainWait ??= new Promise<void>((resolve, reject) => {
      const done = (err?: unknown) => {
        s.removeListener('drain', onDrain);
        s.removeListener('close', onClose);
        s.removeListener('error', onError);
        this.drainWait = undefined;
        if (err) reject(err);
        else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(new ConnectionClosedError('stream closed while waiting to write'));
      const onError = (err: unknown) => done(new ConnectionClosedError(`write failed: ${err instanceof Error ? err.message : String(err)}`, err));
      s.on('drain', onDrain);
      s.on('close', onClose);
      s.on('error', onError);
    });
    return this.drainWait;
  }

  end(): Promise<void> {
    return new Promise((resolve) => {
      const s = this.stream;
      if (s.writableEnded || s.destroyed) return resolve();
      s.end(() => resolve());
    });
  }
}

/**
 * Frames over a Node `Duplex` (a `net.Socket`, a TLS socket, or child-process stdio joined with
 * `Duplex.from({ readable, writable })`).
 *
 * ```ts
 * const ch = channel(socket, ndjson());
 * await ch.write({ cmd: 'ping' });
 * for await (const msg of ch) console.log(msg);
 * ```
 */
export class NodeFrameChannel<In, Out = In> extends FrameChannelCore<In, Out> {
  private readonly nodeSource: NodeStreamSource;

  constructor(
    readonly stream: Duplex,
    codec: ChannelCodec<In, Out>,
    options: ChannelOptions = {},
  ) {
    const source = new NodeStreamSource(stream);
    super(source, new NodeStreamSink(stream), codec, options);
    this.nodeSource = source;
  }

  override switchCodec<I2, O2>(codec: ChannelCodec<I2, O2>): NodeFrameChannel<I2, O2> {
    return super.switchCodec(codec) as NodeFrameChannel<I2, O2>;
  }

  /**
   * Stops framing and returns the underlying stream as a raw byte stream. Its first bytes are
   * the ones this channel had buffered but not decoded, then the live bytes; writes go to the same
   * stream. The returned stream is in its initial (non-flowing) state: attach a `data` listener,
   * pipe it, or iterate it. This channel is unusable afterwards.
   */
  hijack(): Duplex {
    const leftover = this.detach('hijacked');
    const stream = this.stream;
    if (this.nodeSource.ended || stream.readableEnded) {
      // 'end' was already emitted: unshift is no longer allowed, so serve the leftovers from a
      // wrapper whose readable side ends after them and whose writes go to the stream.
      return Duplex.from({ readable: leftoverReadable(leftover), writable: stream });
    }
    for (let i = leftover.length - 1; i >= 0; i--) stream.unshift(leftover[i]!);
    // Back to the initial state, so that adding a 'data' listener starts the flow.
    (stream as { readableFlowing: boolean | null }).readableFlowing = null;
    return stream;
  }

  /** Stops framing and returns the buffered, undecoded bytes; the stream is left paused. */
  release(): Uint8Array {
    return concatBytes(this.detach('released'));
  }

  /** Destroys the underlying stream. */
  destroy(err?: Error): void {
    this.stream.destroy(err);
  }
}

async function* leftoverReadable(chunks: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

/** Creates a frame channel over a Node duplex stream. */
export function channel<C extends ChannelCodec<any, any>>(stream: Duplex, codec: C, options?: ChannelOptions): NodeFrameChannel<DecodedBy<C>, EncodedBy<C>> {
  return new NodeFrameChannel(stream, codec, options);
}

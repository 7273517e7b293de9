import type { Duplex } from 'node:stream';
import { connectSocket, type ConnectSocketOptions, type SocketAddress } from '../../channels/connect.js';
import { channel, type NodeFrameChannel } from '../../channels/node-channel.js';
import { withWait, type WaitOptions } from '../../channels/frame-channel.js';
import { ConnectionClosedError, WirekitError } from '../../errors.js';
import { ChunkStream } from './chunk-stream.js';
import { ClientReactor } from './client-reactor.js';
import { FrameProtocolError, ResponseTooLargeError } from './errors.js';
import { encodeFrames, frameCodec, type Frame } from './frame.js';
import { commandFramesFrom, type BytesLike, type CommandArgs, type DataSource } from './requests.js';

/** Options of one call. */
export interface CallOptions extends WaitOptions {
  /** Command data: bytes, or chunks from an (async) iterable or Node readable, streamed in frames. */
  data?: DataSource;
}

/** Options of a `FrameClient`. */
export interface FrameClientOptions {
  /** Largest payload of a request frame. Default 32768. */
  maxFrameSize?: number;
  /** Largest frame payload accepted from the server, checked from the header. Default 1 MiB. */
  maxFrameLength?: number;
  /** Largest response collected by `call`. Default 64 MiB. */
  maxResponseSize?: number;
  /** Bytes of a streamed response buffered before reading from the server pauses. Default 1 MiB. */
  responseHighWaterMark?: number;
}

/** A response body that arrives in pieces; iterate it, or collect it with `bytes()`. */
export interface FrameResponse extends AsyncIterable<Uint8Array> {
  /** Collects the whole body (at most `limit` bytes, default the client's `maxResponseSize`). */
  bytes(limit?: number): Promise<Uint8Array>;
  /** Stops reading this body; the rest of it is dropped as it arrives. */
  cancel(): void;
}

interface Pending {
  body: ChunkStream;
  started: boolean;
  first: { resolve(): void; reject(e: unknown): void };
}

/**
 * The client side of Mercurial's frame protocol over a full-duplex stream. Requests may be
 * pipelined; responses come back in request order (the framing has no request ids). A connection
 * that closes or breaks, even in the middle of a frame, fails every pending request at once with a
 * `ConnectionClosedError`.
 *
 * ```ts
 * const client = await FrameClient.connect({ host: '127.0.0.1', port });
 * const body = await client.call('lookup', { key: 'tip' });
 * ```
 */
export class FrameClient {
  private readonly reactor: ClientReactor;
  private readonly ch: NodeFrameChannel<Frame, Frame>;
  private readonly pending = new Map<number, Pending>();
  private writeChain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private readonly maxFrameSize: number;
  private readonly maxResponseSize: number;
  private readonly hwm: number;
  /** Resolves when the connection is finished and every pending request settled. */
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Duplex,
    options: FrameClientOptions = {},
  ) {
    this.maxFrameSize = options.maxFrameSize ?? 32768;
    this.maxResponseSize = options.maxResponseSize ?? 64 * 1024 * 1024;
    this.hwm = options.responseHighWaterMark ?? 1024 * 1024;
    this.reactor = new ClientReactor({ maxFrameSize: this.maxFrameSize });
    this.ch = channel(socket, frameCodec({ maxFrameLength: options.maxFrameLength ?? 1024 * 1024 }));
    this.closed = this.readLoop();
  }

  /**
   * Connects over TCP (`{ host, port }`, TLS with `options.tls`) or a Unix socket (`{ path }`).
   * Rejects with `ConnectError`, `TimeoutError` or `AbortedError`.
   */
  static async connect(address: SocketAddress, options: FrameClientOptions & ConnectSocketOptions = {}): Promise<FrameClient> {
    return new FrameClient(await connectSocket(address, options), options);
  }

  /** Number of requests sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Runs a command and collects its whole response. Rejects with a `FrameCommandError` (kind
   * `'application'` or `'protocol'`) when the server answers with an error, a
   * `ConnectionClosedError` when the connection goes away first, or `TimeoutError`/`AbortedError`.
   */
  async call(name: BytesLike, args?: CommandArgs, options: CallOptions = {}): Promise<Uint8Array> {
    const p = this.start(name, args, options.data);
    return withWait(`call ${typeof name === 'string' ? name : 'command'}`, options, p.body.collect(this.maxResponseSize, (n) => new ResponseTooLargeError(n, this.maxResponseSize))).catch((err) => {
      p.body.discard();
      throw err;
    });
  }

  /**
   * Runs a command and resolves with its response body as it arrives, once the first response
   * frame is in (an error response rejects). The body applies backpressure to the connection:
   * read it, or `cancel()` it.
   */
  async stream(name: BytesLike, args?: CommandArgs, options: CallOptions = {}): Promise<FrameResponse> {
    const p = this.start(name, args, options.data);
    const first = new Promise<void>((resolve, reject) => {
      p.first = { resolve, reject };
    });
    if (p.started) p.first.resolve();
    try {
      await withWait('waiting for the response', options, first);
    } catch (err) {
      p.body.discard();
      throw err;
    }
    const body = p.body;
    const limit = this.maxResponseSize;
    return {
      [Symbol.asyncIterator]: () => body[Symbol.asyncIterator](),
      bytes: (max = limit) => body.collect(max, (n) => new ResponseTooLargeError(n, max)),
      cancel: () => body.discard(),
    };
  }

  /** Ends the outgoing direction after queued requests and waits for pending responses. */
  async end(): Promise<void> {
    await this.writeChain.catch(() => {});
    await this.ch.end();
    await this.closed;
  }

  /** Destroys the connection; pending requests fail with `ConnectionClosedError`. */
  close(): void {
    this.socket.destroy();
  }

  private start(name: BytesLike, args: CommandArgs | undefined, data: DataSource | undefined): Pending {
    if (this.failure) throw this.failure;
    const p: Pending = { body: new ChunkStream(this.hwm), started: false, first: { resolve() {}, reject() {} } };
    const frames = commandFramesFrom(name, args, data, { maxFrameSize: this.maxFrameSize });
    this.writeChain = this.writeChain.then(async () => {
      if (this.failure) {
        p.body.fail(this.failure);
        p.first.reject(this.failure);
        return;
      }
      const id = this.reactor.beginRequest();
      this.pending.set(id, p);
      try {
        let batch: Frame[] = [];
        let size = 0;
        for await (const f of frames) {
          batch.push(f);
          size += f.payload.length + 4;
          if (size >= 65536) {
            await this.ch.writeBytes(encodeFrames(batch));
            batch = [];
            size = 0;
          }
        }
        if (batch.length > 0) await this.ch.writeBytes(encodeFrames(batch));
      } catch (err) {
        // A request cut short leaves the stream unusable.
        this.failAll(err instanceof WirekitError ? err : new ConnectionClosedError(`sending a request failed: ${err instanceof Error ? err.message : String(err)}`, err));
        this.socket.destroy();
      }
    });
    return p;
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const f = await this.ch.read();
        if (f === null) break;
        const ev = this.reactor.onFrame(f);
        if (ev.type === 'protocolError') {
          this.failAll(ev.error);
          this.socket.destroy();
          return;
        }
        const p = this.pending.get(ev.id);
        if (!p) continue;
        if (ev.type === 'error') {
          this.pending.delete(ev.id);
          if (!p.started) p.first.reject(ev.error);
          p.body.fail(ev.error);
          continue;
        }
        if (!p.started) {
          p.started = true;
          p.first.resolve();
        }
        const more = p.body.push(ev.chunk);
        if (ev.eos) {
          this.pending.delete(ev.id);
          p.body.end();
        } else if (!more) await p.body.ready();
      }
      this.failAll(new ConnectionClosedError('connection closed with requests pending'));
    } catch (err) {
      const e = err instanceof ConnectionClosedError || err instanceof FrameProtocolError ? err : new ConnectionClosedError(`connection failed: ${err instanceof Error ? err.message : String(err)}`, err);
      this.failAll(e);
      this.socket.destroy();
    }
  }

  private failAll(err: Error): void {
    if (!this.failure) this.failure = err;
    this.reactor.onInputEof();
    for (const p of this.pending.values()) {
      if (!p.started) p.first.reject(err);
      p.body.fail(err);
    }
    this.pending.clear();
  }
}

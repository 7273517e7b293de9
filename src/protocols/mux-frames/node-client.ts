/**
 * Node driver of the multiplexed frame profile's client: one connection (TCP or Unix socket),
 * several commands in flight at once, each answered with its list of response objects.
 */
import type { Duplex } from 'node:stream';
import { connectSocket, type ConnectSocketOptions, type SocketAddress } from '../../channels/connect.js';
import { withWait, type WaitOptions } from '../../channels/frame-channel.js';
import { channel, type NodeFrameChannel } from '../../channels/node-channel.js';
import { concatBytes, utf8Decode } from '../../bytes/text.js';
import { ConnectionClosedError, WirekitError } from '../../errors.js';
import { mapGet, type CborObject, type CborValue } from './cbor.js';
import { ClientReactor, formatAtoms, type ClientAction, type ClientReactorOptions, type TextAtom } from './client-reactor.js';
import { MuxCommandFailedError, MuxProtocolError } from './errors.js';
import { muxFrame, type MuxFrame } from './frame.js';

/** Options of `MuxFrameClient`. */
export interface MuxFrameClientOptions extends Omit<ClientReactorOptions, 'hasMultipleSend' | 'bufferSends'> {
  /** Largest frame payload accepted from the server, checked from the header. Default 65535. */
  maxFrameLength?: number;
}

/** Options of one call. */
export interface MuxCallOptions extends WaitOptions {
  data?: Uint8Array;
  redirect?: CborValue;
  /** Progress frames of this command. */
  onProgress?: (p: { topic: string; pos: number; total: number; label?: string; item?: string }) => void;
  /** Text-output frames of this command. */
  onText?: (text: string, atoms: TextAtom[]) => void;
}

interface Pending {
  objects: CborValue[];
  options: MuxCallOptions;
  resolve(objects: CborValue[]): void;
  reject(err: unknown): void;
}

function text(v: CborValue | undefined): string {
  return v instanceof Uint8Array ? utf8Decode(v) : v === undefined || v === null ? '' : String(v);
}

/**
 * The client of the multiplexed frame protocol over a full-duplex stream.
 *
 * ```ts
 * const client = await MuxFrameClient.connect({ path: '/run/hg.sock' }, { contentEncodings: ['zlib', 'identity'] });
 * const [heads] = await client.call('heads');
 * ```
 */
export class MuxFrameClient {
  private readonly reactor: ClientReactor;
  private readonly ch: NodeFrameChannel<MuxFrame, MuxFrame>;
  private readonly pending = new Map<number, Pending>();
  private writeChain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  /** Resolves when the connection is finished and every pending call settled. */
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Duplex,
    options: MuxFrameClientOptions = {},
  ) {
    this.reactor = new ClientReactor({ ...options, hasMultipleSend: true, bufferSends: false });
    this.ch = channel(socket, muxFrame({ maxFrameLength: options.maxFrameLength }));
    this.closed = this.readLoop();
  }

  /** Connects over TCP (`{ host, port }`, TLS with `options.tls`) or a Unix socket (`{ path }`). */
  static async connect(address: SocketAddress, options: MuxFrameClientOptions & ConnectSocketOptions = {}): Promise<MuxFrameClient> {
    return new MuxFrameClient(await connectSocket(address, options), options);
  }

  /** Number of calls sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Runs a command and resolves with its response objects. Rejects with `MuxCommandFailedError`
   * when the server reports a failure, `MuxProtocolError` when it breaks the protocol,
   * `ConnectionClosedError` when the connection goes away first, or `TimeoutError`/`AbortedError`.
   */
  call(name: string, args?: CborObject | Map<CborValue, CborValue>, options: MuxCallOptions = {}): Promise<CborValue[]> {
    if (this.failure) return Promise.reject(this.failure);
    const { request, action } = this.reactor.callCommand(name, args, { data: options.data, redirect: options.redirect });
    const result = new Promise<CborValue[]>((resolve, reject) => {
      this.pending.set(request.requestId, { objects: [], options, resolve, reject });
    });
    if (action.type === 'sendFrames') {
      const bytes = concatBytes(action.frames);
      this.writeChain = this.writeChain.then(() => this.ch.writeBytes(bytes)).catch((err) => {
        this.failAll(err instanceof WirekitError ? err : new ConnectionClosedError(`sending a request failed: ${err instanceof Error ? err.message : String(err)}`, err));
        this.socket.destroy();
      });
    }
    // A call given up by timeout or abort leaves its request active in the reactor: its late
    // response is still read (and dropped) so the connection stays in step.
    return withWait(`call ${name}`, options, result).catch((err) => {
      const p = this.pending.get(request.requestId);
      if (p) p.resolve = p.reject = () => {};
      throw err;
    });
  }

  /** Ends the outgoing direction after queued requests and waits for pending responses. */
  async end(): Promise<void> {
    await this.writeChain;
    await this.ch.end();
    await this.closed;
  }

  /** Destroys the connection; pending calls fail with `ConnectionClosedError`. */
  close(): void {
    this.socket.destroy();
  }

  private onAction(a: ClientAction): void {
    switch (a.type) {
      case 'responseData': {
        const p = this.pending.get(a.request.requestId);
        if (!p) return;
        p.objects.push(...a.objects);
        if (!a.eos) return;
        this.pending.delete(a.request.requestId);
        const status = a.request.status;
        if (status && text(mapGet(status, 'status')) === 'error') {
          const error = mapGet(status, 'error');
          const args = mapGet(error, 'args');
          const message = formatAtoms([{ msg: text(mapGet(error, 'message')), args: Array.isArray(args) ? args.map((x) => text(x)) : [], labels: [] }]);
          p.reject(new MuxCommandFailedError('command', message));
        } else p.resolve(p.objects);
        return;
      }
      case 'error': {
        const p = this.pending.get(a.request.requestId);
        this.pending.delete(a.request.requestId);
        p?.reject(new MuxCommandFailedError(a.errorType, a.message));
        return;
      }
      case 'progress': {
        const { topic, pos, total, label, item } = a;
        this.pending.get(a.request.requestId)?.options.onProgress?.({ topic, pos, total, ...(label !== undefined ? { label } : {}), ...(item !== undefined ? { item } : {}) });
        return;
      }
      case 'textOutput':
        this.pending.get(a.request.requestId)?.options.onText?.(a.text, a.atoms);
        return;
      default:
        return;
    }
  }

  private async readLoop(): Promise<void> {
    try {
      for (;;) {
        const f = await this.ch.read();
        if (f === null) break;
        const a = this.reactor.onFrame(f);
        if (a.type === 'protocolError') {
          this.failAll(a.error);
          this.socket.destroy();
          return;
        }
        this.onAction(a);
      }
      this.failAll(new ConnectionClosedError('connection closed with requests pending'));
    } catch (err) {
      const e = err instanceof ConnectionClosedError || err instanceof MuxProtocolError ? err : new ConnectionClosedError(`connection failed: ${err instanceof Error ? err.message : String(err)}`, err);
      this.failAll(e);
      this.socket.destroy();
    }
  }

  private failAll(err: Error): void {
    if (!this.failure) this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

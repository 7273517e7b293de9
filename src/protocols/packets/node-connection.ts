/**
 * Node driver for Armchair's packet protocol: a `PacketSession` over a `Duplex` (TCP or Unix
 * socket): packets sent and received, and the file stream of a transfer moved between the socket
 * and caller-given streams. One internal reader takes events off the stream only while someone
 * needs them (a receive, a send waiting for the window, a drain, a file transfer), so backpressure
 * reaches the socket. Files on disk are `node-files.ts`'s business (`sendFiles`, `receiveFiles`).
 */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { attachWait, type ChannelOptions, type WaitOptions } from '../../channels/frame-channel.js';
import { NodeFrameChannel } from '../../channels/node-channel.js';
import { ConnectionClosedError } from '../../errors.js';
import { PacketErrorStateError, PacketProtocolError, PacketUsageError, UnsafeFileNameError } from './errors.js';
import { receiveFiles, sendFiles, type ReceivedFile, type ReceiveFilesOptions, type SendFilesOptions } from './node-files.js';
import { MarkerScanner, PacketSession, type Packet, type PacketEvent, type PacketSessionOptions } from './packet-session.js';

export interface PacketConnectionOptions extends PacketSessionOptions {
  /** Channel options (high-water mark, leftover bytes). */
  channel?: ChannelOptions;
  /**
   * Maximum number of received packets held for the application while a send or drain waits for
   * `ready`s. A waiter that would need to buffer more fails with `WK_PACKET_INBOX_FULL`. Default 10000.
   */
  maxInbox?: number;
}

/** Options of `receiveFirst`. */
export interface ReceiveFirstOptions extends WaitOptions {
  /** Keep the packets of other types for later receives (default) or discard them (as Armchair's `recv_first`). */
  others?: 'keep' | 'discard';
}

/** One file of an outgoing transfer: its base name and its bytes. */
export interface OutgoingFile {
  /** Base name sent in the `sending_files` packet. */
  name: string;
  /** Opened when the file's turn comes; stopped early (`return()`) if the transfer fails. */
  read(): AsyncIterable<Uint8Array>;
}

/** Options of `sendFileStreams`. */
export interface SendFileStreamsOptions extends WaitOptions {
  /** Wait for the receiver's `ready`. Default true. */
  waitAck?: boolean;
}

/** Options of `receiveFileStreams`. */
export interface ReceiveFileStreamsOptions extends WaitOptions {
  /** Send the `ready` for the `sending_files` packet when done. Default true. */
  ack?: boolean;
}

/** A file received by `receiveFileStreams`: its name and the number of bytes written. */
export interface ReceivedFileStream {
  name: string;
  size: number;
}

/** Where `receiveFileStreams` writes a file: a writable stream (`end()` is awaited), or the error to refuse it. */
export type FileSink = (name: string) => NodeJS.WritableStream;

type InboxItem = { kind: 'packet'; packet: Packet } | { kind: 'error'; error: unknown } | { kind: 'files'; packet: Packet; names: string[] };

interface Receiver {
  /** Tries to satisfy the receiver from the inbox; true when it settled. */
  serve(): boolean;
  reject(err: unknown): void;
}

interface WindowWaiter {
  type: string;
  body: Uint8Array | undefined;
  /** The sending_files packet of the transfer that holds the output. */
  ownsOutput: boolean;
  resolve(id: number): void;
  reject(err: unknown): void;
}

interface AckWaiter {
  done(): boolean;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * A packet connection (Armchair's packet protocol) over a Node duplex stream.
 *
 * ```ts
 * const conn = new PacketConnection(socket, { window: 4 });
 * const id = await conn.send('init', ['robot-1']);
 * const p = await conn.receive({ timeout: 5000 });
 * await conn.ack(p!);
 * await conn.close();
 * ```
 */
export class PacketConnection {
  readonly session: PacketSession;
  private readonly ch: NodeFrameChannel<PacketEvent, Uint8Array>;
  private readonly maxInbox: number;
  private readonly inbox: InboxItem[] = [];
  private receivers: Receiver[] = [];
  private windowWaiters: WindowWaiter[] = [];
  private ackWaiters: AckWaiter[] = [];
  private fileEvents: PacketEvent[] = [];
  private fileWaiter: { resolve(ev: PacketEvent): void; reject(err: unknown): void } | undefined;
  /** 'pending': a sending_files arrived and nobody claimed it yet; 'active': receiveFiles streams it. */
  private transfer: 'none' | 'pending' | 'active' = 'none';
  /** A sending_files packet returned by `receive()`, whose files `receiveFiles` must take next. */
  private announced: InboxItem | undefined;
  private fileWriting: Promise<void> | undefined;
  private reading = false;
  private ended = false;
  private failure: unknown = undefined;
  /** Called once by `fail` (waits on a file sink). */
  private readonly failureHooks = new Set<(err: unknown) => void>();

  constructor(
    readonly stream: Duplex,
    options: PacketConnectionOptions = {},
  ) {
    this.session = new PacketSession(options);
    this.maxInbox = options.maxInbox ?? 10000;
    this.ch = new NodeFrameChannel(stream, this.session.decoder, options.channel);
  }

  /** Number of received packets (and protocol errors) waiting for a receive. */
  get buffered(): number {
    return this.inbox.length;
  }

  /** Ids sent and not yet acknowledged. */
  get inFlight(): number[] {
    return this.session.inFlight;
  }

  /** True in the error state. */
  get inError(): boolean {
    return this.session.inError;
  }

  /** Payload of the `error` packet that set the error state. */
  get errorPayload(): unknown {
    return this.session.errorPayload;
  }

  /**
   * Sends a packet and resolves with its command id once written. A non-urgent packet waits while
   * the window is full (N packets in flight) until a `ready` frees a slot; urgent packets and
   * `ready` never wait for the window. Fails with `PacketErrorStateError` in the error state.
   */
  async send(type: string, payload?: unknown, options: WaitOptions = {}): Promise<number> {
    this.checkUsable();
    const body = payload === undefined ? undefined : this.session.serializer.encode(payload);
    return this.sendBody(type, body, options);
  }

  /** Acknowledges a received packet (or id) with a `ready`. */
  async ack(packet: Packet | number): Promise<number> {
    const id = typeof packet === 'number' ? packet : packet.id;
    this.checkUsable();
    await this.fileWriting;
    const out = this.session.encodeAck(id);
    await this.write(out.bytes);
    return out.id;
  }

  /**
   * The next packet that is not a `ready` (a `ready` only updates the window). Resolves `null` at
   * the end of the stream. Rejects with the protocol error of a bad packet (unknown type, unknown
   * id, bad payload), after which the next receive continues; with `PacketErrorStateError` in the
   * error state (the `error` packet that sets it is not returned: its payload is `errorPayload`).
   */
  receive(options: WaitOptions = {}): Promise<Packet | null> {
    return this.addReceiver(options, 'receive', () => {
      if (this.announced) throw new PacketUsageError('WK_PACKET_FILES_PENDING', 'a sending_files packet was received: call receiveFiles() before receiving more packets');
      const item = this.inbox[0];
      if (item === undefined) return this.ended ? null : undefined;
      this.inbox.shift();
      if (item.kind === 'error') throw item.error;
      if (item.kind === 'files') this.announced = item;
      return item.packet;
    });
  }

  /**
   * The first packet of `type`. Packets of other types read meanwhile are kept for later receives
   * (default) or discarded (`others: 'discard'`, as Armchair's `recv_first`). Resolves `null` at the
   * end of the stream.
   */
  receiveFirst(type: string, options: ReceiveFirstOptions = {}): Promise<Packet | null> {
    this.session.types.byteOf(type);
    const discard = options.others === 'discard';
    return this.addReceiver(options, `receiveFirst(${type})`, () => {
      if (this.announced) throw new PacketUsageError('WK_PACKET_FILES_PENDING', 'a sending_files packet was received: call receiveFiles() first');
      for (let i = 0; i < this.inbox.length; i++) {
        const item = this.inbox[i]!;
        if (item.kind !== 'error' && item.packet.type === type) {
          if (item.kind === 'files') {
            this.announced = item;
          }
          if (discard) this.inbox.splice(0, i + 1);
          else this.inbox.splice(i, 1);
          return item.packet;
        }
        if (discard && item.kind === 'error') {
          this.inbox.splice(0, i + 1);
          throw item.error;
        }
        if (item.kind === 'files') throw new PacketUsageError('WK_PACKET_FILES_PENDING', 'a file transfer arrived: call receiveFiles() first');
      }
      if (discard) this.inbox.length = 0;
      return this.ended ? null : undefined;
    });
  }

  /** Waits until no packet is in flight (every sent packet acknowledged). */
  drain(options: WaitOptions = {}): Promise<void> {
    return this.waitFor(() => this.session.inFlight.length === 0, options, 'drain');
  }

  /** Waits until packet `id` has been acknowledged. */
  waitAcked(id: number, options: WaitOptions = {}): Promise<void> {
    return this.waitFor(() => !this.session.inFlight.includes(id), options, `ready for packet ${id}`);
  }

  /** Leaves the error state and clears the window (a late `ready` for a cleared id is ignored). */
  resetError(): void {
    this.session.resetError();
    this.serve();
  }

  /**
   * Sends files from disk: see `sendFiles` in `node-files.ts` (base names, compat-mode marker check,
   * streamed reads, then the receiver's `ready`).
   */
  sendFiles(paths: string[], options: SendFilesOptions = {}): Promise<number> {
    return sendFiles(this, paths, options);
  }

  /** Receives the next file transfer into directory `dir`: see `receiveFiles` in `node-files.ts`. */
  receiveFiles(dir: string, options: ReceiveFilesOptions = {}): Promise<ReceivedFile[]> {
    return receiveFiles(this, dir, options);
  }

  /**
   * Sends a file transfer: a `sending_files` packet with the files' base names (waits for the
   * window), then each file's bytes as `read()` yields them (chunked mode: length-prefixed chunks;
   * compat mode: raw bytes and the end marker; a file whose bytes turn out to contain the marker
   * fails the connection, since the receiver could not find the file's end), then waits for the
   * receiver's `ready`. Other sends wait while the file bytes are written.
   */
  async sendFileStreams(files: OutgoingFile[], options: SendFileStreamsOptions = {}): Promise<number> {
    this.checkUsable();
    const names = files.map((f) => f.name);
    const body = this.session.fileNamesBody(names);
    // Reserve the output: the sending_files packet and the file bytes go out back to back.
    const previous = this.fileWriting;
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.fileWriting = previous ? previous.then(() => mine) : mine;
    try {
      await previous;
      const id = await this.waitWindow('sending_files', body, options, true);
      for (const f of files) await this.streamFile(f);
      release();
      if (this.fileWriting === mine) this.fileWriting = undefined;
      this.serve();
      if (options.waitAck ?? true) await this.waitAcked(id, options);
      return id;
    } finally {
      release();
      if (this.fileWriting === mine) this.fileWriting = undefined;
    }
  }

  /**
   * Receives the next file transfer: waits for a `sending_files` packet (packets before it stay
   * buffered), writes each file into the stream `open(name)` gives while its bytes arrive, then
   * acknowledges the transfer with `ready`. File names are checked by the session: a name with a
   * path separator, or `.`/`..`, is refused (`UnsafeFileNameError`) and its bytes are discarded.
   * `open` may throw to refuse a file; the transfer then fails.
   */
  async receiveFileStreams(open: FileSink, options: ReceiveFileStreamsOptions = {}): Promise<ReceivedFileStream[]> {
    let item = this.announced;
    this.announced = undefined;
    if (!item) {
      const packet = await this.addReceiver(options, 'receiveFiles', () => {
        // A refused transfer (unsafe name) surfaces here; other packets and errors stay buffered.
        const i = this.inbox.findIndex((x) => x.kind === 'files' || (x.kind === 'error' && x.error instanceof UnsafeFileNameError));
        if (i < 0) return this.ended ? null : undefined;
        const found = this.inbox[i]!;
        if (found.kind === 'error') {
          this.inbox.splice(i, 1);
          throw found.error;
        }
        return (this.inbox.splice(i, 1)[0] as { packet: Packet }).packet;
      });
      if (packet === null) throw new ConnectionClosedError('connection closed before a file transfer');
      item = { kind: 'files', packet, names: packet.payload as string[] };
    }
    if (item.kind !== 'files') throw new PacketUsageError('WK_PACKET_FILES', 'no file transfer pending');
    const files: ReceivedFileStream[] = [];
    if (item.names.length > 0) {
      this.transfer = 'active';
      let out: NodeJS.WritableStream | undefined;
      let current: ReceivedFileStream | undefined;
      // The sink's errors are caught for its whole life (and after it was destroyed): an error it
      // emits while the loop waits for the peer (a write failing after a reset) must not crash the
      // process; it fails the transfer at the next step instead.
      let sinkError: unknown = undefined;
      const onSinkError = (err: unknown) => {
        sinkError ??= err;
      };
      try {
        for (;;) {
          const ev = await this.nextFileEvent(options);
          if (sinkError !== undefined) throw sinkError;
          if (ev.kind === 'file-start') {
            current = { name: ev.name, size: 0 };
            out = open(ev.name);
            out.on('error', onSinkError);
          } else if (ev.kind === 'file-data') {
            current!.size += ev.data.length;
            if (!out!.write(ev.data)) await this.sinkSettled(out!, 'drain');
          } else if (ev.kind === 'file-end') {
            const ending = out!;
            const ended = this.sinkSettled(ending, 'finish');
            ending.end();
            await ended;
            out = undefined;
            files.push(current!);
          } else if (ev.kind === 'files-end') {
            break;
          }
        }
      } catch (err) {
        (out as { destroy?: () => void } | undefined)?.destroy?.();
        throw err;
      } finally {
        if (this.transfer === 'active' && this.session.receivingFiles) {
          // Abandoned in the middle: the stream can no longer be followed.
          this.fail(new ConnectionClosedError('file transfer abandoned in the middle'));
        }
        this.transfer = 'none';
        this.serve();
        this.kick();
      }
    }
    if (options.ack ?? true) await this.ack(item.packet);
    return files;
  }

  /** Drains (waits for every `ready`), then ends the stream and waits for it to close. */
  async close(options: WaitOptions = {}): Promise<void> {
    try {
      if (!this.ended && this.failure === undefined) await this.drain(options);
    } finally {
      await this.ch.end().catch(() => undefined);
      if (!this.stream.destroyed) {
        const closed = once(this.stream, 'close').then(() => undefined, () => undefined);
        const timer = setTimeout(() => this.stream.destroy(), options.timeout ?? 1000);
        this.stream.resume();
        await closed;
        clearTimeout(timer);
      }
    }
  }

  /** Destroys the stream at once; pending waits fail. */
  destroy(err?: Error): void {
    this.fail(err ?? new ConnectionClosedError('connection destroyed'));
  }

  // ---- internals ----

  private checkUsable(): void {
    if (this.failure !== undefined) throw this.failure;
    this.session.checkState();
  }

  private async write(bytes: Uint8Array[]): Promise<void> {
    const ps: Promise<void>[] = [];
    for (const b of bytes) ps.push(this.ch.writeBytes(b));
    await Promise.all(ps);
  }

  private async sendBody(type: string, body: Uint8Array | undefined, options: WaitOptions): Promise<number> {
    this.session.types.byteOf(type);
    if (!this.session.occupiesWindow(type)) {
      await this.fileWriting;
      this.checkUsable();
      const out = this.session.encodeRaw(type, body);
      await this.write(out.bytes);
      return out.id;
    }
    if (this.windowWaiters.length === 0 && this.fileWriting === undefined && this.session.canSend(type)) {
      const out = this.session.encodeRaw(type, body);
      await this.write(out.bytes);
      return out.id;
    }
    return this.waitWindow(type, body, options);
  }

  private waitWindow(type: string, body: Uint8Array | undefined, options: WaitOptions, ownsOutput = false): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const w: WindowWaiter = {
        type,
        body,
        ownsOutput,
        resolve: (id) => {
          cleanup();
          resolve(id);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const cleanup = attachWait(`waiting for window room to send ${type}`, options, (err) => {
        this.windowWaiters = this.windowWaiters.filter((x) => x !== w);
        reject(err);
      });
      this.windowWaiters.push(w);
      this.serve();
      this.kick();
    });
  }

  private waitFor(done: () => boolean, options: WaitOptions, what: string): Promise<void> {
    try {
      this.checkUsable();
    } catch (err) {
      return Promise.reject(err);
    }
    if (done()) return Promise.resolve();
    if (this.ended) return Promise.reject(new ConnectionClosedError(`connection closed while waiting for ${what}`));
    return new Promise<void>((resolve, reject) => {
      const w: AckWaiter = {
        done,
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const cleanup = attachWait(what, options, (err) => {
        this.ackWaiters = this.ackWaiters.filter((x) => x !== w);
        reject(err);
      });
      this.ackWaiters.push(w);
      this.kick();
    });
  }

  private addReceiver<T>(options: WaitOptions, what: string, take: () => T | null | undefined): Promise<T | null> {
    return new Promise<T | null>((resolve, reject) => {
      let settled = false;
      const r: Receiver = {
        serve: () => {
          if (settled) return true;
          let v: T | null | undefined;
          try {
            this.checkUsable();
            v = take();
          } catch (err) {
            r.reject(err);
            return true;
          }
          if (v === undefined) return false;
          settled = true;
          cleanup();
          resolve(v);
          return true;
        },
        reject: (err) => {
          if (settled) return;
          settled = true;
          cleanup();
          reject(err);
        },
      };
      const cleanup = attachWait(what, options, (err) => {
        settled = true;
        this.receivers = this.receivers.filter((x) => x !== r);
        reject(err);
      });
      if (r.serve()) return;
      this.receivers.push(r);
      this.kick();
    });
  }

  private nextFileEvent(options: WaitOptions): Promise<PacketEvent> {
    const ev = this.fileEvents.shift();
    if (ev) return Promise.resolve(ev);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.ended) return Promise.reject(new ConnectionClosedError('connection closed inside a file transfer'));
    return new Promise<PacketEvent>((resolve, reject) => {
      const cleanup = attachWait('receiving file data', options, (err) => {
        this.fileWaiter = undefined;
        reject(err);
      });
      this.fileWaiter = {
        resolve: (e) => {
          cleanup();
          resolve(e);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      this.kick();
    });
  }

  /** Settles every waiter that can be settled now. */
  private serve(): void {
    if (this.session.inError) {
      const err = new PacketErrorStateError(this.session.errorPayload);
      const rs = this.receivers;
      const ws = this.windowWaiters;
      const as = this.ackWaiters;
      this.receivers = [];
      this.windowWaiters = [];
      this.ackWaiters = [];
      for (const r of rs) r.reject(err);
      for (const w of ws) w.reject(err);
      for (const a of as) a.reject(err);
      return;
    }
    if (this.receivers.length > 0) this.receivers = this.receivers.filter((r) => !r.serve());
    // Window waiters in order; while file bytes are being written only the file sender may go.
    for (;;) {
      const i = this.fileWriting === undefined ? 0 : this.windowWaiters.findIndex((x) => x.ownsOutput);
      const w = this.windowWaiters[i];
      if (w === undefined || !this.session.canSend(w.type)) break;
      this.windowWaiters.splice(i, 1);
      let out;
      try {
        out = this.session.encodeRaw(w.type, w.body);
      } catch (err) {
        w.reject(err);
        continue;
      }
      this.write(out.bytes).then(
        () => w.resolve(out.id),
        (err: unknown) => w.reject(err),
      );
    }
    if (this.ackWaiters.length > 0) {
      this.ackWaiters = this.ackWaiters.filter((a) => {
        if (!a.done()) return true;
        a.resolve();
        return false;
      });
    }
    if (this.ended) {
      const err = new ConnectionClosedError('connection closed while waiting for ready');
      for (const w of this.windowWaiters.splice(0)) w.reject(err);
      for (const a of this.ackWaiters.splice(0)) a.reject(err);
    }
  }

  private wantsInput(): boolean {
    if (this.ended || this.failure !== undefined) return false;
    if (this.transfer === 'active') return this.fileWaiter !== undefined && this.fileEvents.length === 0;
    if (this.transfer === 'pending') return false;
    if (this.receivers.length > 0) return true;
    if (this.windowWaiters.length > 0 || this.ackWaiters.length > 0) {
      if (this.inbox.length < this.maxInbox) return true;
      const err = new PacketUsageError('WK_PACKET_INBOX_FULL', `${this.inbox.length} received packets are waiting to be read; receive them before waiting for ready`);
      for (const w of this.windowWaiters.splice(0)) w.reject(err);
      for (const a of this.ackWaiters.splice(0)) a.reject(err);
    }
    return false;
  }

  private kick(): void {
    if (this.reading || !this.wantsInput()) return;
    this.reading = true;
    this.ch.read().then(
      (ev) => {
        this.reading = false;
        this.onEvent(ev);
        this.kick();
      },
      (err: unknown) => {
        this.reading = false;
        this.onReadError(err);
        this.kick();
      },
    );
  }

  private onEvent(ev: PacketEvent | null): void {
    if (ev === null) {
      this.ended = true;
      this.fileWaiter?.reject(new ConnectionClosedError('connection closed inside a file transfer'));
      this.fileWaiter = undefined;
      this.serve();
      return;
    }
    switch (ev.kind) {
      case 'ack':
      case 'error':
        break;
      case 'packet':
        this.inbox.push({ kind: 'packet', packet: ev.packet });
        break;
      case 'files':
        this.inbox.push({ kind: 'files', packet: ev.packet, names: ev.names });
        if (ev.names.length > 0) this.transfer = 'pending';
        break;
      default:
        if (this.fileWaiter) {
          const w = this.fileWaiter;
          this.fileWaiter = undefined;
          w.resolve(ev);
        } else {
          this.fileEvents.push(ev);
        }
    }
    this.serve();
  }

  private onReadError(err: unknown): void {
    if (err instanceof PacketProtocolError && !this.session.broken) {
      this.inbox.push({ kind: 'error', error: err });
      this.serve();
      return;
    }
    this.fail(err);
  }

  /**
   * Resolves when `sink` emits `event` ('drain', 'finish'); rejects when it fails or closes first,
   * or when the connection fails meanwhile (a sink that never drains cannot hold the transfer).
   */
  private sinkSettled(sink: NodeJS.WritableStream, event: 'drain' | 'finish'): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const emitter = sink as NodeJS.EventEmitter;
      const done = (err?: unknown) => {
        emitter.off(event, onEvent);
        emitter.off('error', onError);
        emitter.off('close', onClose);
        this.failureHooks.delete(onFailure);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onEvent = () => done();
      const onError = (err: unknown) => done(err);
      const onClose = () => done(new ConnectionClosedError(`the file sink closed before '${event}'`));
      const onFailure = (err: unknown) => done(err);
      emitter.on(event, onEvent);
      emitter.on('error', onError);
      emitter.on('close', onClose);
      this.failureHooks.add(onFailure);
    });
  }

  private fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const hook of [...this.failureHooks]) hook(err);
    const rs = this.receivers;
    this.receivers = [];
    for (const r of rs) r.reject(err);
    for (const w of this.windowWaiters.splice(0)) w.reject(err);
    for (const a of this.ackWaiters.splice(0)) a.reject(err);
    this.fileWaiter?.reject(err);
    this.fileWaiter = undefined;
    this.stream.destroy();
  }

  private async streamFile(file: OutgoingFile): Promise<void> {
    const chunked = this.session.fileMode === 'chunked';
    const scanner = chunked ? undefined : new MarkerScanner(this.session.endMarker);
    for await (const chunk of file.read()) {
      if (this.failure !== undefined) throw this.failure;
      if (scanner?.push(chunk)) {
        const err = new PacketUsageError('WK_PACKET_MARKER_IN_FILE', `file ${file.name} changed while being sent and now contains the end marker; connection closed`);
        this.fail(err);
        throw err;
      }
      if (chunked) await this.write([this.session.fileChunkHeader(chunk.length), chunk]);
      else await this.write([chunk]);
    }
    await this.write([chunked ? this.session.fileChunkHeader(0) : this.session.endMarker]);
  }
}

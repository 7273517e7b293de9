/**
 * Node driver of the control protocol client.
 */
import type { Duplex } from 'node:stream';
import { connectSocket, type ConnectSocketOptions, type SocketAddress } from '../../channels/connect.js';
import { attachWait, type WaitOptions } from '../../channels/frame-channel.js';
import { handOff } from '../../channels/hand-off.js';
import { ConnectionClosedError } from '../../errors.js';
import { ClientSession, type CallMode } from './client-session.js';
import { ControlStateError, RemoteCommandError, VersionMismatchError } from './errors.js';
import { satisfiesVersion } from './version.js';

/**
 * @deprecated use `SocketAddress` (`{ path }` or `{ host, port }`). Still accepted by `connect`:
 * a bare string is a Unix socket path, a missing host means 127.0.0.1.
 */
export type ConnectAddress = string | { path: string } | { host?: string; port: number };

/** Default of `ClientOptions.maxQueued`. */
export const DEFAULT_MAX_QUEUED = 1024;

export interface ClientOptions {
  /**
   * Version the server must announce: a range such as `'>=1.2 <2'` or `'^1.0.0'`, or a predicate.
   * Implies `waitForVersion`; a mismatch closes the connection with `VersionMismatchError`.
   */
  requireVersion?: string | ((version: string | undefined) => boolean);
  /** Wait for the greeting before resolving `connect` (only for servers known to send one). */
  waitForVersion?: boolean;
  /** Longest server line, in bytes (default 64 MiB); longer is a protocol error. */
  maxLineLength?: number;
  /** Bytes already read from the stream by someone else (for `ControlClient.over`). */
  leftover?: Uint8Array;
  /**
   * Send requests while earlier ones are unanswered (default true). `false`: one request at a
   * time, each written once the previous call got its final reply (for servers such as the
   * original osctld, which answers nothing when two requests arrive in one read).
   */
  pipeline?: boolean;
  /**
   * Backpressure: stop reading from the server while this many messages wait unconsumed
   * (events of a `subscribe`, progress of a `start` not yet iterated); reading resumes as they
   * are consumed (default 1024). Iterate a `start` call's `progress` (or use `call` with
   * `onProgress`): its reply cannot arrive while the client waits for you to consume them.
   */
  maxQueued?: number;
}

export interface ConnectOptions extends ClientOptions, ConnectSocketOptions {
  /** Timeout of connecting plus reading the greeting, in ms (default 10 000). */
  timeout?: number;
}

export interface CallOptions extends WaitOptions {
  /** Called with each progress message of this call. */
  onProgress?: (message: unknown) => void;
}

/**
 * A call in progress: `response` settles with the reply; `progress` iterates the progress
 * messages and ends when the reply arrives (or throws the call's error).
 */
export interface ControlCall<T = unknown> {
  readonly response: Promise<T>;
  readonly progress: AsyncIterable<unknown>;
}

/** An event subscription: the reply, then events until the connection ends or `close()`. */
export interface EventSubscription<E = unknown> extends AsyncIterable<E> {
  /** The reply to the subscribing command. */
  readonly response: unknown;
  /** Next event (`null` once the stream is over). */
  next(options?: WaitOptions): Promise<E | null>;
  /** Unsubscribes by closing the connection. */
  close(): void;
}

interface CallRecord {
  id: number;
  cmd: string;
  mode: CallMode;
  resolve(v: unknown): void;
  reject(e: unknown): void;
  onProgress: ((m: unknown) => void) | undefined;
  abandoned: boolean;
  cleanup: () => void;
  response?: unknown;
  events?: EventQueue;
}

/** Counts the messages waiting in every `EventQueue` of a client (for its backpressure). */
interface QueueMeter {
  /** `n` more (positive) or fewer (negative) messages wait. */
  change(n: number): void;
}

/** A small async queue of events with end/failure. */
class EventQueue {
  private items: unknown[] = [];
  private waiters: Array<{ resolve(v: unknown): void; reject(e: unknown): void }> = [];
  private over = false;
  private error: unknown = undefined;

  constructor(private readonly meter: QueueMeter) {}

  push(v: unknown): void {
    const w = this.waiters.shift();
    if (w) w.resolve(v);
    else {
      this.items.push(v);
      if (!this.over) this.meter.change(1);
    }
  }

  end(err?: unknown): void {
    if (this.over) return;
    this.over = true;
    this.error = err;
    // What is left no longer holds back the server's next messages.
    if (this.items.length > 0) this.meter.change(-this.items.length);
    for (const w of this.waiters.splice(0)) {
      if (err !== undefined) w.reject(err);
      else w.resolve(null);
    }
  }

  next(options: WaitOptions = {}): Promise<unknown> {
    if (this.items.length > 0) {
      if (!this.over) this.meter.change(-1);
      return Promise.resolve(this.items.shift());
    }
    if (this.over) return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (v: unknown) => {
          cleanup();
          resolve(v);
        },
        reject: (e: unknown) => {
          cleanup();
          reject(e);
        },
      };
      const cleanup = attachWait('waiting for an event', options, (err) => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(err);
      });
      this.waiters.push(w);
    });
  }
}

/**
 * A control protocol client over one connection. Calls may be pipelined; the server answers
 * them in order.
 *
 * ```ts
 * const client = await ControlClient.connect({ path: '/run/app.sock' }, { requireVersion: '^1.0.0' });
 * const out = await client.call('start', { id: 'web' }, { onProgress: (m) => console.log(m) });
 * ```
 */
export class ControlClient {
  private readonly session: ClientSession;
  private readonly calls = new Map<number, CallRecord>();
  private flushScheduled = false;
  private isClosed = false;
  private closeError: Error | undefined;
  private greetingWaiters: Array<() => void> = [];
  /** Resolves when the connection is over (closed, failed, or hijacked). */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly maxQueued: number;
  private queued = 0;
  private readPaused = false;
  private readonly meter: QueueMeter = {
    change: (n) => {
      this.queued += n;
      if (n < 0 && this.readPaused && this.queued < this.maxQueued) {
        this.readPaused = false;
        if (!this.isClosed) this.stream.resume();
        queueMicrotask(() => this.drain());
      }
    },
  };

  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
    this.drain();
  };
  private readonly onEnd = () => this.shutdown(new ConnectionClosedError('server closed the connection'));
  private readonly onError = (err: unknown) => this.shutdown(new ConnectionClosedError(`connection failed: ${err instanceof Error ? err.message : String(err)}`, err));
  private readonly onClose = () => this.shutdown(new ConnectionClosedError('connection closed'));

  /** Starts speaking the protocol on a connected stream; prefer `connect` or `over`. */
  constructor(
    /** The underlying stream. */
    readonly stream: Duplex,
    options: ClientOptions = {},
  ) {
    this.session = new ClientSession({ maxLineLength: options.maxLineLength, pipeline: options.pipeline });
    this.maxQueued = Math.max(1, options.maxQueued ?? DEFAULT_MAX_QUEUED);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('error', this.onError);
    stream.on('close', this.onClose);
    if (options.leftover && options.leftover.length > 0) {
      this.session.receive(options.leftover);
      queueMicrotask(() => this.drain());
    }
  }

  /**
   * Connects to a Unix socket (`{ path }`) or a TCP address (`{ host, port }`, TLS with
   * `options.tls`) through `connectSocket`, then (when asked to, or when a version is required)
   * reads the greeting and checks the version, all within `timeout`. Rejects with `ConnectError`
   * (`WK_CONNECT`), `TimeoutError`, `AbortedError` or `VersionMismatchError`.
   */
  static async connect(address: SocketAddress | ConnectAddress, options: ConnectOptions = {}): Promise<ControlClient> {
    const timeout = options.timeout ?? 10_000;
    const target: SocketAddress =
      typeof address === 'string' ? { path: address } : 'path' in address ? address : { host: address.host ?? '127.0.0.1', port: address.port };
    const started = Date.now();
    const socket = await connectSocket(target, { timeout, signal: options.signal, tls: options.tls, allowHalfOpen: true, noDelay: options.noDelay });
    const rest = Math.max(1, timeout - (Date.now() - started));
    return ControlClient.over(socket, { ...options, timeout: rest });
  }

  /**
   * Speaks the protocol on an already-connected stream (a TLS socket, a socket you authenticated
   * first); checks the greeting like `connect`.
   */
  static async over(stream: Duplex, options: ConnectOptions = {}): Promise<ControlClient> {
    const client = new ControlClient(stream, options);
    const req = options.requireVersion;
    if (req !== undefined || options.waitForVersion) {
      try {
        await client.waitGreeting({ timeout: options.timeout ?? 10_000, signal: options.signal });
        const v = client.version;
        const ok = typeof req === 'function' ? req(v) : req === undefined || (v !== undefined && satisfiesVersion(v, req));
        if (!ok) throw new VersionMismatchError(v, typeof req === 'string' ? req : 'a version accepted by the client');
      } catch (err) {
        client.close();
        throw err;
      }
    }
    return client;
  }

  /** The server's version, once its greeting was read. */
  get version(): string | undefined {
    return this.session.version;
  }

  /** Messages (subscription events, `start` progress) received and not yet consumed. */
  get queuedMessages(): number {
    return this.queued;
  }

  /** Calls sent and not yet answered. */
  get pendingCalls(): number {
    return this.calls.size;
  }

  /** Resolves once the first server line (the greeting, if the server sends one) was read. */
  waitGreeting(options: WaitOptions = {}): Promise<void> {
    if (this.session.greeted) return Promise.resolve();
    if (this.isClosed) return Promise.reject(this.closeError);
    return new Promise((resolve, reject) => {
      const w = () => {
        cleanup();
        if (this.session.greeted) resolve();
        else reject(this.closeError ?? new ConnectionClosedError());
      };
      const cleanup = attachWait('waiting for the server greeting', options, (err) => {
        this.greetingWaiters = this.greetingWaiters.filter((x) => x !== w);
        reject(err);
      });
      this.greetingWaiters.push(w);
    });
  }

  /**
   * Sends a command and resolves with its response. Rejects with `RemoteCommandError` (the
   * server's message), `ConnectionClosedError`, `TimeoutError` or `AbortedError`. A call given up
   * by timeout or signal still occupies its place in the reply order; its reply is discarded.
   */
  call<T = unknown>(cmd: string, opts?: unknown, options: CallOptions = {}): Promise<T> {
    return this.send(cmd, opts, 'call', options) as Promise<T>;
  }

  /** Like `call`, with the progress messages as an async iterable. */
  start<T = unknown>(cmd: string, opts?: unknown, options: CallOptions = {}): ControlCall<T> {
    const queue = new EventQueue(this.meter);
    const user = options.onProgress;
    const response = this.send(cmd, opts, 'call', {
      ...options,
      onProgress: (m) => {
        queue.push(m);
        user?.(m);
      },
    }) as Promise<T>;
    response.then(
      () => queue.end(),
      (err) => queue.end(err),
    );
    const progress: AsyncIterable<unknown> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const m = await queue.next();
          if (m === null) return;
          yield m;
        }
      },
    };
    return { response, progress };
  }

  /**
   * Sends a command after which the server takes over the connection (a console, an exec).
   * Resolves with the response and the raw stream: its first bytes are those that arrived after
   * the reply (even in the same read), then the live bytes. No call may follow it on this
   * client; if the server answers with an error, the client stays usable.
   */
  async hijack<T = unknown>(cmd: string, opts?: unknown, options: CallOptions = {}): Promise<{ response: T; stream: Duplex }> {
    return (await this.send(cmd, opts, 'hijack', options)) as { response: T; stream: Duplex };
  }

  /**
   * Sends a command whose reply is followed by events (`{"status": true, "response": event}`
   * lines), until the connection ends. No call may follow it on this client.
   */
  async subscribe<E = unknown>(cmd: string, opts?: unknown, options: CallOptions = {}): Promise<EventSubscription<E>> {
    const rec = (await this.send(cmd, opts, 'stream', options)) as CallRecord;
    const events = rec.events!;
    const close = () => this.close();
    return {
      response: rec.response,
      next: (o?: WaitOptions) => events.next(o) as Promise<E | null>,
      close,
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const e = await events.next();
            if (e === null) return;
            yield e as E;
          }
        } finally {
          // Leaving the loop early unsubscribes: the connection is closed, so the server's
          // handler sees its signal fire (it used to go on sending to a client that had left).
          events.end();
          close();
        }
      },
    };
  }

  /** Closes the connection; pending calls reject with `ConnectionClosedError`. */
  close(): void {
    if (this.isClosed) return;
    this.shutdown(new ConnectionClosedError('connection closed by the client', undefined));
    this.stream.destroy();
  }

  private send(cmd: string, opts: unknown, mode: CallMode, options: CallOptions): Promise<unknown> {
    if (this.isClosed) return Promise.reject(this.closeError ?? new ConnectionClosedError());
    let id: number;
    try {
      id = this.session.call(cmd, opts, mode);
    } catch (err) {
      return Promise.reject(err);
    }
    this.scheduleFlush();
    return new Promise((resolve, reject) => {
      const rec: CallRecord = {
        id,
        cmd,
        mode,
        resolve,
        reject,
        onProgress: options.onProgress,
        abandoned: false,
        cleanup: noop,
      };
      if (options.timeout !== undefined || options.signal !== undefined) {
        rec.cleanup = attachWait(`command '${cmd}'`, options, (err) => {
          rec.abandoned = true;
          reject(err);
        });
      }
      this.calls.set(id, rec);
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.isClosed) return;
      const bytes = this.session.dataToSend();
      if (bytes.length > 0) this.stream.write(bytes);
    });
  }

  private drain(): void {
    this.decode();
    // With `pipeline: false` a reply releases the next request.
    if (!this.isClosed && this.session.hasDataToSend) this.scheduleFlush();
  }

  private decode(): void {
    for (;;) {
      if (this.isClosed) return;
      if (this.queued >= this.maxQueued) {
        // Backpressure: leave the bytes undecoded and stop reading until messages are consumed.
        if (!this.readPaused) {
          this.readPaused = true;
          this.stream.pause();
        }
        return;
      }
      let ev;
      try {
        ev = this.session.nextEvent();
      } catch (err) {
        this.shutdown(err as Error);
        this.stream.destroy();
        return;
      }
      if (ev === undefined) return;
      switch (ev.type) {
        case 'greeting':
          this.wakeGreeting();
          break;
        case 'progress': {
          const rec = this.calls.get(ev.id);
          if (rec && !rec.abandoned) {
            try {
              rec.onProgress?.(ev.message);
            } catch {
              // A throwing progress callback must not break the connection.
            }
          }
          break;
        }
        case 'response': {
          this.wakeGreeting();
          const rec = this.calls.get(ev.id)!;
          if (rec.mode === 'hijack') {
            rec.response = ev.value;
            break; // resolved on 'switched', which comes next
          }
          if (rec.mode === 'stream') {
            rec.response = ev.value;
            rec.events = new EventQueue(this.meter);
            rec.cleanup();
            // The record stays in `calls` to receive events.
            if (!rec.abandoned) rec.resolve(rec);
            break;
          }
          this.calls.delete(ev.id);
          rec.cleanup();
          if (!rec.abandoned) rec.resolve(ev.value);
          break;
        }
        case 'error': {
          this.wakeGreeting();
          const rec = this.calls.get(ev.id)!;
          this.calls.delete(ev.id);
          rec.cleanup();
          if (!rec.abandoned) rec.reject(new RemoteCommandError(rec.cmd, ev.message, ev.extra));
          break;
        }
        case 'event': {
          const rec = this.calls.get(ev.id);
          rec?.events?.push(ev.value);
          break;
        }
        case 'switched': {
          this.switchOver(ev.id);
          return;
        }
      }
    }
  }

  private switchOver(id: number): void {
    const rec = this.calls.get(id)!;
    this.calls.delete(id);
    rec.cleanup();
    const leftover = this.session.takeRemaining();
    this.detach();
    this.isClosed = true;
    this.closeError = new ControlStateError('connection was hijacked');
    const raw = handOff(this.stream, leftover);
    this.resolveClosed();
    if (rec.abandoned) raw.destroy();
    else rec.resolve({ response: rec.response, stream: raw });
  }

  private wakeGreeting(): void {
    const w = this.greetingWaiters;
    this.greetingWaiters = [];
    for (const f of w) f();
  }

  private detach(): void {
    const s = this.stream;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onError);
    s.removeListener('close', this.onClose);
    s.pause();
  }

  private shutdown(err: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = err;
    this.detach();
    this.stream.on('error', noop);
    if (!this.stream.destroyed) this.stream.destroy();
    const recs = [...this.calls.values()];
    this.calls.clear();
    this.session.abandonAll();
    for (const rec of recs) {
      rec.cleanup();
      if (rec.events) rec.events.end();
      else if (!rec.abandoned) rec.reject(err);
    }
    this.wakeGreeting();
    this.resolveClosed();
  }
}

function noop(): void {}

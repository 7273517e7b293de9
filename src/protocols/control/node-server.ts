/**
 * Node driver of the control protocol server: a command registry and one `ControlConnection`
 * per duplex stream (a Unix or TCP socket accepted by `listen`, or any stream you accepted and
 * authenticated yourself, e.g. a TLS socket, passed to `serve`).
 */
import type { Duplex } from 'node:stream';
import { concatBytes } from '../../bytes/text.js';
import { channel } from '../../channels/node-channel.js';
import { lines } from '../../codecs/lines.js';
import { ConnectionClosedError } from '../../errors.js';
import { CommandError, ControlStateError } from './errors.js';
import { listenSocket, type ListenAddress, type SocketListener } from './listen.js';
import { INTERNAL_ERROR_MESSAGE } from './messages.js';
import { ServerSession } from './server-session.js';

/** Where the server reports handler failures and protocol trouble. */
export interface ControlLogger {
  /** A handler threw something other than a `CommandError` (with its stack), or similar. */
  error(message: string, err?: unknown): void;
  /** Bad lines from clients, hijacks, disconnects. */
  debug?(message: string): void;
}

const consoleLogger: ControlLogger = {
  error(message, err) {
    console.error(`wirekit control: ${message}`, err ?? '');
  },
};

/** What a command handler gets besides its options. */
export interface CommandContext<D = unknown> {
  /** The command name. */
  readonly cmd: string;
  /** Fires when the client goes away (end of input or connection closed), or the server closes. */
  readonly signal: AbortSignal;
  /** The connection the command arrived on (its `data` is what `serve` was given). */
  readonly connection: ControlConnection<D>;
  /** True once the final reply was sent (by `reply`). */
  readonly replied: boolean;
  /** Sends `{"status": true, "progress": message}`. Allowed before the reply; a no-op once the client is gone. */
  progress(message: unknown): void;
  /**
   * Sends the final success reply now instead of returning it (the handler's return value is
   * then ignored). Use it before `send` (event streams) or `hijack`. Resolves when the transport
   * accepted the bytes.
   */
  reply(value?: unknown): Promise<void>;
  /**
   * After `reply`: sends one more `{"status": true, "response": event}` line (an event stream, as
   * osctld's event subscription). Resolves when the transport can take more; rejects with
   * `ConnectionClosedError` once the client is gone.
   */
  send(event: unknown): Promise<void>;
  /**
   * Takes over the connection (osctld's `:handled`): queued replies are written, the server
   * stops reading and writing, and the raw stream is returned. Its first bytes are whatever the
   * client sent after the command line. The handler owns the stream from now on (add an 'error'
   * listener, destroy it when done); its return value is ignored.
   */
  hijack(): Duplex;
}

/** A command implementation: returns (or resolves to) the response value, or throws a `CommandError`. */
export type CommandHandler<D = unknown, O = any> = (opts: O, ctx: CommandContext<D>) => unknown;

export interface ControlServerOptions {
  /** Version sent in the greeting `{"version": ...}`; none is sent when omitted. */
  version?: string;
  /** Longest request line in bytes (default 1 MiB): longer ones get an error reply and are skipped. */
  maxLineLength?: number;
  /** Where handler exceptions are logged with their stack (default: console.error). */
  logger?: ControlLogger;
  /**
   * What end of input from a client means. `'abort'` (default): the client went away, so the
   * running command's signal fires and commands not yet started are dropped. `'serve'`: every
   * complete command received is still served, then the connection is closed (needs a stream
   * that allows half-open connections, as the listeners here create).
   */
  onEnd?: 'abort' | 'serve';
  /** Stop reading from a client when this many bytes are buffered while a command runs (default 1 MiB). */
  highWaterMark?: number;
}

/** Options of one connection. */
export interface ServeOptions<D> {
  /** Bytes already read from the stream (e.g. after your own authentication step), served first. */
  leftover?: Uint8Array;
  /** Per-connection data for handlers (`ctx.connection.data`), e.g. the authenticated user. */
  data?: D;
}

/** How a connection ended. */
export type ConnectionEnd = 'closed' | 'hijacked';

/**
 * The line-JSON command server.
 *
 * ```ts
 * const server = new ControlServer({ version: '1.0.0' });
 * server.command('ping', () => 'pong');
 * server.command('sleep', async ({ ms }, ctx) => { ctx.progress('sleeping'); await delay(ms, undefined, { signal: ctx.signal }); return true; });
 * const listener = await server.listen({ path: '/run/app.sock' }); // created 0600
 * ```
 */
export class ControlServer<D = unknown> {
  private readonly handlers = new Map<string, CommandHandler<D>>();
  private readonly live = new Set<ControlConnection<D>>();
  private readonly listeners = new Set<SocketListener>();
  private nextId = 1;
  readonly options: Readonly<ControlServerOptions>;
  readonly logger: ControlLogger;

  constructor(options: ControlServerOptions = {}) {
    this.options = { ...options };
    this.logger = options.logger ?? consoleLogger;
  }

  /** Registers (or replaces) a command. */
  command<O = any>(name: string, handler: CommandHandler<D, O>): this {
    this.handlers.set(name, handler as CommandHandler<D>);
    return this;
  }

  /** The handler registered for `name`. */
  handler(name: string): CommandHandler<D> | undefined {
    return this.handlers.get(name);
  }

  /** Names of the registered commands. */
  get commands(): string[] {
    return [...this.handlers.keys()];
  }

  /** Connections being served (hijacked ones are no longer counted). */
  get connections(): ReadonlySet<ControlConnection<D>> {
    return this.live;
  }

  /**
   * Serves the protocol on an already-connected stream (a socket you accepted, a TLS socket, a
   * pipe pair joined with `Duplex.from`). Sends the greeting at once.
   */
  serve(stream: Duplex, options: ServeOptions<D> = {}): ControlConnection<D> {
    const conn = new ControlConnection<D>(this, stream, this.nextId++, options, () => this.live.delete(conn));
    this.live.add(conn);
    conn.start();
    return conn;
  }

  /**
   * Listens on a Unix socket (`{ path }`, mode 0600 from the first instant, a stale socket file
   * replaced, a live server's refused with `AddressInUseError`) or TCP (`{ port, host? }`, host
   * defaults to 127.0.0.1), serving every accepted connection.
   */
  async listen(address: ListenAddress): Promise<SocketListener> {
    const listener = await listenSocket(address, (socket) => this.serve(socket));
    this.listeners.add(listener);
    const close = listener.close.bind(listener);
    listener.close = async () => {
      this.listeners.delete(listener);
      await close();
    };
    return listener;
  }

  /** @internal */
  lookup(name: string): CommandHandler<D> | undefined {
    return this.handlers.get(name);
  }

  /** Stops every listener and closes every connection (running commands see their signal fire). */
  async close(): Promise<void> {
    const closing = [...this.listeners].map((l) => l.close());
    for (const c of [...this.live]) c.close();
    await Promise.all([...closing, ...[...this.live].map((c) => c.closed)]);
  }
}

const EMPTY_OPTS = Object.freeze({});

/** One client connection of a `ControlServer`. */
export class ControlConnection<D = unknown> {
  readonly session: ServerSession;
  /** Per-connection data given to `serve`. */
  readonly data: D;
  /** Resolves when the connection is over: closed, or hijacked by a handler. */
  readonly closed: Promise<ConnectionEnd>;
  private resolveClosed!: (how: ConnectionEnd) => void;
  private running: CommandCall<D> | undefined;
  private writeBlocked = false;
  private paused = false;
  private processing = false;
  private flushScheduled = false;
  private ended = false;
  private finished = false;
  private drainWaiters: Array<(err?: Error) => void> = [];
  private readonly endMode: 'abort' | 'serve';
  private readonly highWaterMark: number;
  private leftover: Uint8Array | undefined;

  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : chunk);
    this.process();
  };
  private readonly onEndEvent = () => {
    this.session.receiveEof();
    if (this.endMode === 'abort') this.running?.abort(new ConnectionClosedError('client closed the connection'));
    this.process();
  };
  private readonly onErrorEvent = (err: unknown) => {
    this.server.logger.debug?.(`connection ${this.id}: ${err instanceof Error ? err.message : String(err)}`);
    this.teardown(new ConnectionClosedError('connection failed', err));
  };
  private readonly onCloseEvent = () => this.teardown(new ConnectionClosedError('connection closed'));
  private readonly onDrain = () => {
    this.writeBlocked = false;
    this.wakeDrainWaiters();
    this.process();
  };

  constructor(
    private readonly server: ControlServer<D>,
    /** The underlying stream (do not read from it while the server serves it). */
    readonly stream: Duplex,
    /** A number unique within the server. */
    readonly id: number,
    options: ServeOptions<D>,
    private readonly onGone: () => void,
  ) {
    const o = server.options;
    this.session = new ServerSession({ version: o.version, maxLineLength: o.maxLineLength });
    this.data = options.data as D;
    this.endMode = o.onEnd ?? 'abort';
    this.highWaterMark = o.highWaterMark ?? 1024 * 1024;
    this.leftover = options.leftover;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** @internal */
  start(): void {
    const s = this.stream;
    s.on('data', this.onData);
    s.on('end', this.onEndEvent);
    s.on('error', this.onErrorEvent);
    s.on('close', this.onCloseEvent);
    s.on('drain', this.onDrain);
    if (this.leftover && this.leftover.length > 0) this.session.receive(this.leftover);
    this.leftover = undefined;
    if ((s as { readableEnded?: boolean }).readableEnded) this.session.receiveEof();
    this.process();
  }

  /** The command being served, if any. */
  get currentCommand(): string | undefined {
    return this.session.current;
  }

  /** Closes the connection now (the running command's signal fires). */
  close(): void {
    if (this.finished) return;
    this.stream.destroy();
    this.teardown(new ConnectionClosedError('connection closed by the server', undefined));
  }

  /** Decodes and runs commands until one is in progress or more bytes are needed. */
  private process(): void {
    if (this.processing || this.finished) return;
    this.processing = true;
    try {
      while (!this.running && !this.writeBlocked && this.session.state === 'idle') {
        if (this.session.eof && this.endMode === 'abort') {
          this.endStream();
          break;
        }
        const ev = this.session.nextEvent();
        if (ev === undefined) break;
        if (ev.type === 'command') {
          this.run(ev.cmd, ev.opts);
          // Write in batches, so a client that pipelines without reading meets backpressure.
          if (this.session.pendingOutput >= this.highWaterMark) this.flush();
        }
        else if (ev.type === 'rejected') this.server.logger.debug?.(`connection ${this.id}: ${ev.message}`);
        else {
          this.endStream();
          break;
        }
      }
    } catch (err) {
      this.server.logger.error(`connection ${this.id}: protocol failure`, err);
      this.stream.destroy();
      this.teardown(new ConnectionClosedError('protocol failure', err));
    } finally {
      this.processing = false;
    }
    this.flush();
    this.flowControl();
  }

  private run(cmd: string, opts: unknown): void {
    const handler = this.server.lookup(cmd);
    if (handler === undefined) {
      this.session.fail(`unknown command '${cmd}'`);
      this.session.finish();
      return;
    }
    const call = new CommandCall<D>(this, cmd);
    let result: unknown;
    try {
      result = handler(opts === undefined || opts === null ? EMPTY_OPTS : opts, call);
    } catch (err) {
      this.settle(call, false, err);
      return;
    }
    if (isPromiseLike(result)) {
      this.running = call;
      result.then(
        (v) => this.settleAsync(call, true, v),
        (e) => this.settleAsync(call, false, e),
      );
    } else {
      this.settle(call, true, result);
    }
  }

  private settleAsync(call: CommandCall<D>, ok: boolean, value: unknown): void {
    this.running = undefined;
    this.settle(call, ok, value);
    this.process();
  }

  private settle(call: CommandCall<D>, ok: boolean, value: unknown): void {
    call.done = true;
    const s = this.session;
    if (call.hijacked || s.state === 'closed' || s.state === 'switched') {
      if (!ok && !call.signal.aborted) this.logFailure(call.cmd, value);
      return;
    }
    if (s.state === 'busy') {
      if (ok) {
        try {
          s.respond(value);
        } catch (err) {
          this.logFailure(call.cmd, err);
          s.fail(INTERNAL_ERROR_MESSAGE);
        }
      } else if (value instanceof CommandError) {
        s.fail(value.message);
      } else if (call.signal.aborted) {
        // The client went away and the handler gave up: nothing to log.
        s.fail('command aborted');
      } else {
        this.logFailure(call.cmd, value);
        s.fail(INTERNAL_ERROR_MESSAGE);
      }
    } else if (!ok && !call.signal.aborted && !(value instanceof ConnectionClosedError)) {
      this.logFailure(call.cmd, value);
    }
    s.finish();
  }

  private logFailure(cmd: string, err: unknown): void {
    this.server.logger.error(`command '${cmd}' failed on connection ${this.id}`, err);
  }

  /** @internal Writes queued replies. */
  flush(): void {
    if (!this.session.hasDataToSend) return;
    const bytes = this.session.dataToSend();
    const s = this.stream;
    if (this.finished || s.destroyed || s.writableEnded) return;
    if (!s.write(bytes)) this.writeBlocked = true;
  }

  /** @internal Flushes at the end of the current tick (progress from async handlers). */
  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** @internal Resolves when the transport can take more. */
  waitDrain(): Promise<void> {
    if (this.finished) return Promise.reject(new ConnectionClosedError('client is gone'));
    if (!this.writeBlocked) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push((err) => (err ? reject(err) : resolve())));
  }

  private wakeDrainWaiters(err?: Error): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f(err);
  }

  private flowControl(): void {
    if (this.finished) return;
    const busy = this.running !== undefined || this.writeBlocked;
    const want = !busy || this.session.bufferedBytes < this.highWaterMark;
    if (want && this.paused) {
      this.paused = false;
      this.stream.resume();
    } else if (!want && !this.paused) {
      this.paused = true;
      this.stream.pause();
    }
  }

  private endStream(): void {
    if (this.ended) return;
    this.ended = true;
    this.flush();
    this.stream.end();
  }

  private detach(): void {
    const s = this.stream;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEndEvent);
    s.removeListener('error', this.onErrorEvent);
    s.removeListener('close', this.onCloseEvent);
    s.removeListener('drain', this.onDrain);
    s.pause();
  }

  private teardown(reason: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.session.close();
    this.running?.abort(reason);
    this.wakeDrainWaiters(reason);
    this.detach();
    // Keep a listener so a late error on a dead stream cannot crash the process.
    this.stream.on('error', noop);
    this.onGone();
    this.resolveClosed('closed');
  }

  /** @internal Hands the stream to a handler. */
  hijack(call: CommandCall<D>): Duplex {
    if (this.finished) throw new ConnectionClosedError('cannot hijack: the client is gone');
    const out = this.session.dataToSend();
    const leftover = this.session.hijack();
    call.hijacked = true;
    this.finished = true;
    this.detach();
    if (out.length > 0) this.stream.write(out);
    this.wakeDrainWaiters(new ControlStateError('connection was hijacked'));
    this.onGone();
    this.resolveClosed('hijacked');
    this.server.logger.debug?.(`connection ${this.id}: hijacked by '${call.cmd}'`);
    const raw = channel(this.stream, lines(), leftover.length > 0 ? { leftover: concatBytes(leftover) } : {});
    return raw.hijack();
  }
}

/** The `CommandContext` of one running command. */
class CommandCall<D> implements CommandContext<D> {
  private readonly controller = new AbortController();
  hijacked = false;
  done = false;

  constructor(
    readonly connection: ControlConnection<D>,
    readonly cmd: string,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get replied(): boolean {
    return this.connection.session.state === 'replied';
  }

  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private get live(): boolean {
    const st = this.connection.session.state;
    return !this.done && !this.hijacked && st !== 'closed' && st !== 'switched';
  }

  progress(message: unknown): void {
    if (!this.live) return;
    this.connection.session.progress(message);
    this.connection.scheduleFlush();
  }

  async reply(value: unknown = null): Promise<void> {
    if (!this.live) throw new ConnectionClosedError('cannot reply: the client is gone');
    this.connection.session.respond(value);
    this.connection.flush();
    await this.connection.waitDrain();
  }

  async send(event: unknown): Promise<void> {
    if (!this.live) throw new ConnectionClosedError('cannot send: the client is gone');
    this.connection.session.event(event);
    this.connection.flush();
    await this.connection.waitDrain();
  }

  hijack(): Duplex {
    if (this.done) throw new ControlStateError(`cannot hijack: command '${this.cmd}' already finished`);
    return this.connection.hijack(this);
  }
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function noop(): void {}

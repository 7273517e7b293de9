/**
 * Node driver of the control protocol server: a command registry and one `ControlConnection`
 * per duplex stream (a Unix or TCP socket accepted by `listen`, or any stream you accepted and
 * authenticated yourself, e.g. a TLS socket, passed to `serve`).
 */
import type { Duplex } from 'node:stream';
import type { SocketAddress } from '../../channels/connect.js';
import { handOff } from '../../channels/hand-off.js';
import { ConnectionClosedError } from '../../errors.js';
import { CommandError, ControlAuthError, ControlStateError, UnknownCommandError } from './errors.js';
import { listenSocket, type ListenAddress, type SocketListener, type UnixSocketOptions } from './node-listen.js';
import { INTERNAL_ERROR_MESSAGE, defaultErrorReply, type ErrorReply, type ExtraFields } from './messages.js';
import { ServerSession, type RejectReason } from './server-session.js';

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

/**
 * An authentication step: until `verify` accepted the options of `command`, every other request
 * is refused with a `ControlAuthError` reply (`"code":"WK_AUTH"` with the default `errorReply`).
 */
export interface AuthenticateOptions<D = unknown> {
  /** The command that authenticates, e.g. `'auth'` for `{"cmd":"auth","opts":{"token":...}}`. */
  command: string;
  /**
   * Checks the options of `command`: `true` authenticates the connection. Throwing refuses it with
   * the thrown error's reply (through `errorReply`). Compare secrets in constant time.
   */
  verify(opts: unknown, connection: ControlConnection<D>): boolean | Promise<boolean>;
  /** Response value of a successful authentication (default `true`). */
  response?: unknown;
  /** Message of the reply refusing wrong credentials (default `authentication failed`). */
  failedMessage?: string;
  /** Message of the reply refusing another command first (default `authentication required: send '<command>' first`). */
  requiredMessage?: string;
  /**
   * End the connection after the first refused request before authentication (wrong credentials,
   * another command, a bad line): the reply is written, then the connection is ended (and
   * destroyed `closeLinger` ms later at most). Default false: the client may try again.
   */
  closeOnFailure?: boolean;
}

export interface ControlServerOptions<D = unknown> {
  /** Version sent in the greeting `{"version": ...}`; none is sent when omitted. */
  version?: string;
  /** More members of the greeting after `version` (e.g. `{ auth: 'token' }`); see `ServeOptions.greeting`. */
  greeting?: ExtraFields;
  /** Longest request line in bytes (default 1 MiB): longer ones get an error reply and are skipped. */
  maxLineLength?: number;
  /** Where handler exceptions are logged with their stack (default: console.error). */
  logger?: ControlLogger;
  /**
   * What end of input from a client means. `'abort'` (default): the client went away, so the
   * running command's signal fires and commands not yet started are dropped (a last request
   * without its newline among them). `'serve'`: the client only closed its side (a half-close,
   * as `nc -N` or `socket.end()` do): every request received is still served in order, a last
   * one without its trailing newline included (as osctld does), then the connection is ended
   * (needs a stream that allows half-open connections, as the listeners here create).
   */
  onEnd?: 'abort' | 'serve';
  /** Stop reading from a client when this many bytes are buffered while a command runs (default 1 MiB). */
  highWaterMark?: number;
  /**
   * Close a connection (destroy it) that sent no request for this many ms while no command was
   * running. The clock starts when the connection is served and again when a command finished; a
   * partial line does not restart it. Default 0: no idle timeout.
   */
  idleTimeout?: number;
  /** Authentication before any other command, for every connection (`ServeOptions.authenticate` overrides it). */
  authenticate?: AuthenticateOptions<D>;
  /**
   * Turns what a handler threw into the error reply (`message`, optional `code` and `extra`
   * members, `close` to end the connection after it). Also used for unknown commands
   * (`UnknownCommandError`) and refused authentication (`ControlAuthError`). Return `undefined`
   * for `internal error` (the failure is then logged). Default `defaultErrorReply`.
   */
  errorReply?: (err: unknown, cmd: string) => ErrorReply | undefined;
  /** More members of the error replies sent for bad lines (not JSON, too long, not a request), e.g. a `code`. */
  rejectFields?: (reason: RejectReason, message: string) => ExtraFields | undefined;
  /**
   * Checks every request's options before authentication and dispatch (`opts` missing or `null`
   * is given as `{}`); throw to fail the request with the thrown error's reply.
   */
  checkOptions?: (opts: unknown, cmd: string) => void;
  /** How long a connection ended by the server (`close` replies, refused authentication) may take to close before it is destroyed (default 1000 ms). */
  closeLinger?: number;
  /**
   * Network connections open at once (those with an address, `ServeOptions.address`: TCP and TLS
   * peers; counted from `serve` until the stream closes, hijacked ones included); one more is
   * refused with `{"status":false,"message":"too many connections ...","code":"WK_LIMIT"}` after
   * the greeting, then closed. Connections without an address (Unix sockets) are not counted.
   * Default: no limit.
   */
  maxConnections?: number;
  /** Connections open at once from one address; more are refused likewise. Default: no limit. */
  maxConnectionsPerAddress?: number;
  /**
   * Before authentication (connections with an `authenticate` step): the longest request line and
   * the most bytes buffered, so an unauthenticated peer holds a few KB rather than `maxLineLength`.
   * The full limits apply once authenticated. Default `maxLineLength`.
   */
  preAuthMaxLineLength?: number;
  /**
   * A connection with an `authenticate` step that is not authenticated this many ms after it was
   * served is refused (`"code":"WK_TIMEOUT"`) and closed. Default 0: no limit.
   */
  authTimeout?: number;
}

/** Options of one connection. */
export interface ServeOptions<D> {
  /** Bytes already read from the stream (e.g. after your own authentication step), served first. */
  leftover?: Uint8Array;
  /** Per-connection data for handlers (`ctx.connection.data`), e.g. the authenticated user. */
  data?: D;
  /** This connection's authentication step, instead of the server's; `false`: none. */
  authenticate?: AuthenticateOptions<D> | false;
  /** This connection's extra greeting members, instead of the server's. */
  greeting?: ExtraFields;
  /**
   * The peer's address, for `maxConnections` and `maxConnectionsPerAddress`. Default: the stream's
   * `remoteAddress` (a TCP socket's), if any; `null`: none (the connection is not counted, e.g. one
   * relayed by a trusted proxy).
   */
  address?: string | null;
}

/** Options of `ControlServer.listen`: the Unix socket's, and those of every connection accepted. */
export interface ListenOptions<D> extends UnixSocketOptions, Omit<ServeOptions<D>, 'leftover' | 'address'> {}

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
  private open = 0;
  private readonly openByAddress = new Map<string, number>();
  readonly options: Readonly<ControlServerOptions<D>>;
  readonly logger: ControlLogger;

  constructor(options: ControlServerOptions<D> = {}) {
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
    const address = options.address === undefined ? (stream as { remoteAddress?: string }).remoteAddress : options.address;
    const refusal = address ? this.admit(stream, address) : undefined;
    conn.start(refusal);
    return conn;
  }

  /** Counts the connection until its stream closes; the refusal message when it is one too many. */
  private admit(stream: Duplex, address: string): string | undefined {
    const o = this.options;
    let refusal: string | undefined;
    if (o.maxConnections !== undefined && this.open >= o.maxConnections) refusal = `too many connections (limit ${o.maxConnections})`;
    else if (o.maxConnectionsPerAddress !== undefined && (this.openByAddress.get(address) ?? 0) >= o.maxConnectionsPerAddress) {
      refusal = `too many connections from ${address} (limit ${o.maxConnectionsPerAddress})`;
    }
    this.open++;
    this.openByAddress.set(address, (this.openByAddress.get(address) ?? 0) + 1);
    let counted = true;
    const release = () => {
      if (!counted) return;
      counted = false;
      this.open--;
      const n = (this.openByAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.openByAddress.delete(address);
      else this.openByAddress.set(address, n);
    };
    if (stream.destroyed) release();
    else stream.once('close', release);
    return refusal;
  }

  /** Network connections open now (with an address; served and not yet closed, hijacked ones included). */
  get openConnections(): number {
    return this.open;
  }

  /**
   * Listens on a Unix socket (`{ path }`, mode 0600 from the first instant, a stale socket file
   * replaced, a live server's refused with `AddressInUseError`) or TCP (`{ host, port }`; a
   * missing host, still accepted, means 127.0.0.1), serving every accepted connection with
   * `options` (per-connection `authenticate`, `greeting`, `data`).
   */
  async listen(address: SocketAddress | ListenAddress, options: ListenOptions<D> = {}): Promise<SocketListener> {
    const { mode, probeTimeout, backlog, ...serve } = options;
    const listener = await listenSocket(address, (socket) => this.serve(socket, serve), { mode, probeTimeout, backlog });
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
  private highWaterMark: number;
  private leftover: Uint8Array | undefined;
  private authTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly auth: AuthenticateOptions<D> | undefined;
  private isAuthenticated: boolean;
  private readonly idleTimeout: number;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** The reply just queued asks to end the connection once it is written. */
  private closeAfterReply = false;

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
  private readonly onIdle = () => {
    this.idleTimer = undefined;
    if (this.finished || this.running || this.session.state !== 'idle') return;
    this.server.logger.debug?.(`connection ${this.id}: no request for ${this.idleTimeout} ms, closed`);
    this.close();
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
    const auth = options.authenticate === false ? undefined : (options.authenticate ?? o.authenticate);
    const preAuthLine = auth === undefined ? undefined : o.preAuthMaxLineLength;
    this.session = new ServerSession({
      version: o.version,
      maxLineLength: preAuthLine ?? o.maxLineLength,
      greeting: options.greeting ?? o.greeting,
      rejectFields: o.rejectFields,
    });
    this.data = options.data as D;
    this.endMode = o.onEnd ?? 'abort';
    this.highWaterMark = o.highWaterMark ?? 1024 * 1024;
    if (preAuthLine !== undefined) this.highWaterMark = Math.min(this.highWaterMark, preAuthLine);
    this.idleTimeout = o.idleTimeout ?? 0;
    this.leftover = options.leftover;
    this.auth = auth;
    this.isAuthenticated = this.auth === undefined;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** @internal `refusal`: the connection is one too many; it gets this error reply, then the end. */
  start(refusal?: string): void {
    const s = this.stream;
    if (refusal !== undefined) {
      s.on('error', this.onErrorEvent);
      s.on('close', this.onCloseEvent);
      this.refuse(refusal, 'WK_LIMIT');
      return;
    }
    const authTimeout = this.server.options.authTimeout ?? 0;
    if (!this.isAuthenticated && authTimeout > 0) {
      this.authTimer = setTimeout(() => this.refuse(`not authenticated within ${authTimeout} ms`, 'WK_TIMEOUT'), authTimeout);
      this.authTimer.unref?.();
    }
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

  /** True once the connection passed its authentication step (always true without one). */
  get authenticated(): boolean {
    return this.isAuthenticated;
  }

  /**
   * Refuses the connection: an error reply with `code` (not tied to a request), then the end; the
   * stream is destroyed if it is not closed within `closeLinger` ms. A running command's signal fires.
   */
  refuse(message: string, code: string): void {
    if (this.finished || this.ended) return;
    this.server.logger.debug?.(`connection ${this.id}: refused: ${message}`);
    this.stopAuthTimer();
    this.stopIdle();
    this.running?.abort(new ConnectionClosedError(message));
    this.session.refuse(message, { code });
    this.endGracefully();
  }

  private stopAuthTimer(): void {
    if (this.authTimer === undefined) return;
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  /** Authentication passed: the full line limit and buffer apply from the next request on. */
  private onAuthenticated(): void {
    this.isAuthenticated = true;
    this.stopAuthTimer();
    const o = this.server.options;
    this.session.setMaxLineLength(o.maxLineLength ?? this.session.maxLineLength);
    this.highWaterMark = o.highWaterMark ?? 1024 * 1024;
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
        if (this.closeAfterReply) {
          this.endGracefully();
          break;
        }
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
        } else if (ev.type === 'rejected') {
          this.server.logger.debug?.(`connection ${this.id}: ${ev.message}`);
          if (!this.isAuthenticated && this.auth?.closeOnFailure) this.closeAfterReply = true;
        } else {
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
    this.watchIdle();
  }

  /** Arms the idle timer while nothing runs and nothing waits to be written; it is disarmed when a command starts. */
  private watchIdle(): void {
    if (this.idleTimeout <= 0 || this.idleTimer !== undefined) return;
    if (this.finished || this.ended || this.running || this.writeBlocked || this.session.state !== 'idle') return;
    this.idleTimer = setTimeout(this.onIdle, this.idleTimeout);
    this.idleTimer.unref?.();
  }

  private stopIdle(): void {
    if (this.idleTimer === undefined) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private run(cmd: string, rawOpts: unknown): void {
    this.stopIdle();
    const opts = rawOpts === undefined || rawOpts === null ? EMPTY_OPTS : rawOpts;
    const call = new CommandCall<D>(this, cmd);
    let handler: CommandHandler<D> | undefined;
    try {
      this.server.options.checkOptions?.(opts, cmd);
      handler = this.isAuthenticated ? this.server.lookup(cmd) : this.authStep(cmd);
      if (handler === undefined) throw new UnknownCommandError(cmd);
    } catch (err) {
      this.settle(call, false, err);
      return;
    }
    let result: unknown;
    try {
      result = handler(opts, call);
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

  /** The handler of a request before authentication: the authentication command, or a refusal. */
  private authStep(cmd: string): CommandHandler<D> {
    const auth = this.auth!;
    if (cmd !== auth.command) {
      throw new ControlAuthError(auth.requiredMessage ?? `authentication required: send '${auth.command}' first`);
    }
    const accept = (ok: boolean) => {
      if (!ok) throw new ControlAuthError(auth.failedMessage ?? 'authentication failed');
      this.onAuthenticated();
      return auth.response === undefined ? true : auth.response;
    };
    return (opts) => {
      const verdict = auth.verify(opts, this);
      return isPromiseLike(verdict) ? Promise.resolve(verdict).then((ok) => accept(ok === true)) : accept(verdict === true);
    };
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
      } else if (call.signal.aborted && !(value instanceof CommandError)) {
        // The client went away and the handler gave up: nothing to log.
        s.fail('command aborted');
      } else {
        this.failWith(call.cmd, value);
      }
    } else if (!ok && !call.signal.aborted && !(value instanceof ConnectionClosedError)) {
      this.logFailure(call.cmd, value);
    }
    s.finish();
  }

  /** Queues the error reply of a failed command. */
  private failWith(cmd: string, err: unknown): void {
    let reply: ErrorReply | undefined;
    try {
      reply = (this.server.options.errorReply ?? defaultErrorReply)(err, cmd);
    } catch (hookErr) {
      this.logFailure(cmd, hookErr);
    }
    if (reply === undefined) {
      this.logFailure(cmd, err);
      this.session.fail(INTERNAL_ERROR_MESSAGE);
    } else {
      const extra = reply.code === undefined ? reply.extra : { code: reply.code, ...reply.extra };
      try {
        this.session.fail(reply.message, extra);
      } catch (encodeErr) {
        // An `extra` member JSON cannot carry.
        this.logFailure(cmd, encodeErr);
        this.session.fail(INTERNAL_ERROR_MESSAGE);
      }
    }
    if (reply?.close || (!this.isAuthenticated && this.auth?.closeOnFailure)) this.closeAfterReply = true;
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
    if (this.finished || this.ended) return;
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
    this.stopIdle();
    this.flush();
    this.stream.end();
  }

  /**
   * Ends the connection after the reply just written: no more requests are read (what still
   * arrives is dropped, so the client's end can arrive), and the stream is destroyed if it is
   * not closed within `closeLinger` ms.
   */
  private endGracefully(): void {
    if (this.ended) return;
    this.flush();
    this.endStream();
    this.session.close();
    const s = this.stream;
    const linger = setTimeout(() => s.destroy(), this.server.options.closeLinger ?? 1000);
    linger.unref?.();
    s.once('close', () => clearTimeout(linger));
    this.paused = false;
    s.resume();
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
    this.stopIdle();
    this.stopAuthTimer();
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
    this.stopIdle();
    this.stopAuthTimer();
    this.detach();
    if (out.length > 0) this.stream.write(out);
    this.wakeDrainWaiters(new ControlStateError('connection was hijacked'));
    this.onGone();
    this.resolveClosed('hijacked');
    this.server.logger.debug?.(`connection ${this.id}: hijacked by '${call.cmd}'`);
    return handOff(this.stream, leftover);
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

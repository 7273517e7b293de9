/**
 * The agent daemon: accepts connections on a Unix socket (mode 0600) and optionally on TCP or TLS
 * with a token, and serves osctld's control protocol through `protocols/control`'s
 * `ControlServer`: an authentication step for TCP, the daemon's commands, and one registration per
 * session kind (`sessions/*.ts`), whose daemon half runs on the raw stream after the reply.
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { Duplex, Readable, Writable } from 'node:stream';
import tls from 'node:tls';
import { clearStaleUnixSocket, listenUnixSocket, NotASocketError, SocketInUseError, type UnixListener } from '../channels/unix-listener.js';
import { WirekitError } from '../errors.js';
import { ControlAuthError, UnknownCommandError } from '../protocols/control/errors.js';
import type { ErrorReply } from '../protocols/control/messages.js';
import { ControlServer, type AuthenticateOptions, type CommandContext, type ControlConnection } from '../protocols/control/node-server.js';
import type { RejectReason } from '../protocols/control/server-session.js';
import { tokensEqual } from './auth.js';
import { AddressInUseError, LimitError, SessionProtocolError } from './errors.js';
import type { CollectGarbage } from './file-pump.js';
import type { KeepaliveOptions } from './keepalive.js';
import { bindEmitter, withScope, type Scope } from './last-resort.js';
import { createLogger, type Logger } from './log.js';
import type { AnySessionKind, SessionContext } from './sessions/context.js';
import { execKind } from './sessions/exec.js';
import { downloadKind, uploadKind } from './sessions/files.js';
import { forwardKind } from './sessions/forward.js';
import { frameStream } from './sessions/frames.js';
import { failure } from './sessions/replies.js';
import { terminalKind } from './sessions/terminal.js';
import { TempJournal } from './temp-journal.js';
import { LoginThrottle, type LoginThrottleOptions } from '../hub/login-throttle.js';

/** Protocol version sent in the greeting (`{"version": ..., "auth": "none" | "token"}`). */
export const AGENT_PROTOCOL_VERSION = 'wirekit-agent/1';

/** A request as the daemon runs it (`opts` missing or `null` becomes `{}`). */
export interface AgentRequest {
  cmd: string;
  opts: Record<string, unknown>;
}

/** Package version reported by `info`. */
export const AGENT_VERSION = '0.1.0';

export interface AgentDaemonOptions {
  /** Confine file paths (upload, download) to this directory. */
  root?: string;
  /** Concurrent sessions at most (exec, terminal, file, forward). Default 256. */
  maxSessions?: number;
  /** Maximum control message (line) size in bytes. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Maximum session frame payload in bytes. Default 1 MiB. */
  maxFrameBytes?: number;
  /** Keepalive of frame sessions. Default: ping every 15 s, dead after 45 s of silence. */
  keepalive?: KeepaliveOptions;
  /** A control connection with no request for this long is closed. Default 300 000 ms. */
  idleTimeoutMs?: number;
  /** Timeout for connecting to a forward target. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Flush uploaded files to stable storage before renaming them into place. Default false. */
  fsync?: boolean;
  /**
   * A file transfer that moves no byte for this long is ended: a stalled upload (its temporary
   * file removed) or a download nobody reads; either frees its session slot. Default 60 000 ms.
   */
  transferTimeoutMs?: number;
  /**
   * A private directory where uploads record their temporary files; `sweepTempFiles()` removes
   * those a killed daemon left behind. Default: none (no record, nothing swept).
   */
  tempJournalDir?: string;
  /**
   * Failed token attempts per address: each failure is answered only after `delayMs` (default
   * 1000), and `maxFailures` (default 10) within `windowMs` (default 10 minutes) lock the address
   * out for `lockMs` (default 10 minutes): its attempts fail, even with the right token.
   */
  authThrottle?: LoginThrottleOptions & { delayMs?: number };
  /**
   * TCP/TLS connections open at once (authenticated or not); one more gets a `WK_LIMIT` error reply
   * and is closed. Unix-socket and hub-relayed connections are not counted. Default 1024.
   */
  maxConnections?: number;
  /** TCP/TLS connections open at once from one remote address. Default 64. */
  maxConnectionsPerAddress?: number;
  /** A TCP/TLS connection that has not sent the right token this long after connecting is closed (`WK_TIMEOUT`). Default 10 000 ms. */
  authTimeoutMs?: number;
  /** Longest control message (line) and bytes buffered before authentication. Default 4096. */
  preAuthMaxMessageBytes?: number;
  /** Session kinds to refuse (`WK_PERMISSION`), e.g. `['exec', 'terminal', 'forward']`. */
  disabledSessions?: readonly string[];
  /**
   * Run during uploads every 8 MiB received, to release spent socket buffers and keep the peak
   * memory down (see `ReceiveFileOptions.collectGarbage`; `wirekit serve` passes `v8Collector()`).
   */
  collectGarbage?: CollectGarbage;
  logger?: Logger;
}

/** What the daemon knows of a connection (the `ControlServer`'s per-connection data). */
interface ConnInfo {
  peer: string;
  /** The address failed attempts are counted for (TCP: the remote host). */
  host: string;
  /** It must send the token first (TCP and TLS). */
  mustAuthenticate: boolean;
  /** Its refusal was logged. */
  refused?: boolean;
  /** `SessionContext.scope` of its sessions. */
  scope?: string;
}

/** A plain command: the reply value from the request's options. */
export type PlainHandler = (opts: Record<string, unknown>) => unknown;

/** Where the daemon listens, for `close()` and reporting. */
export interface Listener {
  address: string;
  server: net.Server;
}

export class AgentDaemon {
  readonly listeners: Listener[] = [];
  private readonly sockets = new Set<Duplex>();
  private readonly log: Logger;
  private readonly opts: Required<
    Omit<AgentDaemonOptions, 'root' | 'logger' | 'keepalive' | 'collectGarbage' | 'tempJournalDir' | 'authThrottle' | 'maxConnections' | 'maxConnectionsPerAddress' | 'authTimeoutMs' | 'preAuthMaxMessageBytes'>
  > & {
    root?: string;
    tempJournalDir?: string;
    keepalive: KeepaliveOptions;
    collectGarbage?: CollectGarbage;
  };
  private activeSessions = 0;
  /** The control protocol server every connection is served by. */
  private readonly control: ControlServer<ConnInfo>;
  /** Commands registered as session kinds (a failure ends their connection). */
  private readonly sessionCommands = new Set<string>();
  /** Connections being served, by the control server's id. */
  private readonly connections = new Map<number, ControlConnection<ConnInfo>>();
  private readonly ctx: SessionContext;
  private readonly started = Date.now();
  private unixListeners: UnixListener[] = [];
  private readonly tempJournal: TempJournal | undefined;
  private readonly authThrottle: LoginThrottle;
  /** Sessions that have not finished (`close()` lets them clean up). */
  private readonly running = new Set<Promise<void>>();
  private readonly authDelayMs: number;

  constructor(options: AgentDaemonOptions = {}) {
    this.log = options.logger ?? createLogger('warn');
    this.opts = {
      root: options.root,
      maxSessions: options.maxSessions ?? 256,
      maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
      maxFrameBytes: options.maxFrameBytes ?? 1024 * 1024,
      keepalive: options.keepalive ?? {},
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      fsync: options.fsync ?? false,
      transferTimeoutMs: options.transferTimeoutMs ?? 60_000,
      tempJournalDir: options.tempJournalDir,
      disabledSessions: options.disabledSessions ?? [],
      collectGarbage: options.collectGarbage,
    };
    if (this.opts.root !== undefined && !existsSync('/proc/self/fd')) {
      throw new WirekitError('WK_USAGE', 'a root directory needs /proc/self/fd (Linux) to open paths without races', { origin: 'local' });
    }
    this.authThrottle = new LoginThrottle({ maxFailures: 10, windowMs: 10 * 60_000, lockMs: 10 * 60_000, ...options.authThrottle });
    this.authDelayMs = options.authThrottle?.delayMs ?? 1000;
    this.tempJournal = this.opts.tempJournalDir === undefined ? undefined : new TempJournal(this.opts.tempJournalDir);
    this.ctx = this.sessionContext();
    const log = this.log;
    this.control = new ControlServer<ConnInfo>({
      version: AGENT_PROTOCOL_VERSION,
      maxLineLength: this.opts.maxMessageBytes,
      // The client may half-close after its requests: every complete one is answered, then the end.
      onEnd: 'serve',
      highWaterMark: CONTROL_HIGH_WATER_MARK,
      idleTimeout: this.opts.idleTimeoutMs,
      // Before authentication a TCP peer holds a few KB for a few seconds, and only so many may.
      preAuthMaxLineLength: Math.min(options.preAuthMaxMessageBytes ?? 4096, this.opts.maxMessageBytes),
      authTimeout: options.authTimeoutMs ?? 10_000,
      maxConnections: options.maxConnections ?? 1024,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress ?? 64,
      rejectFields: (reason) => ({ code: REJECT_CODES[reason] }),
      checkOptions: (opts) => {
        if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw badRequest('invalid request, "opts" must be an object');
      },
      errorReply: (err, cmd) => this.errorReply(err, cmd),
      closeLinger: 1000,
      logger: { error: (message, err) => log.warn(`${message}: ${err instanceof Error ? err.message : String(err)}`), debug: (message) => this.controlDebug(message) },
    });
    this.registerCommands();
  }

  /**
   * Removes the temporary files of uploads that a daemon which was killed left behind (recorded
   * in `tempJournalDir`); call before listening. Resolves with the paths removed.
   */
  sweepTempFiles(): Promise<string[]> {
    return this.tempJournal?.sweep() ?? Promise.resolve([]);
  }

  /** Sessions running now. */
  get sessions(): number {
    return this.activeSessions;
  }

  /**
   * Listens on a Unix socket created with mode 0600 from the first instant (`listenUnixSocket`:
   * bound inside a fresh 0700 directory, then linked into place atomically), so the process umask
   * is never touched. A stale socket file (nobody accepting) is replaced; a live daemon's is not
   * (`AddressInUseError`); a path that is not a socket is refused and left alone.
   */
  async listenUnix(socketPath: string): Promise<Listener> {
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s, 'unix', undefined));
    let unix: UnixListener;
    try {
      unix = await listenUnixSocket(socketPath, { server, mode: 0o600, probeTimeout: 2000 });
    } catch (err) {
      throw socketPathError(socketPath, err);
    }
    this.unixListeners.push(unix);
    const l = { address: `unix:${socketPath}`, server };
    this.listeners.push(l);
    return l;
  }

  /**
   * Listens on TCP (TLS when `tls` holds a certificate and key). Every connection must send the
   * token before any other command.
   */
  async listenTcp(host: string, port: number, options: { token: string; tls?: { cert: string | Buffer; key: string | Buffer } }): Promise<Listener> {
    if (!options.token) throw new WirekitError('WK_USAGE', 'a TCP listener needs a token', { origin: 'local' });
    const token = options.token;
    const onConn = (s: net.Socket) => {
      s.setNoDelay(true);
      this.accept(s, `${s.remoteAddress}:${s.remotePort}`, token, undefined, s.remoteAddress, s.remoteAddress ?? null);
    };
    const server = options.tls
      ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, allowHalfOpen: true }, onConn)
      : net.createServer({ allowHalfOpen: true }, onConn);
    if (options.tls) server.on('tlsClientError', (err) => this.log.info(`TLS handshake failed: ${err.message}`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address() as net.AddressInfo;
    const h = a.address.includes(':') ? `[${a.address}]` : a.address;
    const l = { address: `${options.tls ? 'tls' : 'tcp'}://${h}:${a.port}`, server };
    this.listeners.push(l);
    return l;
  }

  /**
   * Stops listening, ends every connection and removes the socket files; resolves once every
   * session has ended (their programs' whole process trees killed, temporary files removed).
   */
  async close(): Promise<void> {
    // Our socket files go first (only while they are still ours), then the servers stop.
    const unix = this.unixListeners;
    this.unixListeners = [];
    await Promise.all(unix.map((u) => u.close()));
    const closing = this.listeners.map((l) => new Promise<void>((r) => l.server.close(() => r())));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    // Sessions clean up after their connection ends (an upload removes its temporary file, exec and
    // terminal sessions end their process trees, a terminal after 2 s of SIGHUP): let them, for a
    // bounded time (their supervisors end the trees should the process exit first).
    if (this.running.size > 0) await Promise.race([Promise.allSettled(this.running), new Promise((r) => setTimeout(r, 3000).unref())]);
  }

  /**
   * Registers a plain command: `handler` returns (or resolves to) the reply value, or throws to
   * fail the command with an error reply carrying the error's `WK_*` code.
   */
  command(cmd: string, handler: PlainHandler): this {
    this.control.command<Record<string, unknown>>(cmd, (opts, ctx) => {
      this.log.debug(`connection ${ctx.connection.data.peer}: ${cmd}`);
      return handler(opts);
    });
    return this;
  }

  /**
   * Registers a session kind under its command: parse and confine the options, take a session
   * slot (`WK_LIMIT` when none is left), prepare, reply, hand the connection over as a raw
   * stream, run. A failure before the reply fails the command and ends the connection.
   */
  session(kind: AnySessionKind): this {
    this.sessionCommands.add(kind.cmd);
    this.control.command<Record<string, unknown>>(kind.cmd, (opts, ctx) => {
      this.log.debug(`connection ${ctx.connection.data.peer}: ${kind.cmd}`);
      return this.startSession(kind, opts, ctx);
    });
    return this;
  }

  /**
   * Serves a connection that arrived some other way (dialed out to a hub, relayed by one) exactly
   * as one accepted by a listener: greeting, commands, sessions, the same limits. `leftover`:
   * bytes already read from it; `token`: it must send this token first (default: none needed).
   * `close()` ends it too.
   */
  serveConnection(stream: Duplex, options: { peer: string; leftover?: Uint8Array; token?: string; scope?: string }): void {
    this.accept(stream, options.peer, options.token, options.leftover, options.peer, null, options.scope);
  }

  /** Serves one accepted connection; `token` set: it must authenticate first. */
  private accept(socket: Duplex, peer: string, token: string | undefined, leftover?: Uint8Array, host = peer, address: string | null = null, scope?: string): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.debug(`connection ${peer}: ${err.message}`));
    const conn = this.control.serve(socket, {
      leftover,
      // Only TCP/TLS peers count against the connection limits (see AgentDaemonOptions.maxConnections).
      address,
      data: { peer, host, mustAuthenticate: token !== undefined, scope },
      greeting: { auth: token === undefined ? 'none' : 'token' },
      authenticate: token === undefined ? false : this.authentication(token),
    });
    this.connections.set(conn.id, conn);
    void conn.closed.then(() => this.connections.delete(conn.id));
  }

  /** Logs that a connection was refused before authentication (once per connection). */
  private refused(conn: ControlConnection<ConnInfo> | undefined, why: string): void {
    if (conn === undefined || !conn.data.mustAuthenticate || conn.authenticated || conn.data.refused) return;
    conn.data.refused = true;
    this.log.warn(`connection ${conn.data.peer} refused: ${why}`);
  }

  /** The control server's debug lines; a bad line before authentication is a refusal. */
  private controlDebug(message: string): void {
    this.log.debug(message);
    const m = /^connection (\d+): (.*)$/.exec(message);
    if (m) this.refused(this.connections.get(Number(m[1])), m[2]!);
  }

  /** The token step of TCP connections: `{"cmd":"auth","opts":{"token":...}}` before anything else. */
  private authentication(token: string): AuthenticateOptions<ConnInfo> {
    return {
      command: 'auth',
      verify: async (opts, conn) => {
        const host = conn.data.host;
        const locked = this.authThrottle.lockedUntil(host, Date.now());
        const given = (opts as { token?: unknown }).token;
        const ok = locked === 0 && typeof given === 'string' && tokensEqual(given, token);
        if (ok) {
          this.authThrottle.succeed(host);
          return true;
        }
        if (locked === 0) this.authThrottle.fail(host, Date.now());
        this.refused(conn, locked === 0 ? 'wrong token' : 'too many failed attempts from this address');
        // A wrong guess is answered late, so guesses cannot be made faster than one per delay
        // per connection; enough of them lock the address out.
        await new Promise((r) => setTimeout(r, this.authDelayMs).unref());
        return false;
      },
      response: { authenticated: true },
      failedMessage: 'invalid token',
      requiredMessage: 'authentication required: send {"cmd":"auth","opts":{"token":...}} first',
      closeOnFailure: true,
    };
  }

  /**
   * The error reply of a failed command: its message and `WK_*` code (`WK_INTERNAL` for what is
   * not a `WirekitError`). A failed session command ends the connection: the client may have
   * sent session bytes right behind the request, which must not be read as requests.
   */
  private errorReply(err: unknown, cmd: string): ErrorReply {
    if (err instanceof UnknownCommandError) return { message: err.message, code: 'WK_PROTOCOL' };
    // Before authentication every failure refuses the connection (the server then ends it); the
    // connection is the one running `cmd` unauthenticated.
    const refusing = [...this.connections.values()].find((c) => c.data.mustAuthenticate && !c.authenticated && c.currentCommand === cmd);
    if (refusing) this.refused(refusing, err instanceof ControlAuthError ? `command ${cmd} before auth` : 'bad request before authentication');
    else this.log.info(`${cmd} failed: ${(err as Error).message}`);
    // A bad request (options not an object) is answered and the connection goes on, as for a bad line.
    return { ...failure(err), close: this.sessionCommands.has(cmd) && !badRequests.has(err as object) };
  }

  private takeSession(): () => void {
    if (this.activeSessions >= this.opts.maxSessions) throw new LimitError(`too many sessions (limit ${this.opts.maxSessions})`, 'remote');
    this.activeSessions++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.activeSessions--;
      }
    };
  }

  /** The daemon's settings as the sessions see them. */
  private sessionContext(): SessionContext {
    const o = this.opts;
    return {
      log: this.log,
      root: o.root,
      connectTimeoutMs: o.connectTimeoutMs,
      fsync: o.fsync,
      collectGarbage: o.collectGarbage,
      transferTimeoutMs: o.transferTimeoutMs,
      tempFiles: this.tempJournal,
      frames: (io: Duplex) => frameStream(io, { maxFrameBytes: o.maxFrameBytes, keepalive: o.keepalive }),
    };
  }

  /**
   * Runs one session command up to the hand-over; the session then runs on its own. All of it runs
   * in a `Scope`, so an error nobody caught is put down to this session (see `last-resort.ts`).
   */
  private startSession(kind: AnySessionKind, opts: Record<string, unknown>, control: CommandContext<ConnInfo>): Promise<void> {
    const scope: Scope = { name: `${kind.cmd} session of ${control.connection.data.peer}` };
    return withScope(scope, () => this.runSession(kind, opts, control, scope));
  }

  private async runSession(kind: AnySessionKind, opts: Record<string, unknown>, control: CommandContext<ConnInfo>, scope: Scope): Promise<void> {
    const who = control.connection.data.scope;
    const ctx = who === undefined ? this.ctx : { ...this.ctx, scope: who };
    if (this.opts.disabledSessions.includes(kind.cmd)) throw new WirekitError('WK_PERMISSION', `${kind.cmd} sessions are disabled on this daemon`, { origin: 'remote' });
    const options: unknown = await kind.parse(opts, ctx);
    const release = this.takeSession();
    let prepared: unknown;
    try {
      prepared = await kind.prepare(options, ctx);
    } catch (err) {
      release();
      throw err;
    }
    const io = takeStream(control, kind.reply(prepared));
    bindEmitter(io, scope);
    scope.end = () => io.destroy();
    const running: Promise<void> = kind
      .run(prepared, io, ctx)
      .catch((err: unknown) => this.log.warn(`${kind.cmd} session: ${(err as Error).message}`))
      .finally(() => {
        release();
        this.running.delete(running);
      });
    this.running.add(running);
  }

  /** The daemon's own commands: auth (a no-op once authenticated), ping, info, and the session kinds. */
  private registerCommands(): void {
    this.command('auth', () => ({ authenticated: true }))
      .command('ping', () => ({ pong: true, time: Date.now() }))
      .command('info', () => ({
        version: AGENT_VERSION,
        protocol: AGENT_PROTOCOL_VERSION,
        pid: process.pid,
        hostname: os.hostname(),
        platform: process.platform,
        uptimeMs: Date.now() - this.started,
        sessions: this.activeSessions,
        maxSessions: this.opts.maxSessions,
        root: this.opts.root ?? null,
        disabled: [...this.opts.disabledSessions],
        listeners: this.listeners.map((l) => l.address),
      }));
    for (const kind of [execKind, terminalKind, forwardKind, uploadKind, downloadKind]) this.session(kind);
  }
}

/**
 * Sends a session command's reply and takes the connection over (`handOff` through the control
 * server's hijack): the stream's first bytes are those the client sent after the request. When
 * the client left while the command was being prepared, the session gets a stream that is
 * already at its end (writes go nowhere), so it ends at once and frees what it holds (a program
 * started for it is killed, a temporary file removed).
 */
function takeStream(control: CommandContext<ConnInfo>, reply: unknown): Duplex {
  try {
    control.reply(reply).catch(() => {});
    return control.hijack();
  } catch {
    return Duplex.from({ readable: Readable.from([], { objectMode: false }), writable: new Writable({ write: (_chunk, _enc, cb) => cb() }) });
  }
}

/** The errors of requests refused before any handler ran (they do not end the connection). */
const badRequests = new WeakSet<object>();

function badRequest(message: string): SessionProtocolError {
  const err = new SessionProtocolError(message, 'remote');
  badRequests.add(err);
  return err;
}

/** Bytes buffered from a client while a command runs before the daemon stops reading. */
const CONTROL_HIGH_WATER_MARK = 1024 * 1024;

/** Codes of the error replies the control session sends on its own for bad lines. */
const REJECT_CODES: Record<RejectReason, string> = {
  syntax: 'WK_MALFORMED', // not JSON
  'too-large': 'WK_FRAME_TOO_LARGE', // over maxMessageBytes
  invalid: 'WK_PROTOCOL', // JSON, but not {"cmd": <string>, ...}
};

/** Removes `socketPath` if it is a socket nobody accepts on; throws if a daemon is live there. */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  try {
    await clearStaleUnixSocket(socketPath, { timeout: 2000 });
  } catch (err) {
    throw socketPathError(socketPath, err);
  }
}

/** The agent's errors for a Unix socket path that cannot be used. */
function socketPathError(socketPath: string, err: unknown): unknown {
  if (err instanceof SocketInUseError) return new AddressInUseError(`unix:${socketPath}`, 'a daemon is already listening there');
  if (err instanceof NotASocketError) return new WirekitError('WK_UNSAFE_PATH', `${socketPath} exists and is not a socket`, { origin: 'local', cause: err });
  return err;
}

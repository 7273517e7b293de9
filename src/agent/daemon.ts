/**
 * The agent daemon: accepts connections on a Unix socket (mode 0600) and optionally on TCP or TLS
 * with a token, speaks the control protocol (seed 003, `protocols/control`'s sans-I/O
 * `ServerSession`), and runs exec, terminal, file and forward sessions.
 */
import net from 'node:net';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { clearStaleUnixSocket, listenUnixSocket, NotASocketError, SocketInUseError, type UnixListener } from '../channels/unix-listener.js';
import { TimeoutError, WirekitError } from '../errors.js';
import { ServerSession, type RejectReason, type ServerEvent } from '../protocols/control/server-session.js';
import { tokensEqual } from './auth.js';
import { ControlPort } from './control-port.js';
import { AddressInUseError, AuthError, LimitError, SessionProtocolError } from './errors.js';
import type { CollectGarbage } from './file-pump.js';
import type { KeepaliveOptions } from './keepalive.js';
import { createLogger, type Logger } from './log.js';
import type { AnySessionKind, SessionContext } from './sessions/context.js';
import { execKind } from './sessions/exec.js';
import { downloadKind, uploadKind } from './sessions/files.js';
import { forwardKind } from './sessions/forward.js';
import { frameStream } from './sessions/frames.js';
import { terminalKind } from './sessions/terminal.js';

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
   * Run during uploads every 8 MiB received, to release spent socket buffers and keep the peak
   * memory down (see `ReceiveFileOptions.collectGarbage`; `wirekit serve` passes `v8Collector()`).
   */
  collectGarbage?: CollectGarbage;
  logger?: Logger;
}

interface ConnContext {
  requireToken: string | undefined;
  peer: string;
}

/** A plain command: the reply value from the request's options. */
export type PlainHandler = (opts: Record<string, unknown>) => unknown;

type CommandEntry = { kind: 'plain'; handler: PlainHandler } | { kind: 'session'; handler: AnySessionKind };

/** Where the daemon listens, for `close()` and reporting. */
export interface Listener {
  address: string;
  server: net.Server;
}

export class AgentDaemon {
  readonly listeners: Listener[] = [];
  private readonly sockets = new Set<Duplex>();
  private readonly log: Logger;
  private readonly opts: Required<Omit<AgentDaemonOptions, 'root' | 'logger' | 'keepalive' | 'collectGarbage'>> & {
    root?: string;
    keepalive: KeepaliveOptions;
    collectGarbage?: CollectGarbage;
  };
  private activeSessions = 0;
  private readonly commands = new Map<string, CommandEntry>();
  private readonly ctx: SessionContext;
  private readonly started = Date.now();
  private unixListeners: UnixListener[] = [];

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
      collectGarbage: options.collectGarbage,
    };
    this.ctx = this.sessionContext();
    this.registerCommands();
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
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s, { requireToken: undefined, peer: 'unix' }));
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
    const ctx: ConnContext = { requireToken: options.token, peer: 'tcp' };
    const onConn = (s: net.Socket) => {
      s.setNoDelay(true);
      this.accept(s, { ...ctx, peer: `${s.remoteAddress}:${s.remotePort}` });
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

  /** Stops listening, ends every connection (killing their programs) and removes the socket files. */
  async close(): Promise<void> {
    // Our socket files go first (only while they are still ours), then the servers stop.
    const unix = this.unixListeners;
    this.unixListeners = [];
    await Promise.all(unix.map((u) => u.close()));
    const closing = this.listeners.map((l) => new Promise<void>((r) => l.server.close(() => r())));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
  }

  private accept(socket: Duplex, ctx: ConnContext): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.debug(`connection ${ctx.peer}: ${err.message}`));
    this.serve(socket, ctx).catch((err) => {
      this.log.warn(`connection ${ctx.peer}: ${(err as Error).message}`);
      socket.destroy();
    });
  }

  private async serve(socket: Duplex, ctx: ConnContext): Promise<void> {
    const session = new ServerSession({
      version: AGENT_PROTOCOL_VERSION,
      greeting: { auth: ctx.requireToken ? 'token' : 'none' },
      maxLineLength: this.opts.maxMessageBytes,
      rejectFields: (reason) => ({ code: REJECT_CODES[reason] }),
    });
    const port = new ControlPort(socket, session, CONTROL_HIGH_WATER_MARK);
    let authed = ctx.requireToken === undefined;
    for (;;) {
      let ev: ServerEvent | null;
      try {
        ev = await port.next({ timeout: this.opts.idleTimeoutMs });
      } catch (err) {
        if (!(err instanceof TimeoutError)) throw err;
        this.log.debug(`connection ${ctx.peer}: idle, closed`);
        port.close();
        socket.destroy();
        return;
      }
      if (ev === null) return; // the connection is gone
      if (ev.type === 'eof') {
        // The client finished sending and every complete request was answered.
        await port.flush();
        socket.end();
        return;
      }
      const opts = ev.type === 'command' ? ev.opts ?? {} : undefined;
      if (ev.type === 'rejected' || typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
        // A bad line gets an error reply; the connection goes on (unless the peer is not authenticated).
        const message = ev.type === 'rejected' ? ev.message : 'invalid request, "opts" must be an object';
        if (ev.type === 'command') port.fail(new SessionProtocolError(message, 'remote'));
        this.log.debug(`connection ${ctx.peer}: ${message}`);
        if (!authed) return this.refuse(port, ctx, 'bad request before authentication');
        continue;
      }
      const req: AgentRequest = { cmd: ev.cmd, opts: opts as Record<string, unknown> };
      if (!authed) {
        if (req.cmd === 'auth' && typeof req.opts.token === 'string' && tokensEqual(req.opts.token, ctx.requireToken!)) {
          authed = true;
          port.ok({ authenticated: true });
          continue;
        }
        port.fail(new AuthError(req.cmd === 'auth' ? 'invalid token' : 'authentication required: send {"cmd":"auth","opts":{"token":...}} first', 'remote'));
        return this.refuse(port, ctx, req.cmd === 'auth' ? 'wrong token' : `command ${req.cmd} before auth`);
      }
      this.log.debug(`connection ${ctx.peer}: ${req.cmd}`);
      let outcome: 'continue' | 'switched';
      try {
        outcome = await this.dispatch(port, req);
      } catch (err) {
        if (session.state !== 'busy') throw err; // failed after the switch: nothing to answer on
        this.log.info(`${req.cmd} failed: ${(err as Error).message}`);
        port.fail(err);
        if (this.commands.get(req.cmd)?.kind === 'session') {
          // A failed session command ends the connection: the client may have sent session bytes
          // right behind the request, which must not be read as requests.
          port.close();
          await port.flush();
          socket.end();
          return;
        }
        continue;
      }
      if (outcome === 'switched') return;
    }
  }

  /** Answers with the queued error reply, then ends the connection (destroyed 1 s later at most). */
  private async refuse(port: ControlPort, ctx: ConnContext, why: string): Promise<void> {
    this.log.warn(`connection ${ctx.peer} refused: ${why}`);
    port.close();
    const socket = port.socket;
    setTimeout(() => socket.destroy(), 1000).unref();
    await port.flush();
    socket.end();
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

  /**
   * Registers a plain command: `handler` returns (or resolves to) the reply value, or throws to
   * fail the command with an error reply carrying the error's `WK_*` code.
   */
  command(cmd: string, handler: PlainHandler): this {
    this.commands.set(cmd, { kind: 'plain', handler });
    return this;
  }

  /**
   * Registers a session kind under its command: parse and confine the options, take a session
   * slot (`WK_LIMIT` when none is left), prepare, reply, hand the connection over as a raw
   * stream, run. A failure before the reply fails the command and ends the connection.
   */
  session(kind: AnySessionKind): this {
    this.commands.set(kind.cmd, { kind: 'session', handler: kind });
    return this;
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
      frames: (io: Duplex) => frameStream(io, { maxFrameBytes: o.maxFrameBytes, keepalive: o.keepalive }),
    };
  }

  /** Runs one session command up to the hand-over; the session then runs on its own. */
  private async startSession(kind: AnySessionKind, opts: Record<string, unknown>, switchOver: (reply: unknown) => Duplex): Promise<void> {
    const ctx = this.ctx;
    const options: unknown = await kind.parse(opts, ctx);
    const release = this.takeSession();
    try {
      const prepared: unknown = await kind.prepare(options, ctx);
      const io = switchOver(kind.reply(prepared));
      void kind.run(prepared, io, ctx).catch((err: unknown) => this.log.warn(`${kind.cmd} session: ${(err as Error).message}`)).finally(release);
    } catch (err) {
      release();
      throw err;
    }
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
        listeners: this.listeners.map((l) => l.address),
      }));
    for (const kind of [execKind, terminalKind, forwardKind, uploadKind, downloadKind]) this.session(kind);
  }

  /**
   * Runs one command: answers it (`port.ok`) and returns 'continue', or for a session command
   * replies and switches the connection to the session (`port.switchOver`) and returns
   * 'switched'. Throws to fail the command (before any reply).
   */
  private async dispatch(port: ControlPort, req: AgentRequest): Promise<'continue' | 'switched'> {
    const entry = this.commands.get(req.cmd);
    if (entry === undefined) throw new SessionProtocolError(`unknown command '${req.cmd}'`, 'remote');
    if (entry.kind === 'plain') {
      port.ok(await entry.handler(req.opts));
      return 'continue';
    }
    await this.startSession(entry.handler, req.opts, (reply) => port.switchOver(reply));
    return 'switched';
  }
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
  if (err instanceof SocketInUseError) return new AddressInUseError(`unix:${socketPath}`);
  if (err instanceof NotASocketError) return new WirekitError('WK_UNSAFE_PATH', `${socketPath} exists and is not a socket`, { origin: 'local', cause: err });
  return err;
}

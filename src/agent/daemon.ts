/**
 * The agent daemon: accepts connections on a Unix socket (mode 0600) and optionally on TCP or TLS
 * with a token, speaks the control protocol (seed 003, `protocols/control`'s sans-I/O
 * `ServerSession`), and runs exec, terminal, file and forward sessions.
 */
import net from 'node:net';
import type { CollectGarbage } from './file-pump.js';
import { clearStaleUnixSocket, listenUnixSocket, NotASocketError, SocketInUseError, type UnixListener } from '../channels/unix-listener.js';
import os from 'node:os';
import { Duplex, Readable } from 'node:stream';
import tls from 'node:tls';
import { concatBytes, utf8Encode } from '../bytes/text.js';
import { attachWait, type WaitOptions } from '../channels/frame-channel.js';
import { channel } from '../channels/node-channel.js';
import { lines } from '../codecs/lines.js';
import { TimeoutError, WirekitError } from '../errors.js';
import { errorLine, progressLine, responseLine } from '../protocols/control/messages.js';
import { ServerSession, type RejectReason, type ServerEvent } from '../protocols/control/server-session.js';
import { tokensEqual } from './auth.js';
import { AddressInUseError, AuthError, LimitError, SessionProtocolError } from './errors.js';
import { FrameStream } from './frame-stream.js';
import type { KeepaliveOptions } from './keepalive.js';
import { createLogger, type Logger } from './log.js';
import { confinePath } from './paths.js';
import { sessionCodec } from './session-frames.js';
import {
  connectTarget,
  parseExecOptions,
  parseTerminalOptions,
  prepareDownload,
  prepareUpload,
  runDownload,
  runExec,
  runForward,
  runTerminal,
  runUpload,
  startExec,
  type TransferReplies,
} from './sessions.js';

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
        if (ev.type === 'command') port.fail(new SessionProtocolError(message));
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
        port.fail(new AuthError(req.cmd === 'auth' ? 'invalid token' : 'authentication required: send {"cmd":"auth","opts":{"token":...}} first'));
        return this.refuse(port, ctx, req.cmd === 'auth' ? 'wrong token' : `command ${req.cmd} before auth`);
      }
      this.log.debug(`connection ${ctx.peer}: ${req.cmd}`);
      let outcome: 'continue' | 'switched';
      try {
        outcome = await this.command(port, req);
      } catch (err) {
        if (session.state !== 'busy') throw err; // failed after the switch: nothing to answer on
        this.log.info(`${req.cmd} failed: ${(err as Error).message}`);
        port.fail(err);
        if (SESSION_COMMANDS.has(req.cmd)) {
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
    if (this.activeSessions >= this.opts.maxSessions) throw new LimitError(`too many sessions (limit ${this.opts.maxSessions})`);
    this.activeSessions++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.activeSessions--;
      }
    };
  }

  /** Session frames over the switched connection `io`. */
  private frameStream(io: Duplex): FrameStream {
    const codec = sessionCodec({ maxFrameLength: this.opts.maxFrameBytes });
    return new FrameStream(channel(io, codec), io, codec, this.opts.keepalive);
  }

  /**
   * Runs one command: answers it (`port.ok`) and returns 'continue', or for a session command
   * replies and switches the connection to the session (`port.switchOver`) and returns
   * 'switched'. Throws to fail the command (before any reply).
   */
  private async command(port: ControlPort, req: AgentRequest): Promise<'continue' | 'switched'> {
    const o = req.opts;
    switch (req.cmd) {
      case 'auth':
        port.ok({ authenticated: true });
        return 'continue';
      case 'ping':
        port.ok({ pong: true, time: Date.now() });
        return 'continue';
      case 'info':
        port.ok({
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
        });
        return 'continue';
      case 'exec': {
        const eo = parseExecOptions(o);
        if (eo.cwd !== undefined) eo.cwd = await confinePath(eo.cwd, { root: this.opts.root });
        const release = this.takeSession();
        try {
          const child = await startExec(eo);
          const io = port.switchOver({ pid: child.pid });
          this.log.info(`exec ${JSON.stringify(eo.argv)} pid ${child.pid}`);
          void runExec(this.frameStream(io), child, this.log).finally(release);
        } catch (err) {
          release();
          throw err;
        }
        return 'switched';
      }
      case 'terminal': {
        const to = parseTerminalOptions(o);
        if (to.cwd !== undefined) to.cwd = await confinePath(to.cwd, { root: this.opts.root });
        const release = this.takeSession();
        const io = port.switchOver({});
        this.log.info(`terminal ${JSON.stringify(to.argv ?? 'shell')}`);
        void runTerminal(this.frameStream(io), to, this.log).finally(release);
        return 'switched';
      }
      case 'forward': {
        const host = o.host ?? 'localhost';
        const targetPort = o.port;
        if (typeof host !== 'string' || typeof targetPort !== 'number' || !Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) {
          throw new SessionProtocolError('forward needs {"host": string, "port": 1..65535}');
        }
        const release = this.takeSession();
        try {
          const target = await connectTarget(host, targetPort, this.opts.connectTimeoutMs);
          const io = port.switchOver({});
          this.log.info(`forward to ${host}:${targetPort}`);
          void runForward(this.frameStream(io), target, this.log).finally(release);
        } catch (err) {
          release();
          throw err;
        }
        return 'switched';
      }
      case 'upload': {
        if (typeof o.path !== 'string') throw new SessionProtocolError('upload needs {"path": string, "size": integer}');
        const size = o.size;
        if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new SessionProtocolError('upload needs a non-negative integer size');
        const mode = typeof o.mode === 'number' && Number.isInteger(o.mode) ? o.mode : undefined;
        const dest = await confinePath(o.path, { root: this.opts.root });
        const release = this.takeSession();
        try {
          const up = await prepareUpload(dest, size, mode);
          const io = port.switchOver({ path: dest });
          void runUpload(io, up, transferReplies(io), this.log, { fsync: this.opts.fsync, collectGarbage: this.opts.collectGarbage }).finally(release);
        } catch (err) {
          release();
          throw err;
        }
        return 'switched';
      }
      case 'download': {
        if (typeof o.path !== 'string') throw new SessionProtocolError('download needs {"path": string}');
        const file = await confinePath(o.path, { root: this.opts.root });
        const release = this.takeSession();
        try {
          const dl = await prepareDownload(file);
          const io = port.switchOver({ path: file, size: dl.size, mode: dl.mode });
          io.resume(); // nothing more is expected from the client; let its end arrive
          void runDownload(io, dl, this.log).finally(release);
        } catch (err) {
          release();
          throw err;
        }
        return 'switched';
      }
      default:
        throw new SessionProtocolError(`unknown command '${req.cmd}'`);
    }
  }
}

/** Bytes buffered from a client while a command runs before the daemon stops reading. */
const CONTROL_HIGH_WATER_MARK = 1024 * 1024;

const SESSION_COMMANDS = new Set(['exec', 'terminal', 'forward', 'upload', 'download']);

/** Codes of the error replies the control session sends on its own for bad lines. */
const REJECT_CODES: Record<RejectReason, string> = {
  syntax: 'WK_MALFORMED', // not JSON
  'too-large': 'WK_FRAME_TOO_LARGE', // over maxMessageBytes
  invalid: 'WK_PROTOCOL', // JSON, but not {"cmd": <string>, ...}
};

/** The message and `WK_*` code of an error reply. */
function failure(err: unknown): { message: string; code: string } {
  return { message: err instanceof Error ? err.message : String(err), code: err instanceof WirekitError ? err.code : 'WK_INTERNAL' };
}

/**
 * The control phase of one connection: the control protocol's sans-I/O `ServerSession` fed from
 * the socket. A request is decoded only when `next` asks for one, and only after the previous one
 * was answered, so the bytes the client sent behind a session command stay undecoded and are
 * handed to the session by `switchOver`.
 */
class ControlPort {
  private wake: (() => void) | undefined;
  private gone = false;
  private paused = false;
  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? utf8Encode(chunk) : chunk);
    // While a command runs nobody decodes: stop reading once a request's worth is buffered.
    if (this.wake === undefined && !this.paused && this.session.bufferedBytes >= this.highWaterMark) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  };
  private readonly onEnd = () => {
    this.session.receiveEof();
    this.notify();
  };
  private readonly onClose = () => {
    this.gone = true;
    this.notify();
  };

  constructor(
    readonly socket: Duplex,
    readonly session: ServerSession,
    private readonly highWaterMark: number,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
  }

  /**
   * Writes the replies queued so far, then returns the next request, refused line (its error
   * reply is queued) or end of input; `null` once the connection is gone. Rejects with
   * `TimeoutError` when no complete line arrives in time.
   */
  async next(options: WaitOptions): Promise<ServerEvent | null> {
    await this.flush();
    let timedOut: Error | undefined;
    const cleanup = attachWait('waiting for a request', options, (err) => {
      timedOut = err;
      this.notify();
    });
    try {
      for (;;) {
        if (this.gone) return null;
        const ev = this.session.nextEvent();
        if (ev !== undefined) return ev;
        if (timedOut) throw timedOut;
        if (this.paused) {
          this.paused = false;
          this.socket.resume();
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.wake = undefined;
      cleanup();
    }
  }

  /** Queues the success reply of the running (non-session) command. */
  ok(response: unknown): void {
    this.session.respond(response);
    this.session.finish();
  }

  /** Queues the error reply (message and `WK_*` code) of the running command. */
  fail(err: unknown): void {
    const { message, code } = failure(err);
    this.session.fail(message, { code });
    this.session.finish();
  }

  /** Writes the queued replies; resolves when the socket can take more. */
  async flush(): Promise<void> {
    const bytes = this.session.dataToSend();
    const s = this.socket;
    if (bytes.length === 0 || s.destroyed || s.writableEnded) return;
    if (!s.write(bytes)) await drained(s);
  }

  /**
   * Replies to a session command and hands the connection over: the returned stream's first
   * bytes are those the client sent after the request (even in the same read as the request),
   * then the live ones; writes go to the socket, behind the reply.
   */
  switchOver(response: unknown): Duplex {
    this.session.respond(response);
    const reply = this.session.dataToSend();
    const leftover = this.session.hijack();
    this.detach();
    const s = this.socket;
    if (this.gone) {
      // The client left while the command was being prepared: the session reads what it sent,
      // then the end, and so ends at once (a program started for it is killed).
      return Duplex.from({ readable: Readable.from(leftover, { objectMode: false }), writable: s });
    }
    if (!s.writableEnded) s.write(reply);
    return rawStream(s, leftover);
  }

  /** Stops reading requests; bytes still arriving are dropped. */
  close(): void {
    this.detach();
    this.session.close();
    this.socket.resume();
  }

  private detach(): void {
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/**
 * The connection as a raw byte stream after the switch: `leftover` (bytes read but not decoded)
 * first, then the live bytes.
 */
function rawStream(socket: Duplex, leftover: Uint8Array[]): Duplex {
  return channel(socket, lines(), leftover.length > 0 ? { leftover: concatBytes(leftover) } : {}).hijack();
}

/** Resolves when `s` drains or closes. */
function drained(s: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}

/** Transfer progress and result as control lines on the switched connection. */
function transferReplies(io: Duplex): TransferReplies {
  const w = (line: string) => {
    if (!io.destroyed && !io.writableEnded) io.write(utf8Encode(line + '\n'));
  };
  return {
    progress: (p) => w(progressLine(p)),
    ok: (r) => w(responseLine(r)),
    fail: (err) => {
      const { message, code } = failure(err);
      w(errorLine(message, { code }));
    },
  };
}

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

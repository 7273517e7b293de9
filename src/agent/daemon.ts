/**
 * The agent daemon: accepts connections on a Unix socket (mode 0600) and optionally on TCP or TLS
 * with a token, speaks the control protocol, and runs exec, terminal, file and forward sessions.
 */
import { lstatSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { listenPrivate } from '../protocols/delimited/private-socket.js';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ndjson } from '../codecs/lines.js';
import { CodecError } from '../codecs/errors.js';
import { TimeoutError, WirekitError } from '../errors.js';
import { tokensEqual } from './auth.js';
import { AGENT_PROTOCOL_VERSION, ControlServerLink, type AgentRequest } from './control-link.js';
import { AddressInUseError, AuthError, LimitError, SessionProtocolError } from './errors.js';
import { FrameStream } from './frame-stream.js';
import type { KeepaliveOptions } from './keepalive.js';
import { createLogger, type Logger } from './log.js';
import { confinePath } from './paths.js';
import { sessionCodec, type SessionFrame } from './session-frames.js';
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
  private readonly opts: Required<Omit<AgentDaemonOptions, 'root' | 'logger' | 'keepalive'>> & { root?: string; keepalive: KeepaliveOptions };
  private activeSessions = 0;
  private readonly started = Date.now();
  private unixPaths: string[] = [];

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
    };
  }

  /** Sessions running now. */
  get sessions(): number {
    return this.activeSessions;
  }

  /**
   * Listens on a Unix socket created with mode 0600 from the first instant: it is bound inside a
   * fresh 0700 directory, chmod-ed, then linked into place atomically (`listenPrivate`), so the
   * process umask is never touched. A stale socket file (nobody accepting) is replaced; a live
   * daemon's is not (`AddressInUseError`); a path that is not a socket is refused.
   */
  async listenUnix(socketPath: string): Promise<Listener> {
    await removeStaleSocket(socketPath);
    const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s, { requireToken: undefined, peer: 'unix' }));
    await listenPrivate(socketPath, { mode: 0o600 }, server);
    this.unixPaths.push(socketPath);
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
    const closing = this.listeners.map((l) => new Promise<void>((r) => l.server.close(() => r())));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    for (const p of this.unixPaths) {
      try {
        unlinkSync(p);
      } catch {
        // already gone
      }
    }
    this.unixPaths = [];
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
    const link = new ControlServerLink(socket, this.opts.maxMessageBytes);
    await link.greet({ version: AGENT_PROTOCOL_VERSION, auth: ctx.requireToken ? 'token' : 'none' });
    let authed = ctx.requireToken === undefined;
    for (;;) {
      let req: AgentRequest | null;
      try {
        req = await link.next({ timeout: this.opts.idleTimeoutMs });
      } catch (err) {
        if (err instanceof TimeoutError) {
          this.log.debug(`connection ${ctx.peer}: idle, closed`);
          socket.destroy();
          return;
        }
        if (err instanceof CodecError || err instanceof SessionProtocolError) {
          // A bad line gets an error reply; the connection goes on (unless the peer is not authenticated).
          await link.fail(err);
          if (!authed) return this.refuse(socket, ctx, 'bad request before authentication');
          continue;
        }
        throw err;
      }
      if (req === null) {
        socket.end();
        return;
      }
      if (!authed) {
        if (req.cmd === 'auth' && typeof req.opts.token === 'string' && tokensEqual(req.opts.token, ctx.requireToken!)) {
          authed = true;
          await link.ok({ authenticated: true });
          continue;
        }
        await link.fail(new AuthError(req.cmd === 'auth' ? 'invalid token' : 'authentication required: send {"cmd":"auth","opts":{"token":...}} first'));
        return this.refuse(socket, ctx, req.cmd === 'auth' ? 'wrong token' : `command ${req.cmd} before auth`);
      }
      this.log.debug(`connection ${ctx.peer}: ${req.cmd}`);
      const switched = await this.command(link, socket, req).catch(async (err: unknown) => {
        this.log.info(`${req.cmd} failed: ${(err as Error).message}`);
        await link.fail(err);
        // A failed session command ends the connection: the client may have sent session bytes
        // right behind the request, which must not be read as commands.
        return SESSION_COMMANDS.has(req.cmd) ? 'close' : 'continue';
      });
      if (switched === 'close') {
        socket.end();
        return;
      }
      if (switched === 'switched') return;
    }
  }

  private refuse(socket: Duplex, ctx: ConnContext, why: string): void {
    this.log.warn(`connection ${ctx.peer} refused: ${why}`);
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
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

  private frameStream(link: ControlServerLink, socket: Duplex): FrameStream {
    const codec = sessionCodec({ maxFrameLength: this.opts.maxFrameBytes });
    const ch = link.ch.switchCodec<SessionFrame, SessionFrame>(codec);
    return new FrameStream(ch, socket, codec, this.opts.keepalive);
  }

  /** Runs one command; returns 'switched' when the connection now belongs to a session. */
  private async command(link: ControlServerLink, socket: Duplex, req: AgentRequest): Promise<'continue' | 'switched' | 'close'> {
    const o = req.opts;
    switch (req.cmd) {
      case 'auth':
        await link.ok({ authenticated: true });
        return 'continue';
      case 'ping':
        await link.ok({ pong: true, time: Date.now() });
        return 'continue';
      case 'info':
        await link.ok({
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
          await link.ok({ pid: child.pid });
          this.log.info(`exec ${JSON.stringify(eo.argv)} pid ${child.pid}`);
          void runExec(this.frameStream(link, socket), child, this.log).finally(release);
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
        await link.ok({});
        this.log.info(`terminal ${JSON.stringify(to.argv ?? 'shell')}`);
        void runTerminal(this.frameStream(link, socket), to, this.log).finally(release);
        return 'switched';
      }
      case 'forward': {
        const host = o.host ?? 'localhost';
        const port = o.port;
        if (typeof host !== 'string' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
          throw new SessionProtocolError('forward needs {"host": string, "port": 1..65535}');
        }
        const release = this.takeSession();
        try {
          const target = await connectTarget(host, port, this.opts.connectTimeoutMs);
          await link.ok({});
          this.log.info(`forward to ${host}:${port}`);
          void runForward(this.frameStream(link, socket), target, this.log).finally(release);
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
          await link.ok({ path: dest });
          const io = link.ch.hijack();
          void runUpload(io, up, rawReplies(io), this.log).finally(release);
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
          await link.ok({ path: file, size: dl.size, mode: dl.mode });
          const io = link.ch.hijack();
          io.resume(); // nothing more is expected from the client; let its end arrive
          void runDownload(io, dl, this.log).finally(release);
        } catch (err) {
          release();
          throw err;
        }
        return 'switched';
      }
      default:
        throw new SessionProtocolError(`unknown command ${JSON.stringify(req.cmd)}`);
    }
  }
}

const SESSION_COMMANDS = new Set(['exec', 'terminal', 'forward', 'upload', 'download']);

function rawReplies(io: Duplex): TransferReplies {
  const enc = ndjson();
  const w = (v: unknown) => {
    if (!io.destroyed && !io.writableEnded) io.write(enc.encode(v));
  };
  return {
    progress: (p) => w({ status: true, progress: p }),
    ok: (r) => w({ status: true, response: r }),
    fail: (err) => w({ status: false, message: err instanceof Error ? err.message : String(err), code: err instanceof WirekitError ? err.code : 'WK_INTERNAL' }),
  };
}

/** Removes `socketPath` if it is a socket nobody accepts on; throws if a daemon is live there. */
export async function removeStaleSocket(socketPath: string): Promise<void> {
  let st;
  try {
    st = lstatSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new WirekitError('WK_UNSAFE_PATH', `${socketPath} exists and is not a socket`, { origin: 'local' });
  const live = await new Promise<boolean>((resolve) => {
    const s = net.connect(socketPath);
    const t = setTimeout(() => {
      s.destroy();
      resolve(true); // accepting slowly is still alive
    }, 2000);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
  if (live) throw new AddressInUseError(`unix:${socketPath}`);
  unlinkSync(socketPath);
}

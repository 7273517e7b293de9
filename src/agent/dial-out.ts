/**
 * The agent's side of a fleet hub: dials out to the hub, registers, keeps the link alive, and for
 * every `dial` request opens a new connection to the hub that becomes one session, served by the
 * same code as a local connection. After any loss it reconnects with exponential backoff and
 * jitter (capped, 30 s by default) and registers again under the same id.
 *
 * The link protocol is `src/hub/link-messages.ts` (docs/hub.md); its logic is the sans-I/O
 * `AgentLinkSession`; this file only adds sockets, timers and the token file.
 */
import { HubRefusedError } from './errors.js';
import { createHash } from 'node:crypto';
import { promises as fsp, constants } from 'node:fs';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { connectSocket, type SocketAddress } from '../channels/connect.js';
import { handOff } from '../channels/hand-off.js';
import { readFirstLine, type FirstLine } from '../hub/first-line.js';
import { FrameReader } from '../codecs/codec.js';
import { ndjson } from '../codecs/lines.js';
import { WirekitError } from '../errors.js';
import { AgentLinkSession, type AgentLinkAction } from '../hub/link-session.js';
import { MAX_LINK_LINE, parseHubAddress, parseLinkMessage, type LinkMessage, type RegisterMessage } from '../hub/link-messages.js';
import type { Logger } from './log.js';

export interface HubTlsOptions {
  /** CA certificates (PEM) the hub's certificate must chain to. */
  ca?: string | Buffer;
  /** SHA-256 fingerprint of the hub's certificate (hex, colons allowed): pinned instead of a CA. */
  fingerprint?: string;
  /** Name the certificate must carry, when it differs from the host dialed. */
  servername?: string;
}

export interface DialOutOptions {
  /**
   * The hub's agent port, or several hubs of one fleet: the agent tries them in turn, moving to the
   * next after each failure (with the same backoff and jitter).
   */
  hub: SocketAddress | readonly SocketAddress[];
  /** TLS to the hub (`false` or omitted: plain TCP, for loopback and tests). */
  tls?: HubTlsOptions | false;
  /** What the agent registers as. */
  register: Omit<RegisterMessage, 'type' | 'token'>;
  /** The enrollment token, used until the hub issued this agent its own. */
  enrollmentToken?: string;
  /** Where the per-agent token is kept (mode 0600). */
  tokenFile: string;
  /** Serves one session connection (after `attached`), exactly as a local client connection. */
  serve(stream: Duplex, leftover: Uint8Array, info: { user: string; sid: string }): void;
  logger: Logger;
  /** First reconnect delay, in ms. Default 500. */
  backoffMinMs?: number;
  /** Longest reconnect delay, in ms. Default 30,000. */
  backoffMaxMs?: number;
  /** Time allowed for connecting and each handshake, in ms. Default 10,000. */
  connectTimeoutMs?: number;
}


const line = (m: LinkMessage) => JSON.stringify(m) + '\n';
const normalizeFingerprint = (f: string) => f.replace(/:/g, '').toLowerCase();

export type DialOutState = 'connecting' | 'registered' | 'waiting' | 'stopped';

export class HubDialer {
  state: DialOutState = 'connecting';
  private socket: net.Socket | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private tickTimer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  private stopped = false;
  private agentToken: string | undefined;
  /** Which of the hubs the next connect tries. */
  private hubIndex = 0;
  private readonly listeners = new Set<(state: DialOutState, detail?: string) => void>();

  constructor(private readonly options: DialOutOptions) {}

  /** Calls `fn` on every state change (tests and logs). */
  onState(fn: (state: DialOutState, detail?: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private setState(state: DialOutState, detail?: string): void {
    this.state = state;
    for (const fn of this.listeners) fn(state, detail);
  }

  /** Reads the stored per-agent token, if any (each attempt, so a token put in place later is used). */
  private async loadToken(): Promise<void> {
    try {
      this.agentToken = (await fsp.readFile(this.options.tokenFile, 'utf8')).trim() || this.agentToken;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async start(): Promise<void> {
    await this.loadToken();
    if (this.agentToken === undefined && this.options.enrollmentToken === undefined) {
      throw new WirekitError('WK_USAGE', `no agent token in ${this.options.tokenFile} and no enrollment token given`, { origin: 'local' });
    }
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
    this.socket?.destroy();
    this.setState('stopped');
  }

  /** The hubs, in the order they are tried. */
  get hubs(): readonly SocketAddress[] {
    const h = this.options.hub;
    return Array.isArray(h) ? h : [h as SocketAddress];
  }

  private async dialHub(address: SocketAddress = this.hubs[this.hubIndex % this.hubs.length]!): Promise<net.Socket> {
    const t = this.options.tls;
    const socket = await connectSocket(address, {
      timeout: this.options.connectTimeoutMs ?? 10_000,
      tls: t ? tlsOptions(t) : false,
    });
    if (t && t.fingerprint) {
      const cert = (socket as tls.TLSSocket).getPeerX509Certificate?.();
      const got = cert ? normalizeFingerprint(createHash('sha256').update(cert.raw).digest('hex')) : '';
      if (got !== normalizeFingerprint(t.fingerprint)) {
        socket.destroy();
        throw new WirekitError('WK_AUTH', `the hub's certificate fingerprint ${got || '(none)'} is not the pinned one`, { origin: 'remote' });
      }
    }
    return socket;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState('connecting');
    let socket: net.Socket;
    try {
      await this.loadToken();
      socket = await this.dialHub();
    } catch (err) {
      this.retry((err as Error).message);
      return;
    }
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    const token = this.agentToken ?? this.options.enrollmentToken!;
    const session = new AgentLinkSession({ ...this.options.register, token }, Date.now());
    const reader = new FrameReader(ndjson({ maxLineLength: MAX_LINK_LINE }));
    let closedWhy: string | undefined;
    const apply = (actions: readonly AgentLinkAction[]) => {
      for (const a of actions) {
        switch (a.type) {
          case 'send':
            socket.write(line(a.message));
            break;
          case 'registered':
            this.failures = 0;
            if (a.agentToken !== undefined) {
              this.agentToken = a.agentToken;
              void writePrivateFile(this.options.tokenFile, a.agentToken + '\n').catch((err: Error) => this.options.logger.error(`agent: cannot store the hub's token in ${this.options.tokenFile}: ${err.message}`));
            }
            this.options.logger.info(`agent: registered with hub ${a.hub}`);
            this.setState('registered', a.hub);
            break;
          case 'dial':
            void this.dialBack(a.sid, a.hub, session, apply);
            break;
          case 'move':
            closedWhy = 'the hub is draining';
            socket.end();
            this.retry(closedWhy, a.delayMs);
            return;
          case 'close':
            closedWhy = `${a.code}: ${a.message}`;
            socket.destroy();
            if (a.reason === 'refused' && a.code === 'WK_AUTH') {
              this.options.logger.error(`agent: the hub refused this agent: ${a.message}`);
            }
            return;
        }
      }
      if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
      const at = session.nextDeadline();
      if (Number.isFinite(at)) this.tickTimer = setTimeout(() => apply(session.tick(Date.now())), Math.max(0, at - Date.now()));
    };
    socket.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = reader.push(chunk);
      } catch (err) {
        closedWhy = (err as Error).message;
        socket.destroy();
        return;
      }
      for (const f of frames) apply(session.receive(f, Date.now()));
    });
    socket.on('error', (err) => (closedWhy ??= err.message));
    // The link is not half-open: the hub's end is the link's end.
    socket.on('end', () => socket.destroy());
    socket.once('close', () => {
      if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
      if (this.socket === socket) this.socket = undefined;
      if (this.state !== 'waiting') this.retry(closedWhy ?? 'the hub closed the link');
    });
    apply(session.start());
  }

  private retry(why: string, delayMs?: number): void {
    if (this.stopped) return;
    if (this.retryTimer !== undefined) return;
    this.failures++;
    // The next attempt goes to the next hub (in a fleet, another hub takes this agent over).
    this.hubIndex = (this.hubIndex + 1) % this.hubs.length;
    const min = this.options.backoffMinMs ?? 500;
    const max = this.options.backoffMaxMs ?? 30_000;
    // Full jitter: a random delay up to the exponential bound, so a fleet does not return at once.
    const bound = Math.min(max, min * 2 ** Math.min(this.failures - 1, 20));
    const delay = delayMs ?? Math.round(min / 2 + Math.random() * (bound - min / 2));
    this.options.logger.warn(`agent: hub link lost (${why}); reconnecting in ${delay} ms`);
    this.setState('waiting', why);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delay);
  }

  /**
   * Opens the connection for session `sid` (to this hub, or to fleet hub `hub` where the user is) and
   * hands it to `serve` once the hub paired it.
   */
  private async dialBack(sid: string, hub: string | undefined, session: AgentLinkSession, apply: (a: readonly AgentLinkAction[]) => void): Promise<void> {
    let socket: net.Socket;
    try {
      const other = hub === undefined ? undefined : parseHubAddress(hub);
      socket = await this.dialHub(other);
    } catch (err) {
      apply(session.dialFailed(sid, (err as Error).message));
      return;
    }
    socket.write(line({ type: 'attach', sid, id: this.options.register.id, token: this.agentToken ?? this.options.enrollmentToken! }));
    socket.on('error', () => {});
    let first: FirstLine;
    try {
      first = await readFirstLine(socket, this.options.connectTimeoutMs ?? 10_000);
    } catch {
      socket.destroy();
      return;
    }
    let msg: LinkMessage;
    try {
      msg = parseLinkMessage(first.value);
    } catch {
      socket.destroy();
      return;
    }
    if (msg.type !== 'attached' || msg.sid !== sid) {
      this.options.logger.warn(`agent: dial-back for ${sid} refused by the hub${msg.type === 'refused' ? `: ${msg.message}` : ''}`);
      socket.destroy();
      return;
    }
    // Back to a fresh stream's state (the reader's leftover first), so the session's server reads it.
    this.options.serve(handOff(socket), first.reader.takeRemaining(), { user: msg.user, sid });
  }
}

function tlsOptions(t: HubTlsOptions): tls.ConnectionOptions {
  return {
    ...(t.ca !== undefined ? { ca: t.ca } : {}),
    ...(t.servername !== undefined ? { servername: t.servername } : {}),
    // A pinned fingerprint replaces the CA check; it is verified right after the handshake.
    ...(t.fingerprint !== undefined ? { rejectUnauthorized: false } : {}),
  };
}

/** Writes `text` to `file` through a temp file created 0600, then renames it into place. */
async function writePrivateFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const h = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    await h.writeFile(text);
    await h.sync();
  } finally {
    await h.close();
  }
  await fsp.rename(tmp, file);
}

export { HubRefusedError };

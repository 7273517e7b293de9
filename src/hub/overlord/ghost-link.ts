/**
 * One registered Overlord ghost (mode 1), as the hub's registry sees it: answers its pings, drops
 * it after `keepaliveTimeoutMs` of silence, sends it requests tracked by rid, and serves wirekit
 * sessions to it through an in-hub agent daemon whose session kinds talk to the ghost
 * (sessions.ts). A ghost that stops reading (over `maxQueuedBytes` queued) is dropped.
 */
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { AgentDaemon } from '../../agent/daemon.js';
import { WirekitError } from '../../errors.js';
import {
  decodeMessage,
  encodeRequest,
  encodeSuccess,
  RpcTracker,
  type Generation,
  type LineSplitter,
  type ModeValue,
  type Registration,
  type RpcResponse,
} from '../../protocols/overlord/index.js';
import type { AgentLinkHandle } from '../hub.js';
import type { GhostChild } from './child.js';
import type { GhostPort } from './ghost-port.js';
import { duplexPair } from './pair.js';
import { ghostSessionKinds } from './sessions.js';

/** The ghost answered a request with an error. Code `WK_REMOTE_COMMAND_FAILED`. */
export class GhostRequestError extends WirekitError {
  constructor(name: string, message: string) {
    super('WK_REMOTE_COMMAND_FAILED', `ghost refused ${name}: ${message}`, { origin: 'remote' });
  }
}

interface Call {
  resolve(r: RpcResponse): void;
  reject(err: Error): void;
}

export class GhostLink implements AgentLinkHandle {
  private readonly tracker = new RpcTracker<Call>();
  private lastSeen = Date.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private daemon: AgentDaemon | undefined;
  private ended = false;
  readonly mid: string;

  constructor(
    private readonly port: GhostPort,
    private readonly socket: Duplex,
    private readonly splitter: LineSplitter,
    readonly generation: Generation,
    reg: Registration,
    private readonly address: string,
  ) {
    this.mid = reg.mid;
  }

  start(): void {
    const hub = this.port.hub;
    const o = this.port.options;
    this.socket.on('data', (chunk: Uint8Array) => {
      this.splitter.push(chunk);
      this.drain();
    });
    this.socket.on('end', () => this.end('closed'));
    this.socket.on('close', () => this.end('closed'));
    const every = Math.max(50, Math.min(3000, Math.floor(o.keepaliveTimeoutMs / 4)));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref?.();
    // Messages that came with the register (a ping may sit behind it).
    this.drain();
    this.socket.resume();
    hub.logger.info(`hub overlord: ghost ${this.mid} (${this.generation}) registered from ${this.address}`);
  }

  private drain(): void {
    for (let ev = this.splitter.next(); ev; ev = this.splitter.next()) {
      if ('tooLong' in ev) {
        this.close(`a line over ${this.port.options.maxLine} bytes`);
        return;
      }
      let m;
      try {
        m = decodeMessage(this.generation, ev.line);
      } catch {
        this.port.hub.logger.debug(`hub overlord: ghost ${this.mid} sent a line that is not a message`);
        continue;
      }
      this.lastSeen = Date.now();
      this.port.hub.agentSeen(this.mid, this);
      if (m.kind === 'response') {
        const p = this.tracker.settle(m.rid);
        if (p) p.data.resolve(m);
        else this.port.hub.logger.debug(`hub overlord: ghost ${this.mid} answered unknown rid`);
        continue;
      }
      if (m.name === 'ping') {
        // Classic hubs answer "pong", current ones "success"; ghosts ignore the reply.
        if (m.timeout >= 0) this.write(this.generation === 'classic' ? encodeClassicPong(m.rid) : encodeSuccess('current', m.rid));
        continue;
      }
      this.port.hub.logger.debug(`hub overlord: ghost ${this.mid} sent unknown request ${m.name.slice(0, 64)}`);
    }
  }

  private tick(): void {
    const now = Date.now();
    if (now - this.lastSeen > this.port.options.keepaliveTimeoutMs) {
      this.close('keepalive timeout');
      return;
    }
    for (const p of this.tracker.expire(now)) p.data.reject(new WirekitError('WK_TIMEOUT', `ghost ${this.mid} did not answer ${p.name}`, { origin: 'remote' }));
  }

  private write(bytes: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.socket.write(bytes);
    if (this.socket.writableLength > this.port.options.maxQueuedBytes) this.close('the ghost does not read its link');
  }

  /** Sends a request and resolves with the ghost's reply (a timeout below 0: at once, with none). */
  call(name: string, payload: unknown, timeoutS = 60): Promise<RpcResponse | undefined> {
    if (this.ended) return Promise.reject(new WirekitError('WK_NOT_FOUND', `ghost ${this.mid} left`, { origin: 'remote' }));
    const rid = randomUUID();
    return new Promise((resolve, reject) => {
      const tracked = this.tracker.track(rid, name, timeoutS, Date.now(), { resolve, reject });
      this.write(encodeRequest(this.generation, rid, name, payload, timeoutS));
      if (!tracked) resolve(undefined);
    });
  }

  /** Asks for a child of `mode` and waits for it to dial back (paired by sid). */
  async openChild(name: string, payload: Record<string, unknown>, mode: ModeValue, signal?: AbortSignal): Promise<GhostChild> {
    const sid = randomUUID();
    const waiter = this.port.expectChild(this.mid, sid, mode, signal);
    waiter.child.catch(() => {});
    try {
      const r = await this.call(name, { sid, ...payload });
      if (r && !r.ok) throw new GhostRequestError(name, r.error ?? 'failed');
    } catch (err) {
      waiter.cancel(err as Error);
      throw err;
    }
    return waiter.child;
  }

  dial(): void {
    // Never called: the hub uses connect() for links that have it.
  }

  /** A daemon-protocol connection served by the hub, each session translated to the ghost's kinds. */
  connect(): Promise<{ stream: Duplex; leftover: Uint8Array }> {
    if (this.ended) return Promise.reject(new WirekitError('WK_NOT_FOUND', `ghost ${this.mid} left`, { origin: 'remote' }));
    this.daemon ??= this.makeDaemon();
    const [ours, theirs] = duplexPair();
    this.daemon.serveConnection(ours, { peer: `ghost ${this.mid}` });
    return Promise.resolve({ stream: theirs, leftover: new Uint8Array(0) });
  }

  private makeDaemon(): AgentDaemon {
    const d = new AgentDaemon({ logger: this.port.hub.logger, maxSessions: 64 });
    const host = {
      generation: this.generation,
      openChild: (name: string, payload: Record<string, unknown>, mode: ModeValue) => this.openChild(name, payload, mode),
      messageTimeoutMs: this.port.options.childTimeoutMs,
      downloadDelayMs: this.port.options.downloadDelayMs,
    };
    for (const kind of ghostSessionKinds(host)) d.session(kind);
    return d;
  }

  close(reason: string): void {
    this.port.hub.logger.info(`hub overlord: ghost ${this.mid} closed: ${reason}`);
    this.socket.destroy();
    this.end(reason);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    this.port.hub.agentGone(this.mid, this);
    const err = new WirekitError('WK_NOT_FOUND', `ghost ${this.mid} left (${reason})`, { origin: 'remote' });
    for (const p of this.tracker.drain()) p.data.reject(err);
    this.port.failChildren(this.mid, err);
    this.socket.destroy();
  }
}

function encodeClassicPong(rid: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ rid, response: 'pong', params: null }) + '\r\n');
}

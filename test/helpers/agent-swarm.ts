/**
 * Many simulated agents in one process, for the hub's scale test and benchmarks. Each agent is a
 * plain TCP connection to the hub's agent port driven by the real sans-I/O `AgentLinkSession`
 * (register, keepalive pings, dial requests); one shared timer ticks every session instead of a
 * timer per agent. On a `dial` request the agent opens a dial-back connection, sends `attach`, and
 * once the hub answers `attached` hands the stream (and any bytes behind that line) to `serve`.
 *
 * Connections are opened `concurrency` at a time, round-robin over `localAddresses` (loopback has
 * all of 127.0.0.0/8), so the hub's per-address handshake cap sees a fleet, not one host.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { FrameReader } from '../../src/codecs/codec.js';
import { ndjson } from '../../src/codecs/lines.js';
import { handOff } from '../../src/channels/hand-off.js';
import { AgentLinkSession, type AgentLinkAction } from '../../src/hub/link-session.js';
import { MAX_LINK_LINE, parseLinkMessage, type LinkMessage } from '../../src/hub/link-messages.js';

export interface SwarmServeInfo {
  readonly id: string;
  readonly index: number;
  readonly sid: string;
  readonly user: string;
}

export interface AgentSwarmOptions {
  /** The hub's agent port. */
  hub: { host: string; port: number };
  /** Agents to connect. */
  count: number;
  /** The enrollment token (or, with `tokens`, used only by agents without one). */
  enrollmentToken: string;
  /** Per-agent tokens from an earlier run (`swarm.tokens`), by index. */
  tokens?: readonly (string | undefined)[];
  /** Agent `i` is `${idPrefix}${i}`. Default `sim-`. */
  idPrefix?: string;
  /** Properties of agent `i`. Default `{ n: i, allowlist: ['anyone'] }`. */
  properties?: (i: number) => Record<string, unknown>;
  /** Connections being opened (connect to `registered`) at once. Default 64. */
  concurrency?: number;
  /** Source addresses, round-robin. Default: just the kernel's choice. */
  localAddresses?: readonly string[];
  /** Serves a dial-back, as a daemon would serve a client connection. Default: closes it. */
  serve?: (stream: Duplex, leftover: Uint8Array, info: SwarmServeInfo) => void;
  /** Time for each connect and registration, in ms. Default 20,000. */
  timeoutMs?: number;
  /** How often the shared timer ticks every link, in ms. Default 250. */
  tickMs?: number;
  /**
   * Fleet hubs: when a registered link drops, the agent reconnects to the next of `hubs` (after
   * `hub`) with the dialer's backoff and full jitter (`reconnect`), as `wirekit serve` does.
   */
  hubs?: readonly { host: string; port: number }[];
  reconnect?: { minMs: number; maxMs: number };
}

const line = (m: LinkMessage) => JSON.stringify(m) + '\n';

interface SimAgent {
  readonly index: number;
  readonly id: string;
  socket: net.Socket;
  session: AgentLinkSession;
  registered: boolean;
  apply(actions: readonly AgentLinkAction[]): void;
}

export class AgentSwarm {
  /** Per-agent tokens the hub issued, by index (for a later run as returning agents). */
  readonly tokens: (string | undefined)[];
  private readonly agents: (SimAgent | undefined)[] = [];
  private readonly ticker: ReturnType<typeof setInterval>;
  private closed = false;
  registered = 0;
  /** Links that closed after registering (the hub dropped them). */
  lost = 0;
  /** Dial-backs served. */
  dialBacks = 0;
  /** Agents registered again after their link dropped (with `reconnect`). */
  reconnected = 0;
  /** Which of `hubs` each agent is on (by index; absent: `hub`). */
  private readonly hubAt: number[] = [];

  private constructor(private readonly options: AgentSwarmOptions) {
    this.tokens = [...(options.tokens ?? [])];
    this.ticker = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.ticker.unref();
  }

  /**
   * Connects every agent and resolves once all are registered (`onProgress` after each), or
   * rejects with the first refusal, connect error or timeout (the swarm is closed then). With
   * `reconnect`, it resolves once every agent made its first attempt; the failed ones keep trying.
   */
  static async start(options: AgentSwarmOptions, onProgress?: (registered: number) => void): Promise<AgentSwarm> {
    const swarm = new AgentSwarm(options);
    try {
      await swarm.connectAll(onProgress);
    } catch (err) {
      swarm.close();
      throw err;
    }
    return swarm;
  }

  id(i: number): string {
    return `${this.options.idPrefix ?? 'sim-'}${i}`;
  }

  private async connectAll(onProgress?: (registered: number) => void): Promise<void> {
    let next = 0;
    const lanes = Math.min(this.options.concurrency ?? 64, this.options.count);
    const lane = async () => {
      while (next < this.options.count && !this.closed) {
        const i = next++;
        try {
          await this.connectOne(i);
        } catch (err) {
          // With `reconnect`, an agent refused or timed out at first goes on trying, as a real one does.
          if (!this.options.reconnect) throw err;
          this.reconnect(i, 1);
        }
        onProgress?.(this.registered);
      }
    };
    await Promise.all(Array.from({ length: lanes }, lane));
  }

  private hubFor(i: number): { host: string; port: number } {
    const hubs = this.options.hubs;
    const at = this.hubAt[i];
    return hubs && at !== undefined ? hubs[at % hubs.length]! : this.options.hub;
  }

  /** Agent `index` lost its link: the next hub after a jittered backoff, again until it is registered. */
  private reconnect(index: number, attempt: number): void {
    const r = this.options.reconnect;
    const hubs = this.options.hubs;
    if (!r || !hubs || hubs.length === 0 || this.closed) return;
    const cur = this.hubAt[index] ?? Math.max(0, hubs.findIndex((h) => h.host === this.options.hub.host && h.port === this.options.hub.port));
    this.hubAt[index] = (cur + 1) % hubs.length;
    const bound = Math.min(r.maxMs, r.minMs * 2 ** Math.min(attempt - 1, 20));
    const delay = Math.round(r.minMs / 2 + Math.random() * (bound - r.minMs / 2));
    setTimeout(() => {
      if (this.closed) return;
      this.connectOne(index).then(
        () => this.reconnected++,
        () => this.reconnect(index, attempt + 1),
      );
    }, delay).unref();
  }

  private localAddress(i: number): string | undefined {
    const list = this.options.localAddresses;
    return list && list.length > 0 ? list[i % list.length] : undefined;
  }

  private connectOne(index: number): Promise<void> {
    const id = this.id(index);
    const token = this.tokens[index] ?? this.options.enrollmentToken;
    const properties = this.options.properties?.(index) ?? { n: index, allowlist: ['anyone'] };
    const timeoutMs = this.options.timeoutMs ?? 20_000;
    return new Promise<void>((resolve, reject) => {
      const local = this.localAddress(index);
      const socket = net.connect({ ...this.hubFor(index), ...(local ? { localAddress: local } : {}) });
      socket.setNoDelay(true);
      const session = new AgentLinkSession({ id, hostname: `${id}.sim`, version: 'swarm', capabilities: ['exec'], properties, token }, Date.now(), { registerTimeoutMs: timeoutMs });
      const agent: SimAgent = { index, id, socket, session, registered: false, apply: () => {} };
      this.agents[index] = agent;
      const reader = new FrameReader(ndjson({ maxLineLength: MAX_LINK_LINE }));
      let settled = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => {
        socket.destroy();
        settle(new Error(`${id}: not registered within ${timeoutMs} ms`));
      }, timeoutMs);
      const apply = (actions: readonly AgentLinkAction[]) => {
        for (const a of actions) {
          switch (a.type) {
            case 'send':
              if (!socket.destroyed) socket.write(line(a.message));
              break;
            case 'registered':
              agent.registered = true;
              this.registered++;
              if (a.agentToken !== undefined) this.tokens[index] = a.agentToken;
              settle();
              break;
            case 'dial':
              this.dialBack(agent, a.sid);
              break;
            case 'move':
            case 'close':
              socket.destroy();
              settle(new Error(`${id}: ${a.type === 'close' ? `${a.code}: ${a.message}` : 'moved'}`));
              return;
          }
        }
      };
      agent.apply = apply;
      socket.on('data', (chunk: Buffer) => {
        let frames: unknown[];
        try {
          frames = reader.push(chunk);
        } catch (err) {
          socket.destroy();
          settle(err as Error);
          return;
        }
        for (const f of frames) apply(session.receive(f, Date.now()));
      });
      socket.on('error', (err) => settle(new Error(`${id}: ${err.message}`)));
      socket.on('end', () => socket.destroy());
      socket.on('close', () => {
        const was = agent.registered;
        if (agent.registered) {
          agent.registered = false;
          this.registered--;
          if (!this.closed) this.lost++;
        }
        settle(new Error(`${id}: the hub closed the link`));
        if (was) this.reconnect(index, 1);
      });
      apply(session.start());
    });
  }

  /** One timer for every link: keepalive pings and the sessions' own timeouts. */
  private tick(): void {
    const now = Date.now();
    for (const agent of this.agents) {
      if (!agent || agent.socket.destroyed) continue;
      if (agent.session.nextDeadline() <= now) agent.apply(agent.session.tick(now));
    }
  }

  private dialBack(agent: SimAgent, sid: string): void {
    const local = this.localAddress(agent.index);
    const socket = net.connect({ ...this.hubFor(agent.index), ...(local ? { localAddress: local } : {}) });
    socket.setNoDelay(true);
    const token = this.tokens[agent.index] ?? this.options.enrollmentToken;
    socket.write(line({ type: 'attach', sid, id: agent.id, token }));
    const reader = new FrameReader(ndjson({ maxLineLength: MAX_LINK_LINE }));
    const timer = setTimeout(() => socket.destroy(), this.options.timeoutMs ?? 20_000);
    const fail = () => {
      clearTimeout(timer);
      socket.destroy();
      agent.apply(agent.session.dialFailed(sid, 'dial-back refused'));
    };
    const onData = (chunk: Buffer) => {
      let first: unknown;
      try {
        reader.feed(chunk);
        first = reader.next();
      } catch {
        fail();
        return;
      }
      if (first === undefined) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.pause();
      let msg: LinkMessage;
      try {
        msg = parseLinkMessage(first);
      } catch {
        fail();
        return;
      }
      if (msg.type !== 'attached' || msg.sid !== sid) {
        fail();
        return;
      }
      this.dialBacks++;
      const serve = this.options.serve ?? ((s: Duplex) => s.destroy());
      serve(handOff(socket), reader.takeRemaining(), { id: agent.id, index: agent.index, sid, user: msg.user });
    };
    socket.on('data', onData);
    socket.on('error', () => clearTimeout(timer));
  }

  /** Closes every link. */
  close(): void {
    this.closed = true;
    clearInterval(this.ticker);
    for (const agent of this.agents) agent?.socket.destroy();
  }
}

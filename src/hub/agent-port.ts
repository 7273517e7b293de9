/**
 * The hub's agent port: every connection's first line says what it is. `register` starts an agent
 * link (driven by `HubLinkSession`), `attach` is a dial-back for a waiting session. Anything else,
 * a line over 64 KiB, or silence past the handshake timeout closes the connection; connections
 * still in their handshake are capped in total and per address, so silent or garbage-sending peers
 * cost a bounded amount of memory and never block others.
 */
import { ConnectionCap } from './connection-cap.js';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { FrameReader } from '../codecs/codec.js';
import { ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { readFirstLine } from './first-line.js';
import { HubLinkSession, type HubLinkAction } from './link-session.js';
import { parseLinkMessage, type LinkMessage } from './link-messages.js';
import type { AgentLinkHandle, Hub } from './hub.js';

export interface AgentPortOptions {
  /** Time allowed for the first line, in ms. Default 10,000. */
  handshakeTimeoutMs?: number;
  /** Connections in their handshake at once. Default 1,024. */
  maxHandshakes?: number;
  /** Connections in their handshake from one address. Default 64. */
  maxHandshakesPerAddress?: number;
  /** Bytes queued to an agent that does not read before its link is dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
}

const line = (m: LinkMessage) => JSON.stringify(m) + '\n';

/** Sends a refusal line and closes once it is written, whatever the peer does. */
function refuse(socket: net.Socket, code: string, message: string): void {
  socket.end(line({ type: 'refused', code, message }));
  socket.destroySoon();
}

function hostOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class AgentPort {
  private readonly cap: ConnectionCap;
  private readonly links = new Set<AgentLinkDriver>();

  constructor(
    readonly hub: Hub,
    private readonly options: AgentPortOptions = {},
  ) {
    this.cap = new ConnectionCap(options.maxHandshakes ?? 1024, options.maxHandshakesPerAddress ?? 64);
  }

  /** Serves one accepted connection (plain TCP, or TLS already decrypted). */
  accept(socket: net.Socket | tls.TLSSocket): void {
    const address = hostOf(socket);
    const slot = this.cap.take(address);
    if ('refused' in slot) {
      this.hub.logger.warn(`hub: too many connections in their handshake${slot.refused === 'address' ? ` from ${address}` : ''}; refused`);
      socket.destroy();
      return;
    }
    const uncount = slot.release;
    socket.on('error', () => {});
    socket.setNoDelay(true);
    socket.once('close', uncount);
    void readFirstLine(socket, this.options.handshakeTimeoutMs ?? 10_000).then(
      ({ value, reader }) => {
        uncount();
        let msg: LinkMessage;
        try {
          msg = parseLinkMessage(value);
        } catch (err) {
          refuse(socket, 'WK_PROTOCOL', (err as Error).message);
          return;
        }
        if (msg.type === 'attach') {
          try {
            const user = this.hub.attach(msg, socket, reader.takeRemaining());
            socket.write(line({ type: 'attached', sid: msg.sid, user }));
          } catch (err) {
            this.hub.logger.warn(`hub: dial-back from ${address} refused: ${(err as Error).message}`);
            refuse(socket, (err as WirekitError).code ?? 'WK_AUTH', (err as Error).message);
          }
          return;
        }
        const link = new AgentLinkDriver(this.hub, socket, reader, address, this.options.maxQueuedBytes ?? 1024 * 1024);
        this.links.add(link);
        socket.once('close', () => this.links.delete(link));
        link.start(value);
      },
      (err: unknown) => {
        uncount();
        if (err instanceof TimeoutError) this.hub.logger.info(`hub: connection from ${address} said nothing in time; closed`);
        if (err instanceof ConnectionClosedError || err instanceof TimeoutError) {
          socket.destroy();
          return;
        }
        refuse(socket, 'WK_PROTOCOL', 'the first line must be a JSON register or attach message');
      },
    );
  }
}

/** Drives one agent link: decoded lines into the session, its actions onto the socket and the hub. */
class AgentLinkDriver implements AgentLinkHandle {
  private readonly session: HubLinkSession;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private agentId: string | undefined;
  private registered = false;

  constructor(
    private readonly hub: Hub,
    private readonly socket: Duplex,
    private readonly reader: FrameReader<unknown>,
    private readonly address: string,
    private readonly maxQueued: number,
  ) {
    this.session = new HubLinkSession(Date.now(), { keepaliveMs: hub.keepaliveMs, hubName: hub.name });
  }

  start(first: unknown): void {
    this.socket.resume();
    this.socket.on('data', (chunk: Buffer) => {
      let frames: unknown[];
      try {
        frames = this.reader.push(chunk);
      } catch (err) {
        this.apply([{ type: 'send', message: { type: 'refused', code: (err as WirekitError).code ?? 'WK_PROTOCOL', message: (err as Error).message } }, { type: 'close', reason: 'protocol', message: (err as Error).message }]);
        return;
      }
      for (const f of frames) this.apply(this.session.receive(f, Date.now()));
    });
    this.socket.on('end', () => this.end(true));
    this.socket.on('close', () => this.end(true));
    this.apply(this.session.receive(first, Date.now()));
    // Lines that came in the same read as the first one.
    let rest: unknown;
    while ((rest = this.safeNext()) !== undefined) this.apply(this.session.receive(rest, Date.now()));
  }

  private safeNext(): unknown {
    try {
      return this.reader.next();
    } catch {
      return undefined;
    }
  }

  dial(sid: string, hub?: string): void {
    this.apply(this.session.dial(sid, hub));
  }

  move(delayMs: number): void {
    this.apply(this.session.move(delayMs));
  }

  close(reason: string): void {
    this.hub.logger.info(`hub: link of ${this.agentId ?? this.address} closed: ${reason}`);
    this.socket.destroy();
  }

  /** The link is over: out of the registry; the socket destroyed now, or once its last line is written. */
  private end(destroyNow: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.registered && this.agentId !== undefined) this.hub.agentGone(this.agentId, this);
    this.registered = false;
    if (this.socket.destroyed) return;
    if (destroyNow) {
      this.socket.destroy();
      return;
    }
    this.socket.end();
    const force = setTimeout(() => this.socket.destroy(), 2000);
    force.unref?.();
    this.socket.once('close', () => clearTimeout(force));
  }

  private apply(actions: readonly HubLinkAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          if (this.socket.destroyed) break;
          this.socket.write(line(a.message));
          if (this.socket.writableLength > this.maxQueued) {
            this.close('agent does not read its link');
            return;
          }
          break;
        case 'register': {
          const msg = a.message;
          this.hub.registerAgent(msg, this.address, this).then(
            (issued) => {
              // Gone meanwhile, or refused as busy by the register timeout: the claim is undone.
              if (this.socket.destroyed || this.session.state === 'closed') {
                this.hub.agentGone(msg.id, this);
                return;
              }
              this.agentId = msg.id;
              this.registered = true;
              this.apply(this.session.accept(Date.now(), issued));
            },
            (err: WirekitError) => this.apply(this.session.refuse(err instanceof WirekitError ? err : new WirekitError('WK_INTERNAL', String(err), { origin: 'local' }))),
          );
          break;
        }
        case 'seen':
          if (this.agentId !== undefined) this.hub.agentSeen(this.agentId, this);
          break;
        case 'dialFailed':
          if (this.agentId !== undefined) this.hub.dialFailed(this.agentId, a.sid, a.message);
          break;
        case 'close':
          if (a.reason !== 'refused' && a.reason !== 'moved') this.hub.logger.info(`hub: link of ${this.agentId ?? this.address}: ${a.message}`);
          this.end(false);
          return;
      }
    }
    this.arm();
  }

  private arm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    const at = this.session.nextDeadline();
    if (!Number.isFinite(at)) return;
    this.timer = setTimeout(() => this.apply(this.session.tick(Date.now())), Math.max(0, at - Date.now()));
    this.timer.unref?.();
  }
}

/**
 * The hub-to-hub relay stream (Node driver; the handshake is relay-messages.ts). `RelayPort` is the
 * listening end, on the hub where a user waits for an agent that could not dial back to it;
 * `openRelay` is the connecting end, on the agent's hub. Both prove they hold the fleet secret
 * (HMAC-SHA256 over both nonces, the session and, over TLS, the TLS session's exported keying
 * material), so only the fleet's hubs can hand a waiting session its bytes.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { connectSocket } from '../channels/connect.js';
import { FrameReader } from '../codecs/codec.js';
import { ndjson } from '../codecs/lines.js';
import { ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { ConnectionCap } from './connection-cap.js';
import { HubAuthError } from './errors.js';
import { readFirstLine } from './first-line.js';
import type { Hub } from './hub.js';
import { parseHubAddress } from './link-messages.js';
import { MAX_RELAY_LINE, RELAY_EXPORTER_LABEL, RELAY_VERSION, macInput, parseRelayLine, type MacFields, type RelayLine } from './relay-messages.js';

const line = (m: RelayLine) => JSON.stringify(m) + '\n';
const nonce = () => randomBytes(32).toString('base64url');
const mac = (secret: Uint8Array, role: 'client' | 'server', f: MacFields) => createHmac('sha256', secret).update(macInput(role, f)).digest('base64url');

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The TLS session's exported keying material (both ends get the same bytes), or '' over plain TCP. */
function channelBinding(socket: net.Socket): string {
  return socket instanceof tls.TLSSocket ? socket.exportKeyingMaterial(32, RELAY_EXPORTER_LABEL, Buffer.alloc(0)).toString('base64url') : '';
}

async function readRelayLine(socket: Duplex, timeoutMs: number, reader?: FrameReader<unknown>): Promise<{ msg: RelayLine; reader: FrameReader<unknown> }> {
  const first = await readFirstLine(socket, timeoutMs, reader ?? new FrameReader<unknown>(ndjson({ maxLineLength: MAX_RELAY_LINE })));
  return { msg: parseRelayLine(first.value), reader: first.reader };
}

function hostOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export interface RelayPortOptions {
  /** Time for each handshake line, in ms. Default 10,000. */
  handshakeTimeoutMs?: number;
  /** Relay connections in their handshake at once. Default 256. */
  maxHandshakes?: number;
}

/** The listening end: accepts relays of sessions that wait on this hub. */
export class RelayPort {
  private readonly cap: ConnectionCap;

  constructor(
    private readonly hub: Hub,
    private readonly secret: Uint8Array,
    private readonly options: RelayPortOptions = {},
  ) {
    const max = options.maxHandshakes ?? 256;
    this.cap = new ConnectionCap(max, max);
  }

  accept(socket: net.Socket): void {
    const slot = this.cap.take(hostOf(socket));
    socket.on('error', () => {});
    if ('refused' in slot) {
      socket.destroy();
      return;
    }
    socket.once('close', slot.release);
    void this.handshake(socket, slot.release).catch((err: unknown) => {
      slot.release();
      if (!(err instanceof ConnectionClosedError) && !(err instanceof TimeoutError)) {
        this.hub.logger.warn(`hub: relay from ${hostOf(socket)} refused: ${(err as Error).message}`);
        socket.end(line({ type: 'refused', code: (err as WirekitError).code ?? 'WK_PROTOCOL', message: (err as Error).message }));
      }
      socket.destroySoon();
    });
  }

  private async handshake(socket: net.Socket, release: () => void): Promise<void> {
    const timeout = this.options.handshakeTimeoutMs ?? 10_000;
    const serverNonce = nonce();
    socket.setNoDelay(true);
    socket.write(line({ type: 'challenge', v: RELAY_VERSION, nonce: serverNonce }));
    const { msg, reader } = await readRelayLine(socket, timeout);
    if (msg.type !== 'relay') throw new WirekitError('WK_PROTOCOL', `expected relay, got ${msg.type}`, { origin: 'remote' });
    const fields: MacFields = { serverNonce, clientNonce: msg.nonce, from: msg.from, sid: msg.sid, agent: msg.agent, channel: channelBinding(socket) };
    if (!sameMac(msg.mac, mac(this.secret, 'client', fields))) throw new HubAuthError('relay: wrong fleet secret');
    const user = this.hub.relayOffer(msg.sid, msg.agent);
    release();
    socket.write(line({ type: 'accepted', user, mac: mac(this.secret, 'server', { ...fields, user }) }));
    // The agent dials back to the relaying hub meanwhile; the session's own dial timeout bounds this too.
    let next: { msg: RelayLine; reader: FrameReader<unknown> };
    try {
      next = await readRelayLine(socket, this.hub.dialTimeoutMs, reader);
    } catch (err) {
      this.hub.dialFailed(msg.agent, msg.sid, `the relay from hub ${msg.from} broke off: ${(err as Error).message}`);
      throw err;
    }
    if (next.msg.type === 'failed') {
      this.hub.dialFailed(msg.agent, msg.sid, next.msg.message);
      socket.end();
      return;
    }
    if (next.msg.type !== 'spliced') throw new WirekitError('WK_PROTOCOL', `expected spliced, got ${next.msg.type}`, { origin: 'remote' });
    if (!this.hub.relayAttach(msg.sid, msg.agent, socket, next.reader.takeRemaining())) socket.destroy();
    else this.hub.logger.info(`hub: session ${msg.sid} to ${msg.agent} relayed by hub ${msg.from}`);
  }
}

export interface OpenRelayOptions {
  secret: Uint8Array;
  /** This hub's fleet id. */
  from: string;
  sid: string;
  agent: string;
  /** TLS to the other hub (its certificate is not checked against a CA: the MACs, bound to the TLS session, authenticate it). */
  tls: boolean;
  timeoutMs: number;
}

export interface OpenedRelay {
  readonly socket: net.Socket;
  readonly user: string;
  /** Sends `spliced` and returns the bytes the other hub sent past its handshake (none, normally). */
  spliced(): Uint8Array;
  /** Tells the other hub the agent could not be reached, and closes. */
  failed(message: string): void;
}

/** The connecting end: authenticates to relay port `address` (`HOST:PORT`) and claims session `sid`. */
export async function openRelay(address: string, o: OpenRelayOptions): Promise<OpenedRelay> {
  const at = parseHubAddress(address);
  if (!at) throw new WirekitError('WK_USAGE', `bad relay address ${JSON.stringify(address)}`, { origin: 'remote' });
  const socket = await connectSocket(at, { timeout: o.timeoutMs, tls: o.tls ? { rejectUnauthorized: false } : false });
  socket.on('error', () => {});
  socket.setNoDelay(true);
  try {
    const first = await readRelayLine(socket, o.timeoutMs);
    if (first.msg.type !== 'challenge' || first.msg.v !== RELAY_VERSION) throw new WirekitError('WK_HANDSHAKE', `the relay port sent ${first.msg.type} instead of a version ${RELAY_VERSION} challenge`, { origin: 'remote' });
    const fields: MacFields = { serverNonce: first.msg.nonce, clientNonce: nonce(), from: o.from, sid: o.sid, agent: o.agent, channel: channelBinding(socket) };
    socket.write(line({ type: 'relay', from: o.from, sid: o.sid, agent: o.agent, nonce: fields.clientNonce, mac: mac(o.secret, 'client', fields) }));
    const reply = await readRelayLine(socket, o.timeoutMs, first.reader);
    if (reply.msg.type === 'refused') throw new WirekitError('WK_REMOTE_COMMAND_FAILED', `the hub at ${address} refused the relay: ${reply.msg.message}`, { origin: 'remote' });
    if (reply.msg.type !== 'accepted') throw new WirekitError('WK_HANDSHAKE', `the relay port sent ${reply.msg.type} instead of accepted`, { origin: 'remote' });
    if (!sameMac(reply.msg.mac, mac(o.secret, 'server', { ...fields, user: reply.msg.user }))) throw new HubAuthError(`the hub at ${address} does not hold the fleet secret`);
    const { user } = reply.msg;
    const reader = reply.reader;
    return {
      socket,
      user,
      spliced() {
        socket.write(line({ type: 'spliced' }));
        return reader.takeRemaining();
      },
      failed(message) {
        socket.end(line({ type: 'failed', message: message.slice(0, 1000) }));
        socket.destroySoon();
      },
    };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/**
 * The hub-to-hub relay stream, sans-I/O: its handshake messages and what each side's MAC covers.
 * When agent A (on hub H2) cannot dial back to hub H1 where its user waits, H2 opens a TCP (TLS when
 * the hubs have certificates) connection to H1's relay port, proves it knows the fleet secret, names
 * the session, and once A dialed back to H2 itself the two connections are spliced. The bytes then
 * flow A → H2 → H1, never through NATS.
 *
 * ```
 * H1 (relay port)                         H2 (connects)
 *   {"type":"challenge","v":1,"nonce":N1}  →
 *                                          ←  {"type":"relay","from":"h2","sid":..,"agent":..,"nonce":N2,"mac":M2}
 *   {"type":"accepted","user":..,"mac":M1} →      (or {"type":"refused","code":..,"message":..}, then close)
 *                                          ←  {"type":"spliced"}  then the agent's bytes, both ways
 *                                             (or {"type":"failed","message":..}, then close)
 * ```
 * M2 = HMAC-SHA256(secret, macInput('client', ...)), M1 = HMAC-SHA256(secret, macInput('server', ...)),
 * both over the two nonces, the session fields and (over TLS) keying material exported from the TLS
 * session, so neither a replayed handshake nor a man in the middle of TLS passes. Lines are JSON,
 * at most {@link MAX_RELAY_LINE} bytes.
 */
import { LinkProtocolError } from './errors.js';
import { isValidHubId } from './nats-records.js';

export const MAX_RELAY_LINE = 4096;
export const RELAY_VERSION = 1;
/** Bytes of TLS keying material bound into the MACs (RFC 5705 exporter, label below). */
export const RELAY_EXPORTER_LABEL = 'EXPORTER-wirekit-relay';

export interface ChallengeMessage {
  readonly type: 'challenge';
  readonly v: number;
  /** base64url, 32 random bytes. */
  readonly nonce: string;
}

export interface RelayMessage {
  readonly type: 'relay';
  /** The relaying hub's fleet id. */
  readonly from: string;
  /** The session that waits on the hub being connected to. */
  readonly sid: string;
  readonly agent: string;
  readonly nonce: string;
  /** base64url HMAC-SHA256. */
  readonly mac: string;
}

export interface AcceptedMessage {
  readonly type: 'accepted';
  /** The user the session is for (the agent's `attached` line names them). */
  readonly user: string;
  readonly mac: string;
}

export interface RelayRefusedMessage {
  readonly type: 'refused';
  readonly code: string;
  readonly message: string;
}

export interface SplicedMessage {
  readonly type: 'spliced';
}

export interface FailedMessage {
  readonly type: 'failed';
  readonly message: string;
}

export type RelayLine = ChallengeMessage | RelayMessage | AcceptedMessage | RelayRefusedMessage | SplicedMessage | FailedMessage;

type Obj = Record<string, unknown>;

function str(o: Obj, key: string, max: number): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > max) throw new LinkProtocolError(`relay ${String(o.type)}: "${key}" must be a string of at most ${max} characters`);
  return v;
}

const isB64 = (s: string) => /^[A-Za-z0-9_-]{16,128}$/.test(s);

/** Checks a decoded JSON line of the relay handshake. */
export function parseRelayLine(value: unknown): RelayLine {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LinkProtocolError('a relay line is a JSON object');
  const o = value as Obj;
  switch (o.type) {
    case 'challenge': {
      const nonce = str(o, 'nonce', 128);
      if (!isB64(nonce) || typeof o.v !== 'number') throw new LinkProtocolError('relay challenge: bad nonce or version');
      return { type: 'challenge', v: o.v, nonce };
    }
    case 'relay': {
      const from = str(o, 'from', 64);
      if (!isValidHubId(from)) throw new LinkProtocolError('relay: invalid hub id');
      const nonce = str(o, 'nonce', 128);
      const mac = str(o, 'mac', 128);
      if (!isB64(nonce) || !isB64(mac)) throw new LinkProtocolError('relay: bad nonce or mac');
      return { type: 'relay', from, sid: str(o, 'sid', 128), agent: str(o, 'agent', 256), nonce, mac };
    }
    case 'accepted': {
      const mac = str(o, 'mac', 128);
      if (!isB64(mac)) throw new LinkProtocolError('relay accepted: bad mac');
      return { type: 'accepted', user: str(o, 'user', 256), mac };
    }
    case 'refused':
      return { type: 'refused', code: str(o, 'code', 64), message: str(o, 'message', 1024) };
    case 'spliced':
      return { type: 'spliced' };
    case 'failed':
      return { type: 'failed', message: str(o, 'message', 1024) };
    default:
      throw new LinkProtocolError(`unknown relay line type ${JSON.stringify(o.type)?.slice(0, 64)}`);
  }
}

export interface MacFields {
  readonly serverNonce: string;
  readonly clientNonce: string;
  readonly from: string;
  readonly sid: string;
  readonly agent: string;
  /** The accepted user (server MAC only). */
  readonly user?: string;
  /** TLS exported keying material, base64url; '' over plain TCP. */
  readonly channel: string;
}

const enc = new TextEncoder();

/** The bytes each side's MAC covers: a role label and every field, each length-prefixed (no field can shift into another). */
export function macInput(role: 'client' | 'server', f: MacFields): Uint8Array {
  const parts = [`wirekit-relay/${RELAY_VERSION}/${role}`, f.serverNonce, f.clientNonce, f.from, f.sid, f.agent, f.user ?? '', f.channel];
  return enc.encode(parts.map((p) => `${p.length}:${p}`).join(','));
}

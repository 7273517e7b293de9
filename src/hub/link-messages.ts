/**
 * The messages of the agent↔hub link: one JSON object per line (LF), discriminated by `type`.
 * See docs/hub.md for the exchange. `parseLinkMessage` validates a decoded line before anything
 * else looks at it: unknown types, missing or mistyped fields and oversized values are refused
 * with `LinkProtocolError`.
 */
import { LinkProtocolError } from './errors.js';

/** Longest link line, in bytes (register carries the properties). */
export const MAX_LINK_LINE = 64 * 1024;
/** Longest string field (ids, hostnames, tokens, messages), in characters. */
export const MAX_LINK_STRING = 4096;

/** agent → hub, first message on the control connection. */
export interface RegisterMessage {
  readonly type: 'register';
  readonly id: string;
  readonly hostname: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly properties: Readonly<Record<string, unknown>>;
  /** The enrollment token (first time) or the per-agent token the hub issued. */
  readonly token: string;
}

/** hub → agent: registration accepted. */
export interface RegisteredMessage {
  readonly type: 'registered';
  /** Issued at first registration: the agent stores it (0600) and uses it from then on. */
  readonly agentToken?: string;
  /** How often the hub expects a ping, in ms. */
  readonly keepaliveMs: number;
  readonly hub: string;
}

/** hub → agent: registration or link refused; the hub closes after it. */
export interface RefusedMessage {
  readonly type: 'refused';
  readonly code: string;
  readonly message: string;
}

export interface PingMessage {
  readonly type: 'ping';
  readonly seq: number;
}

export interface PongMessage {
  readonly type: 'pong';
  readonly seq: number;
}

/** hub → agent: open a new connection to the hub for session `sid` (dial-back). */
export interface DialMessage {
  readonly type: 'dial';
  readonly sid: string;
  /**
   * Fleet hubs: the agent port (`HOST:PORT`, IPv6 in brackets) of the hub the user is on, when it is
   * not this hub; the agent dials back there (with the same TLS checks) instead of to this hub.
   */
  readonly hub?: string;
}

/** agent → hub: the dial-back for `sid` could not be made. */
export interface DialFailedMessage {
  readonly type: 'dialFailed';
  readonly sid: string;
  readonly message: string;
}

/** hub → agent: reconnect (to another hub, after `delayMs`); the hub is draining. */
export interface MoveMessage {
  readonly type: 'move';
  readonly delayMs: number;
}

/** agent → hub, first and only line of a dial-back connection; raw session bytes follow. */
export interface AttachMessage {
  readonly type: 'attach';
  readonly sid: string;
  readonly id: string;
  readonly token: string;
}

/** hub → agent on a dial-back connection: paired; the splice starts right after this line. */
export interface AttachedMessage {
  readonly type: 'attached';
  readonly sid: string;
  /** The user the hub authenticated for this session. */
  readonly user: string;
}

export type LinkMessage =
  | RegisterMessage
  | RegisteredMessage
  | RefusedMessage
  | PingMessage
  | PongMessage
  | DialMessage
  | DialFailedMessage
  | MoveMessage
  | AttachMessage
  | AttachedMessage;


type Obj = Record<string, unknown>;

function str(o: Obj, key: string, max = MAX_LINK_STRING): string {
  const v = o[key];
  if (typeof v !== 'string') throw new LinkProtocolError(`${String(o.type)}: "${key}" must be a string`);
  if (v.length > max) throw new LinkProtocolError(`${String(o.type)}: "${key}" is longer than ${max} characters`);
  return v;
}

function int(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new LinkProtocolError(`${String(o.type)}: "${key}" must be a non-negative integer`);
  return v;
}

/** `HOST:PORT` (IPv6 as `[::1]:7701`) → host and port; undefined when it is not one. */
export function parseHubAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** Checks a decoded JSON value and returns it as a typed message. */
export function parseLinkMessage(value: unknown): LinkMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new LinkProtocolError('a link message is a JSON object');
  const o = value as Obj;
  switch (o.type) {
    case 'register': {
      const caps = o.capabilities;
      if (!Array.isArray(caps) || caps.length > 64 || !caps.every((c) => typeof c === 'string' && c.length <= 64)) {
        throw new LinkProtocolError('register: "capabilities" must be a list of at most 64 short strings');
      }
      const props = o.properties;
      if (typeof props !== 'object' || props === null || Array.isArray(props)) throw new LinkProtocolError('register: "properties" must be an object');
      return { type: 'register', id: str(o, 'id', 256), hostname: str(o, 'hostname', 256), version: str(o, 'version', 64), capabilities: caps as string[], properties: props as Obj, token: str(o, 'token') };
    }
    case 'registered': {
      const agentToken = o.agentToken === undefined ? undefined : str(o, 'agentToken');
      return { type: 'registered', keepaliveMs: int(o, 'keepaliveMs'), hub: str(o, 'hub', 256), ...(agentToken === undefined ? {} : { agentToken }) };
    }
    case 'refused':
      return { type: 'refused', code: str(o, 'code', 64), message: str(o, 'message') };
    case 'ping':
    case 'pong':
      return { type: o.type, seq: int(o, 'seq') };
    case 'dial': {
      if (o.hub === undefined) return { type: 'dial', sid: str(o, 'sid', 128) };
      const hub = str(o, 'hub', 300);
      if (parseHubAddress(hub) === undefined) throw new LinkProtocolError(`dial: "hub" must be HOST:PORT, got ${JSON.stringify(hub.slice(0, 64))}`);
      return { type: 'dial', sid: str(o, 'sid', 128), hub };
    }
    case 'dialFailed':
      return { type: 'dialFailed', sid: str(o, 'sid', 128), message: str(o, 'message') };
    case 'move':
      return { type: 'move', delayMs: int(o, 'delayMs') };
    case 'attach':
      return { type: 'attach', sid: str(o, 'sid', 128), id: str(o, 'id', 256), token: str(o, 'token') };
    case 'attached':
      return { type: 'attached', sid: str(o, 'sid', 128), user: str(o, 'user', 256) };
    default:
      throw new LinkProtocolError(`unknown link message type ${JSON.stringify(o.type)?.slice(0, 64)}`);
  }
}

export { LinkProtocolError };

/**
 * What fleet hubs store in NATS and say to each other over it, sans-I/O: the registry record of an
 * agent (one JetStream KV entry per agent), the token record, the request/reply messages between
 * hubs, and the subjects. Every record read from NATS is size-checked and validated here before
 * anything else looks at it; see docs/scale-out.md for the layout.
 */
import { FleetRecordError } from './errors.js';
import { parseHubAddress } from './link-messages.js';
import { isValidAgentId } from './registry.js';

/** The KV bucket of agent claims (`KV_wirekit-agents`). */
export const AGENTS_BUCKET = 'wirekit-agents';
/** The KV bucket of agent token hashes (`KV_wirekit-agent-tokens`); no TTL. */
export const TOKENS_BUCKET = 'wirekit-agent-tokens';
/** Largest record or message accepted from NATS, in bytes (a register line is at most 64 KiB). */
export const MAX_FLEET_RECORD = 80 * 1024;

/** A hub id: a NATS subject token (letters, digits, `_`, `-`), 1–64 characters. */
export function isValidHubId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,64}$/.test(id);
}

/** A hub id from a name (a host name, say): invalid characters become `_`. */
export function hubIdFrom(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64);
  return id.length > 0 ? id : 'hub';
}

/** The subjects hub `hubId` answers on. */
export const subjects = {
  /** request {@link DialRequest} → {@link DialReply} */
  dial: (hubId: string) => `wirekit.hub.${hubId}.dial`,
  /** request {@link HoldsRequest} → {@link HoldsReply} */
  holds: (hubId: string) => `wirekit.hub.${hubId}.holds`,
  /** publish {@link DialFailedNotice} */
  dialFailed: (hubId: string) => `wirekit.hub.${hubId}.dialFailed`,
  /** request `{}` → `{hub}`: is this hub id taken? */
  ping: (hubId: string) => `wirekit.hub.${hubId}.ping`,
};

/** An agent id as a KV key: base64url of its UTF-8 (KV keys allow only `[-/_=.a-zA-Z0-9]`). */
export function agentKey(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

/** One agent's claim: which hub holds it, where to dial back, and what `ls` shows. */
export interface AgentRecord {
  readonly v: 1;
  readonly id: string;
  /** The id of the hub the agent is connected to. */
  readonly hub: string;
  /** That hub's agent port, `HOST:PORT` (where agents dial back to it). */
  readonly hubAddress: string;
  readonly hostname: string;
  readonly address: string;
  readonly version: string;
  readonly capabilities: readonly string[];
  readonly properties: Readonly<Record<string, unknown>>;
  /** When it registered on that hub, ms since the epoch. */
  readonly since: number;
  readonly authenticated: boolean;
  /** SHA-256 (hex) of the agent's token: the hub a user is on checks the agent's dial-back with it. */
  readonly tokenSha256?: string;
}

/** One agent's token, as SHA-256 hex (never the token itself). */
export interface TokenRecord {
  readonly v: 1;
  readonly sha256: string;
}

/** Hub H1 (`from`, agent port `hub`) asks the agent's hub to have `agent` dial back to H1 for `sid`. */
export interface DialRequest {
  readonly sid: string;
  readonly agent: string;
  readonly from: string;
  readonly hub: string;
  /** H1's relay port (`HOST:PORT`), when it has one: where the agent's hub relays if the agent cannot reach `hub`. */
  readonly relay?: string;
  /** The relay port speaks TLS. */
  readonly relayTls?: boolean;
}

export type DialReply = { readonly ok: true } | { readonly ok: false; readonly code: string; readonly message: string };

export interface HoldsRequest {
  readonly agent: string;
}

export interface HoldsReply {
  readonly held: boolean;
}

/** The agent could not dial back for `sid` (sent to the hub the session waits on). */
export interface DialFailedNotice {
  readonly sid: string;
  readonly agent: string;
  readonly message: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeJson(value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value));
}

type Obj = Record<string, unknown>;

function object(bytes: Uint8Array, what: string): Obj {
  if (bytes.length > MAX_FLEET_RECORD) throw new FleetRecordError(`${what}: ${bytes.length} bytes, more than ${MAX_FLEET_RECORD}`);
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(bytes));
  } catch {
    throw new FleetRecordError(`${what}: not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FleetRecordError(`${what}: not a JSON object`);
  return v as Obj;
}

function str(o: Obj, key: string, what: string, max = 4096): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > max) throw new FleetRecordError(`${what}: "${key}" must be a string of at most ${max} characters`);
  return v;
}

export function parseAgentRecord(bytes: Uint8Array): AgentRecord {
  const o = object(bytes, 'agent record');
  if (o.v !== 1) throw new FleetRecordError('agent record: unknown version');
  const id = str(o, 'id', 'agent record', 256);
  if (!isValidAgentId(id)) throw new FleetRecordError('agent record: invalid agent id');
  const hub = str(o, 'hub', 'agent record', 64);
  if (!isValidHubId(hub)) throw new FleetRecordError('agent record: invalid hub id');
  const hubAddress = str(o, 'hubAddress', 'agent record', 300);
  if (!parseHubAddress(hubAddress)) throw new FleetRecordError('agent record: "hubAddress" must be HOST:PORT');
  const caps = o.capabilities;
  if (!Array.isArray(caps) || caps.length > 64 || !caps.every((c) => typeof c === 'string' && c.length <= 64)) throw new FleetRecordError('agent record: bad "capabilities"');
  const props = o.properties;
  if (typeof props !== 'object' || props === null || Array.isArray(props)) throw new FleetRecordError('agent record: "properties" must be an object');
  if (typeof o.since !== 'number' || !Number.isSafeInteger(o.since) || o.since < 0) throw new FleetRecordError('agent record: bad "since"');
  if (typeof o.authenticated !== 'boolean') throw new FleetRecordError('agent record: bad "authenticated"');
  const tokenSha256 = o.tokenSha256 === undefined ? undefined : str(o, 'tokenSha256', 'agent record', 64);
  if (tokenSha256 !== undefined && !/^[0-9a-f]{64}$/.test(tokenSha256)) throw new FleetRecordError('agent record: bad "tokenSha256"');
  return {
    v: 1,
    id,
    hub,
    hubAddress,
    hostname: str(o, 'hostname', 'agent record', 256),
    address: str(o, 'address', 'agent record', 256),
    version: str(o, 'version', 'agent record', 64),
    capabilities: caps as string[],
    properties: props as Obj,
    since: o.since,
    authenticated: o.authenticated,
    ...(tokenSha256 === undefined ? {} : { tokenSha256 }),
  };
}

export function parseTokenRecord(bytes: Uint8Array): TokenRecord {
  const o = object(bytes, 'token record');
  const sha = str(o, 'sha256', 'token record', 64);
  if (o.v !== 1 || !/^[0-9a-f]{64}$/.test(sha)) throw new FleetRecordError('token record: bad "sha256"');
  return { v: 1, sha256: sha };
}

export function parseDialRequest(bytes: Uint8Array): DialRequest {
  const o = object(bytes, 'dial request');
  const hub = str(o, 'hub', 'dial request', 300);
  if (!parseHubAddress(hub)) throw new FleetRecordError('dial request: "hub" must be HOST:PORT');
  const from = str(o, 'from', 'dial request', 64);
  if (!isValidHubId(from)) throw new FleetRecordError('dial request: invalid hub id');
  let relay: string | undefined;
  if (o.relay !== undefined) {
    relay = str(o, 'relay', 'dial request', 300);
    if (!parseHubAddress(relay)) throw new FleetRecordError('dial request: "relay" must be HOST:PORT');
  }
  if (o.relayTls !== undefined && typeof o.relayTls !== 'boolean') throw new FleetRecordError('dial request: bad "relayTls"');
  return {
    sid: str(o, 'sid', 'dial request', 128),
    agent: str(o, 'agent', 'dial request', 256),
    from,
    hub,
    ...(relay === undefined ? {} : { relay, relayTls: o.relayTls === true }),
  };
}

export function parseDialReply(bytes: Uint8Array): DialReply {
  const o = object(bytes, 'dial reply');
  if (o.ok === true) return { ok: true };
  return { ok: false, code: str(o, 'code', 'dial reply', 64), message: str(o, 'message', 'dial reply') };
}

export function parseHoldsRequest(bytes: Uint8Array): HoldsRequest {
  return { agent: str(object(bytes, 'holds request'), 'agent', 'holds request', 256) };
}

export function parseHoldsReply(bytes: Uint8Array): HoldsReply {
  const o = object(bytes, 'holds reply');
  if (typeof o.held !== 'boolean') throw new FleetRecordError('holds reply: bad "held"');
  return { held: o.held };
}

export function parseDialFailed(bytes: Uint8Array): DialFailedNotice {
  const o = object(bytes, 'dialFailed notice');
  return { sid: str(o, 'sid', 'dialFailed', 128), agent: str(o, 'agent', 'dialFailed', 256), message: str(o, 'message', 'dialFailed') };
}

/** The hub id a fleet session id names (`<hub id>.<uuid>`), if any. */
export function hubOfSessionId(sid: string): string | undefined {
  const dot = sid.indexOf('.');
  const hub = dot > 0 ? sid.slice(0, dot) : '';
  return isValidHubId(hub) ? hub : undefined;
}

/**
 * Overlord's RPC messages, both generations (sans-I/O). A message is one JSON object followed by
 * CRLF. The generations differ only in key names:
 *
 * ```
 *            request                                 response
 * classic    {"rid","timeout","name","params"}       {"rid","response":"success"|<error text>,"params"}
 * current    {"rid","timeout","name","payload"}      {"rid","status":"success"|"failed","payload"}
 * ```
 *
 * A current failure carries `{"error": <text>}` as its payload; a classic one carries the text as
 * `response` and `null` params. `timeout` is in whole seconds; below 0 no reply is ever sent.
 */
import { utf8Decode, utf8Encode } from '../../bytes/text.js';
import { OverlordProtocolError } from './errors.js';

export type Generation = 'classic' | 'current';

export interface RpcRequest {
  readonly kind: 'request';
  readonly rid: string;
  readonly timeout: number;
  readonly name: string;
  /** `params` (classic) or `payload` (current). */
  readonly payload: unknown;
}

export interface RpcResponse {
  readonly kind: 'response';
  readonly rid: string;
  readonly ok: boolean;
  /** The error text when `ok` is false. */
  readonly error?: string;
  readonly payload: unknown;
}

export type RpcMessage = RpcRequest | RpcResponse;

/** The default request timeout, seconds. */
export const DEFAULT_RPC_TIMEOUT = 60;
/** A timeout meaning "no reply is ever sent". */
export const NO_REPLY = -1;

const CRLF = '\r\n';

/** Bytes of a request, CRLF included. */
export function encodeRequest(gen: Generation, rid: string, name: string, payload: unknown, timeout: number = DEFAULT_RPC_TIMEOUT): Uint8Array {
  const body = gen === 'classic' ? { rid, timeout, name, params: payload ?? null } : { rid, timeout, name, payload: payload ?? null };
  return utf8Encode(JSON.stringify(body) + CRLF);
}

/** Bytes of a success response. */
export function encodeSuccess(gen: Generation, rid: string, payload: unknown = null): Uint8Array {
  const body = gen === 'classic' ? { rid, response: 'success', params: payload ?? null } : { rid, status: 'success', payload: payload ?? null };
  return utf8Encode(JSON.stringify(body) + CRLF);
}

/** Bytes of a failure response carrying `error`. */
export function encodeFailure(gen: Generation, rid: string, error: string): Uint8Array {
  const body = gen === 'classic' ? { rid, response: error, params: null } : { rid, status: 'failed', payload: { error } };
  return utf8Encode(JSON.stringify(body) + CRLF);
}

/**
 * Reads one message line (without its CRLF) in `gen`'s key names. Throws
 * `OverlordProtocolError` for what is not JSON, not an object, or neither a request nor a response.
 * As overlordd does, a non-empty `name` makes a request; a response needs `response` (classic) or
 * `status` (current).
 */
export function decodeMessage(gen: Generation, line: Uint8Array | string): RpcMessage {
  let v: unknown;
  try {
    v = JSON.parse(typeof line === 'string' ? line : utf8Decode(line));
  } catch {
    throw new OverlordProtocolError('message is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OverlordProtocolError('message is not a JSON object');
  const o = v as Record<string, unknown>;
  const rid = typeof o.rid === 'string' ? o.rid : '';
  const payloadKey = gen === 'classic' ? 'params' : 'payload';
  if (typeof o.name === 'string' && o.name !== '') {
    const timeout = typeof o.timeout === 'number' && Number.isFinite(o.timeout) ? o.timeout : DEFAULT_RPC_TIMEOUT;
    return { kind: 'request', rid, timeout, name: o.name, payload: o[payloadKey] ?? null };
  }
  if (gen === 'classic') {
    if (typeof o.response !== 'string') throw new OverlordProtocolError('message is neither a request nor a response');
    return o.response === 'success' ? { kind: 'response', rid, ok: true, payload: o.params ?? null } : { kind: 'response', rid, ok: false, error: o.response, payload: null };
  }
  if (typeof o.status !== 'string') throw new OverlordProtocolError('message is neither a request nor a response');
  if (o.status === 'success') return { kind: 'response', rid, ok: true, payload: o.payload ?? null };
  const p = o.payload as { error?: unknown } | null | undefined;
  return { kind: 'response', rid, ok: false, error: typeof p?.error === 'string' ? p.error : o.status, payload: o.payload ?? null };
}

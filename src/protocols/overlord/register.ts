/**
 * The ghost's first message, `register` (sans-I/O): its modes and the checks the hub makes before
 * anything else. A register without `mid` or `sid` gets no reply at all (as overlordd does); one
 * whose payload is not an object, or whose mode is unknown, is refused with an error.
 */
import type { RpcRequest } from './messages.js';

/** Connection modes a ghost registers with. */
export const Mode = {
  NONE: 0,
  AGENT: 1,
  TERMINAL: 2,
  SHELL: 3,
  LOGCAT: 4,
  FILE: 5,
  FORWARD: 6,
} as const;
export type ModeValue = (typeof Mode)[keyof typeof Mode];

/** Modes of a child connection, dialed back for one session. */
export const CHILD_MODES: ReadonlySet<number> = new Set([Mode.TERMINAL, Mode.SHELL, Mode.FILE, Mode.FORWARD]);

export interface Registration {
  readonly mode: ModeValue;
  readonly mid: string;
  readonly sid: string;
  /** The ghost's properties (`{}` when it sent none). */
  readonly properties: Record<string, unknown>;
}

/** Longest mid or sid the hub takes, in characters. */
export const MAX_ID_LENGTH = 256;

export type RegisterCheck =
  | { readonly ok: true; readonly registration: Registration }
  /** `reply: false`: log and send nothing (missing mid or sid); otherwise answer `error`. */
  | { readonly ok: false; readonly reply: boolean; readonly error: string };

/** Checks a `register` request. */
export function checkRegister(req: RpcRequest): RegisterCheck {
  if (req.name !== 'register') return { ok: false, reply: true, error: `expected register, got ${req.name.slice(0, 64)}` };
  const p = req.payload;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return { ok: false, reply: true, error: 'register payload is not an object' };
  const o = p as Record<string, unknown>;
  const mid = typeof o.mid === 'string' ? o.mid : '';
  const sid = typeof o.sid === 'string' ? o.sid : '';
  if (mid === '' || sid === '') return { ok: false, reply: false, error: 'register without mid or sid' };
  if (mid.length > MAX_ID_LENGTH || sid.length > MAX_ID_LENGTH) return { ok: false, reply: true, error: 'mid or sid too long' };
  const mode = o.mode;
  if (typeof mode !== 'number' || !Object.values(Mode).includes(mode as ModeValue) || mode === Mode.NONE || mode === Mode.LOGCAT) {
    return { ok: false, reply: true, error: 'unknown client mode' };
  }
  const props = o.properties;
  const properties = typeof props === 'object' && props !== null && !Array.isArray(props) ? { ...(props as Record<string, unknown>) } : {};
  return { ok: true, registration: { mode: mode as ModeValue, mid, sid, properties } };
}

/**
 * Message shapes of the control protocol (seed 003, osctld's generic client handler).
 *
 * One JSON object per line, `\n`-terminated:
 *
 * - server greeting: `{"version": "<v>"}` (only if the server has a version)
 * - request: `{"cmd": <name>, "opts": <params>}`
 * - progress: `{"status": true, "progress": <message>}` (zero or more before the final reply)
 * - success: `{"status": true, "response": <value>}`
 * - failure: `{"status": false, "message": <text>}`
 */

/** A request from the client. */
export interface ControlRequest {
  cmd: string;
  opts?: unknown;
}

/** The messages a server sends, as the client sees them. */
export type ServerMessage =
  | { kind: 'version'; version: string }
  | { kind: 'progress'; message: unknown }
  | { kind: 'response'; value: unknown }
  | { kind: 'error'; message: string };

/** Error message sent for a line that is not valid JSON (osctld's text). */
export const SYNTAX_ERROR_MESSAGE = 'syntax error, expected a valid JSON';
/** Error message sent when a handler throws something other than a `CommandError`. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Classifies a parsed server line. Returns `undefined` when the value has none of the known
 * shapes. A `status: false` reply without a string message is read as an error with the JSON of
 * whatever it carried.
 */
export function classifyServerMessage(v: unknown): ServerMessage | undefined {
  if (!isObject(v)) return undefined;
  const status = v['status'];
  if (status === true) {
    if ('progress' in v && !('response' in v)) return { kind: 'progress', message: v['progress'] };
    // osctld's `ok(output)` path always sends `response`; a missing one means `null`.
    return { kind: 'response', value: v['response'] ?? null };
  }
  if (status === false) {
    const m = v['message'];
    return { kind: 'error', message: typeof m === 'string' ? m : JSON.stringify(m ?? null) };
  }
  if (status === undefined && typeof v['version'] === 'string') return { kind: 'version', version: v['version'] };
  return undefined;
}

/** Result of checking a parsed client line. */
export type RequestCheck = { ok: true; request: ControlRequest } | { ok: false; message: string };

/** Checks that a parsed client line is a `{"cmd": <string>, ...}` object. */
export function checkRequest(v: unknown): RequestCheck {
  if (!isObject(v)) return { ok: false, message: 'invalid request, expected {"cmd": <name>, "opts": <params>}' };
  const cmd = v['cmd'];
  if (typeof cmd !== 'string') return { ok: false, message: 'invalid request, "cmd" must be a string' };
  return { ok: true, request: { cmd, opts: v['opts'] } };
}

/** JSON text of a value, throwing a clear error for values JSON cannot carry. */
export function jsonText(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new TypeError(`${what} cannot be encoded as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  // JSON.stringify returns undefined for undefined, functions and symbols.
  return text === undefined ? 'null' : text;
}

/** The line of a request (without the newline). */
export function requestLine(cmd: string, opts: unknown): string {
  return `{"cmd":${JSON.stringify(cmd)},"opts":${jsonText(opts === undefined ? {} : opts, 'opts')}}`;
}
/** The line of a greeting. */
export function versionLine(version: string): string {
  return `{"version":${JSON.stringify(version)}}`;
}
/** The line of a progress update. */
export function progressLine(message: unknown): string {
  return `{"status":true,"progress":${jsonText(message, 'progress message')}}`;
}
/** The line of a successful reply (also used for each event of an event stream). */
export function responseLine(value: unknown): string {
  return `{"status":true,"response":${jsonText(value, 'response')}}`;
}
/** The line of an error reply. */
export function errorLine(message: string): string {
  return `{"status":false,"message":${JSON.stringify(message)}}`;
}

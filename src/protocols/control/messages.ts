/**
 * Message shapes of the control protocol (osctld's control protocol, its generic client handler).
 *
 * One JSON object per line, `\n`-terminated:
 *
 * - server greeting: `{"version": "<v>"}` (only if the server has a version)
 * - request: `{"cmd": <name>, "opts": <params>}`
 * - progress: `{"status": true, "progress": <message>}` (zero or more before the final reply)
 * - success: `{"status": true, "response": <value>}`
 * - failure: `{"status": false, "message": <text>}`
 *
 * A protocol built on this one may add members after these (e.g. the agent's greeting
 * `{"version": ..., "auth": "token"}` and error code `{"status": false, "message": ..., "code": ...}`);
 * they are carried as `extra` and never change how a line is classified.
 */
import { UsageError } from '../../errors.js';
import { WirekitError } from '../../errors.js';
import { CommandError, UnknownCommandError } from './errors.js';

/** A request from the client. */
export interface ControlRequest {
  cmd: string;
  opts?: unknown;
}

/** The messages a server sends, as the client sees them. */
export type ServerMessage =
  /** `extra`: the greeting's other members, present only when it has some. */
  | { kind: 'version'; version: string; extra?: Record<string, unknown> }
  | { kind: 'progress'; message: unknown }
  | { kind: 'response'; value: unknown }
  /** `extra`: the reply's members besides `status` and `message`, present only when it has some. */
  | { kind: 'error'; message: string; extra?: Record<string, unknown> };

/** Extra members of a line (a plain object of JSON values). */
export type ExtraFields = Record<string, unknown>;

const GREETING_KEYS: readonly string[] = ['version', 'status'];
const ERROR_KEYS: readonly string[] = ['status', 'message'];

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
    const msg: ServerMessage = { kind: 'error', message: typeof m === 'string' ? m : JSON.stringify(m ?? null) };
    const extra = extraOf(v, ERROR_KEYS);
    if (extra) msg.extra = extra;
    return msg;
  }
  if (status === undefined && typeof v['version'] === 'string') {
    const msg: ServerMessage = { kind: 'version', version: v['version'] };
    const extra = extraOf(v, GREETING_KEYS);
    if (extra) msg.extra = extra;
    return msg;
  }
  return undefined;
}

/** The members of `v` outside `known`, or `undefined` when there are none. */
function extraOf(v: Record<string, unknown>, known: readonly string[]): ExtraFields | undefined {
  let extra: ExtraFields | undefined;
  for (const k of Object.keys(v)) {
    if (known.includes(k)) continue;
    (extra ??= {})[k] = v[k];
  }
  return extra;
}

/** `,"k":v` for each extra member (undefined values and the line's own `known` keys skipped). */
function extraMembers(extra: ExtraFields | undefined, known: readonly string[]): string {
  if (extra === undefined) return '';
  let text = '';
  for (const k of Object.keys(extra)) {
    const value = extra[k];
    if (value === undefined || known.includes(k)) continue;
    text += `,${JSON.stringify(k)}:${jsonText(value, `member ${JSON.stringify(k)}`)}`;
  }
  return text;
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
    throw new UsageError(`${what} cannot be encoded as JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  // JSON.stringify returns undefined for undefined, functions and symbols.
  return text === undefined ? 'null' : text;
}

/** The line of a request (without the newline). */
export function requestLine(cmd: string, opts: unknown): string {
  return `{"cmd":${JSON.stringify(cmd)},"opts":${jsonText(opts === undefined ? {} : opts, 'opts')}}`;
}
/** The line of a greeting; `extra` members follow `version` (a `status` or `version` in it is ignored). */
export function versionLine(version: string, extra?: ExtraFields): string {
  return `{"version":${JSON.stringify(version)}${extraMembers(extra, GREETING_KEYS)}}`;
}
/** The line of a progress update. */
export function progressLine(message: unknown): string {
  return `{"status":true,"progress":${jsonText(message, 'progress message')}}`;
}
/** The line of a successful reply (also used for each event of an event stream). */
export function responseLine(value: unknown): string {
  return `{"status":true,"response":${jsonText(value, 'response')}}`;
}
/** The line of an error reply; `extra` members follow `message` (a `status` or `message` in it is ignored). */
export function errorLine(message: string, extra?: ExtraFields): string {
  return `{"status":false,"message":${JSON.stringify(message)}${extraMembers(extra, ERROR_KEYS)}}`;
}

/** The error reply a `ControlServer` sends for a failed command (see `ControlServerOptions.errorReply`). */
export interface ErrorReply {
  /** The reply's `message`. */
  message: string;
  /** Sent as a `code` member after `message` when given. */
  code?: string;
  /** More members after `message` (and `code`). */
  extra?: ExtraFields;
  /** Stop serving after this reply: it is written, then the connection is ended. */
  close?: boolean;
}

/**
 * The default mapping of what a handler threw to its error reply: a `CommandError` sends its
 * message (with `code` only when one was given to it); an `UnknownCommandError` its message
 * without a code (osctld's bytes); any other `WirekitError` its message and its `code`
 * (e.g. a `WirekitError('WK_NOT_FOUND', ...)` gives `{"status":false,"message":...,"code":"WK_NOT_FOUND"}`).
 * Anything else returns `undefined`: the reply is `internal error` and the failure is logged.
 */
export function defaultErrorReply(err: unknown): ErrorReply | undefined {
  if (err instanceof CommandError) return err.replyCode === undefined ? { message: err.message } : { message: err.message, code: err.replyCode };
  if (err instanceof UnknownCommandError) return { message: err.message };
  if (err instanceof WirekitError) return { message: err.message, code: err.code };
  return undefined;
}

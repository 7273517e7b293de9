/** Checks of request options shared by the session kinds (exec and terminal; working directories: environment.ts). */
import { SessionProtocolError } from '../errors.js';

/** The error for options a client got wrong. */
export function badOptions(message: string): SessionProtocolError {
  return new SessionProtocolError(message, 'remote');
}

/** `v` as a (non-empty unless `allowEmpty`) array of strings without NUL bytes. */
export function stringArray(v: unknown, what: string, allowEmpty = false): string[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || !v.every((x) => typeof x === 'string' && !x.includes('\0'))) {
    throw badOptions(`${what} must be a non-empty array of strings`);
  }
  return v as string[];
}

/** `v` as environment variables (`undefined` when missing or null). */
export function envRecord(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw badOptions('env must be an object of strings');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string' || k.includes('=') || k.includes('\0')) throw badOptions('env must be an object of strings');
  return v as Record<string, string>;
}

import type { ErrorCode } from './error-codes.js';

export { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.js';

/**
 * Base class of every error wirekit throws on purpose.
 *
 * Each error carries a stable machine-readable `code` (e.g. `WK_FRAME_TOO_LARGE`) beside its
 * human-readable message, and says whose fault it is: `origin` is `'remote'` when the peer sent
 * something invalid, `'local'` when this side misused the API or was misconfigured.
 */
export class WirekitError extends Error {
  readonly code: ErrorCode;
  readonly origin: 'local' | 'remote';

  /** `code` comes from the registry in error-codes.ts; `origin` says whose fault it is. */
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; origin: 'local' | 'remote' }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.origin = options.origin;
    this.name = new.target.name;
  }
}

/** A wait (read, connect, handshake, acknowledgement) ran past its timeout. */
export class TimeoutError extends WirekitError {
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('WK_TIMEOUT', `${what} timed out after ${timeoutMs} ms`, { origin: 'local' });
    this.timeoutMs = timeoutMs;
  }
}

/** A wait was cancelled through its AbortSignal. */
export class AbortedError extends WirekitError {
  constructor(what: string, reason?: unknown) {
    super('WK_ABORTED', `${what} was aborted${reason instanceof Error ? `: ${reason.message}` : ''}`, {
      origin: 'local',
      cause: reason,
    });
  }
}

/** The peer closed the connection (or it failed) while something was still expected from it. */
export class ConnectionClosedError extends WirekitError {
  constructor(message = 'connection closed by peer', cause?: unknown) {
    super('WK_CONNECTION_CLOSED', message, { cause, origin: 'remote' });
  }
}

/** The API or the command line was used wrongly (a bad argument or option). Code `WK_USAGE`, origin local. */
export class UsageError extends WirekitError {
  constructor(message: string, cause?: unknown) {
    super('WK_USAGE', message, { origin: 'local', cause });
  }
}

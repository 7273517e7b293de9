import { WirekitError, type ErrorCode } from '../errors.js';
import { describeBytes } from '../bytes/text.js';

/** Options of a codec error. */
export interface CodecErrorOptions {
  /**
   * Whether the stream's framing is lost (a bad length header, a runaway varint, input ending
   * inside a frame). `FrameReader` and the channels report a fatal error once, then fail every
   * later call with it; after a recoverable one (the bad frame was consumed) decoding goes on.
   */
  fatal: boolean;
  /** Whose fault it is: `'remote'` for bytes that came from a peer (the default of every subclass). */
  origin?: 'local' | 'remote';
  cause?: unknown;
}

/** Base class of the errors a decoder raises on invalid input. */
export class CodecError extends WirekitError {
  /** The stream cannot go on: every later decode would fail (or mis-frame). */
  readonly fatal: boolean;
  constructor(code: ErrorCode, message: string, options: CodecErrorOptions) {
    super(code, message, { origin: options.origin ?? 'remote', cause: options.cause });
    this.fatal = options.fatal;
  }
}

/**
 * Whether an error thrown by a decoder ends the stream: a `CodecError` says so in `fatal`; an
 * error that is not a `WirekitError` at all (a bug, a `TypeError` from a parse callback) is fatal,
 * as every decode error is in tokio. Other `WirekitError`s belong to the protocol that threw them
 * (it consumed the bad frame, or keeps its own error state until the caller resets it) and are
 * not fatal to the reader.
 */
export function isFatal(err: unknown): boolean {
  if (err instanceof CodecError) return err.fatal;
  return !(err instanceof WirekitError);
}

/** The opposite of `isFatal`: decoding may go on after `err`. */
export function isRecoverable(err: unknown): boolean {
  return !isFatal(err);
}

/**
 * A frame is larger than the configured maximum. Raised as soon as the size is known (from a
 * header, or while scanning for a delimiter), before the payload is buffered or allocated.
 * Fatal when the size was declared by a header (the framing is lost); recoverable by default when
 * the codec found (or skips to) the frame's end, as an over-long line.
 */
export class FrameTooLargeError extends CodecError {
  readonly limit: number;
  /** The declared size, or the number of bytes seen so far without reaching the frame's end. */
  readonly size: number | bigint;
  constructor(what: string, size: number | bigint, limit: number, declared: boolean, options: { fatal?: boolean } = {}) {
    super(
      'WK_FRAME_TOO_LARGE',
      declared
        ? `${what} declares ${size} bytes, over the limit of ${limit} bytes`
        : `${what} exceeds the limit of ${limit} bytes (${size} bytes without an end)`,
      { fatal: options.fatal ?? declared, origin: 'remote' },
    );
    this.limit = limit;
    this.size = size;
  }
}

/** Input ended in the middle of a frame. Always fatal: there is no more input. */
export class TruncatedFrameError extends CodecError {
  /** Number of bytes of the partial frame left over. */
  readonly remaining: number;
  constructor(what: string, remaining: number, detail = '') {
    super('WK_TRUNCATED', `input ended inside ${what}: ${remaining} byte${remaining === 1 ? '' : 's'} of a partial frame left${detail}`, {
      fatal: true,
      origin: 'remote',
    });
    this.remaining = remaining;
  }
}

/**
 * The bytes of a frame are not valid for its codec (bad header, bad body encoding, junk).
 * Recoverable by default (the codec consumed the bad frame); pass `{ fatal: true }` when the
 * framing itself is lost.
 */
export class MalformedFrameError extends CodecError {
  /** The offending bytes, when there are some to show. */
  readonly bytes: Uint8Array | undefined;
  constructor(message: string, bytes?: Uint8Array, cause?: unknown, options: { fatal?: boolean } = {}) {
    super('WK_MALFORMED', bytes ? `${message}: ${describeBytes(bytes)}` : message, { fatal: options.fatal ?? false, origin: 'remote', cause });
    this.bytes = bytes;
  }
}

/**
 * A frame given to an encoder cannot be encoded (a line that contains a newline, a value JSON
 * cannot represent, a payload over the limit). Always the caller's fault (`origin: 'local'`).
 */
export class EncodeError extends WirekitError {
  constructor(message: string, options: { code?: 'WK_ENCODE' | 'WK_FRAME_TOO_LARGE'; cause?: unknown } = {}) {
    super(options.code ?? 'WK_ENCODE', message, { origin: 'local', cause: options.cause });
  }
}

/** A codec or reader was used against its contract (a layout that cannot work, data after end). Code `WK_USAGE`, origin local. */
export class CodecUsageError extends WirekitError {
  constructor(message: string) {
    super('WK_USAGE', message, { origin: 'local' });
  }
}

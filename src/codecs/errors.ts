import { WirekitError } from '../errors.js';
import { describeBytes } from '../bytes/text.js';

/** Base class of the errors a decoder raises on invalid input. */
export class CodecError extends WirekitError {}

/**
 * A frame is larger than the configured maximum. Raised as soon as the size is known (from a
 * header, or while scanning for a delimiter), before the payload is buffered or allocated.
 */
export class FrameTooLargeError extends CodecError {
  readonly limit: number;
  /** The declared size, or the number of bytes seen so far without reaching the frame's end. */
  readonly size: number | bigint;
  constructor(what: string, size: number | bigint, limit: number, declared: boolean) {
    super(
      'WK_FRAME_TOO_LARGE',
      declared
        ? `${what} declares ${size} bytes, over the limit of ${limit} bytes`
        : `${what} exceeds the limit of ${limit} bytes (${size} bytes without an end)`,
    );
    this.limit = limit;
    this.size = size;
  }
}

/** Input ended in the middle of a frame. */
export class TruncatedFrameError extends CodecError {
  /** Number of bytes of the partial frame left over. */
  readonly remaining: number;
  constructor(what: string, remaining: number, detail = '') {
    super('WK_TRUNCATED', `input ended inside ${what}: ${remaining} byte${remaining === 1 ? '' : 's'} of a partial frame left${detail}`);
    this.remaining = remaining;
  }
}

/** The bytes of a frame are not valid for its codec (bad header, bad body encoding, junk). */
export class MalformedFrameError extends CodecError {
  /** The offending bytes, when there are some to show. */
  readonly bytes: Uint8Array | undefined;
  constructor(message: string, bytes?: Uint8Array, cause?: unknown) {
    super('WK_MALFORMED', bytes ? `${message}: ${describeBytes(bytes)}` : message, { cause });
    this.bytes = bytes;
  }
}

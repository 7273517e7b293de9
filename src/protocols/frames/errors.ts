import { WirekitError } from '../../errors.js';

/**
 * A peer broke the frame protocol: a frame of the wrong type for the current state, missing or
 * contradictory flags, a malformed argument payload, a response nobody asked for.
 * `origin` is `'remote'` when the bytes came from the peer.
 */
export class FrameProtocolError extends WirekitError {
  constructor(message: string, options: { origin: 'local' | 'remote'; cause?: unknown }) {
    super('WK_FRAME_PROTOCOL', message, options);
  }
}

/** A request cannot be encoded (argument name or value too long for its length field, bad frame size). */
export class FrameEncodingError extends WirekitError {
  constructor(message: string) {
    super('WK_FRAME_ENCODING', message, { origin: 'local' });
  }
}

/**
 * The server answered a command with an error-response frame. `kind` says whether it reported a
 * protocol error (the request was malformed) or an application error (the command itself failed).
 * (Formerly `CommandError`, a name that means a handler-thrown error in `protocols/control`.)
 */
export class FrameCommandError extends WirekitError {
  /** `'protocol'` or `'application'` from the frame flags; `'unknown'` when neither flag is set. */
  readonly kind: 'protocol' | 'application' | 'unknown';
  /** Raw flags of the error-response frame. */
  readonly flags: number;
  /** The message as the server sent it. */
  readonly serverMessage: string;
  constructor(kind: 'protocol' | 'application' | 'unknown', message: string, flags: number) {
    super(kind === 'application' ? 'WK_COMMAND_FAILED' : 'WK_COMMAND_REJECTED', `${kind} error from server: ${message}`, { origin: 'remote' });
    this.kind = kind;
    this.flags = flags;
    this.serverMessage = message;
  }
}

/** @deprecated use `FrameCommandError` (`CommandError` means a handler-thrown error in `protocols/control`). */
export const CommandError = FrameCommandError;
/** @deprecated use `FrameCommandError`. */
export type CommandError = FrameCommandError;

/** An HTTP exchange answered with a non-2xx status; `message` holds the server's explanation. */
export class FrameHttpError extends WirekitError {
  readonly status: number;
  constructor(status: number, message: string) {
    super('WK_HTTP_STATUS', `HTTP ${status}: ${message}`, { origin: 'remote' });
    this.status = status;
  }
}

/** Thrown by a handler to send a message as an application error. Any thrown error does the same. */
export class ApplicationError extends WirekitError {
  constructor(message: string) {
    super('WK_APPLICATION_ERROR', message, { origin: 'local' });
  }
}

/** A response (or a collected stream) larger than the configured limit. */
export class ResponseTooLargeError extends WirekitError {
  constructor(size: number, limit: number) {
    super('WK_RESPONSE_TOO_LARGE', `response of at least ${size} bytes is over the limit of ${limit} bytes`, { origin: 'remote' });
  }
}

/** A `ChunkStream` was iterated a second time (it can be consumed once). */
export class StreamConsumedError extends WirekitError {
  constructor() {
    super('WK_STREAM_CONSUMED', 'ChunkStream can be iterated only once', { origin: 'local' });
  }
}

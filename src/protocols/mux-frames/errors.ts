import { WirekitError } from '../../errors.js';

/**
 * A frame sequence that the multiplexed frame protocol forbids (wrong stream parity, a frame for
 * an unknown request, a request id already in use, bad flag combinations, ...). `origin` says
 * whether the peer sent it (`'remote'`) or this side tried to do it (`'local'`).
 */
export class MuxProtocolError extends WirekitError {
  constructor(message: string, options: { origin: 'local' | 'remote'; cause?: unknown }) {
    super('WK_MUX_PROTOCOL', message, options);
  }
}

/** Invalid or unsupported CBOR (outside Mercurial's subset), or CBOR over a configured limit. */
export class CborError extends WirekitError {
  constructor(message: string, options: { origin: 'local' | 'remote'; cause?: unknown }) {
    super('WK_CBOR', message, options);
  }
}

/** A stream content encoding is unknown, unavailable on this runtime, or its data is corrupt. */
export class StreamEncodingError extends WirekitError {
  constructor(message: string, options: { origin: 'local' | 'remote'; cause?: unknown }) {
    super('WK_MUX_ENCODING', message, options);
  }
}

/** A notation string could not be parsed. */
export class NotationError extends WirekitError {
  constructor(message: string) {
    super('WK_MUX_NOTATION', message, { origin: 'local' });
  }
}

/**
 * Thrown by a command handler of the socket server to answer with a command error (a response
 * whose status is `error`, Mercurial's `WireprotoCommandError`). Any other thrown error becomes an
 * error-response frame of type `server`.
 */
export class MuxApplicationError extends WirekitError {
  /** Arguments of the message (Mercurial formats `%s` in the message with them). */
  readonly args: string[];
  constructor(message: string, args: string[] = []) {
    super('WK_APPLICATION_ERROR', message, { origin: 'local' });
    this.args = args;
  }
}

/**
 * The server answered a command with a failure: a response with status `error` (`errorType`
 * `'command'`), or an error-response frame (`errorType` as the frame says: `'server'`, ...).
 */
export class MuxCommandFailedError extends WirekitError {
  readonly errorType: string;
  /** The message as the server formatted it. */
  readonly serverMessage: string;
  constructor(errorType: string, message: string) {
    super('WK_COMMAND_FAILED', `${errorType} error from server: ${message}`, { origin: 'remote' });
    this.errorType = errorType;
    this.serverMessage = message;
  }
}

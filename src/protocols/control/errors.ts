import { WirekitError, type ErrorCode } from '../../errors.js';

/**
 * Thrown by a command handler to fail the command: its message is sent to the client as
 * `{"status": false, "message": <message>}`, plus `"code": <code>` when a `code` is given
 * (`new CommandError('no such container', { code: 'WK_NOT_FOUND' })`). Code `WK_COMMAND_FAILED`
 * unless one is given.
 */
export class CommandError extends WirekitError {
  /** The code sent in the error reply; `undefined` when none was given (the reply has no `code`). */
  readonly replyCode: ErrorCode | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(options?.code ?? 'WK_COMMAND_FAILED', message, { origin: 'local', cause: options?.cause });
    this.replyCode = options?.code;
  }
}

/**
 * A command failed on the server: `message` is the text the server sent, `remoteCode` the `code`
 * member of its reply (if any), `extra` every member besides `status` and `message`.
 * Code `WK_REMOTE_COMMAND_FAILED`.
 */
export class RemoteCommandError extends WirekitError {
  /** The command that failed. */
  readonly command: string;
  /** The server's error message, verbatim. */
  readonly serverMessage: string;
  /** The reply's `code` member when it is a string. */
  readonly remoteCode: string | undefined;
  /** The reply's other members (besides `status` and `message`), when it has some. */
  readonly extra: Readonly<Record<string, unknown>> | undefined;
  constructor(command: string, serverMessage: string, extra?: Record<string, unknown>) {
    super('WK_REMOTE_COMMAND_FAILED', serverMessage, { origin: 'remote' });
    this.command = command;
    this.serverMessage = serverMessage;
    this.extra = extra;
    this.remoteCode = typeof extra?.['code'] === 'string' ? extra['code'] : undefined;
  }
}

/** The peer broke the control protocol (invalid JSON from a server, a reply nobody asked for). */
export class ControlProtocolError extends WirekitError {
  constructor(message: string, options: { cause?: unknown; origin: 'local' | 'remote' }) {
    super('WK_CONTROL_PROTOCOL', message, { origin: options.origin, cause: options.cause });
  }
}

/**
 * A request named no registered command. Its reply is `unknown command '<name>'` without a
 * `code` member by default (osctld's bytes). Code `WK_UNKNOWN_COMMAND`.
 */
export class UnknownCommandError extends WirekitError {
  readonly command: string;
  constructor(command: string) {
    super('WK_UNKNOWN_COMMAND', `unknown command '${command}'`, { origin: 'remote' });
    this.command = command;
  }
}

/**
 * A `ControlServer` with an `authenticate` step refused a command: sent before authenticating,
 * or the credentials were wrong. Its reply carries `"code": "WK_AUTH"`. Code `WK_AUTH`.
 */
export class ControlAuthError extends WirekitError {
  constructor(message: string) {
    super('WK_AUTH', message, { origin: 'remote' });
  }
}

/** The server's version greeting is missing or outside the range the client requires. */
export class VersionMismatchError extends WirekitError {
  readonly version: string | undefined;
  constructor(version: string | undefined, required: string) {
    super(
      'WK_VERSION_MISMATCH',
      version === undefined
        ? `server sent no version, ${required} required`
        : `server version ${version} does not satisfy ${required}`,
      { origin: 'remote' },
    );
    this.version = version;
  }
}

/** A Unix socket path is held by a live server (one class for every module: channels' own). */
export { AddressInUseError } from '../../channels/errors.js';

/** An operation is not allowed in the connection's current state (a call after a hijack, ...). */
export class ControlStateError extends WirekitError {
  constructor(message: string) {
    super('WK_CONTROL_STATE', message, { origin: 'local' });
  }
}

import { WirekitError } from '../../errors.js';

/**
 * Thrown by a command handler to fail the command: its message is sent to the client as
 * `{"status": false, "message": <message>}`. Any other exception becomes `internal error`.
 */
export class CommandError extends WirekitError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WK_COMMAND_FAILED', message, { origin: 'local', cause: options?.cause });
  }
}

/** A command failed on the server: `message` is the text the server sent. */
export class RemoteCommandError extends WirekitError {
  /** The command that failed. */
  readonly command: string;
  /** The server's error message, verbatim. */
  readonly serverMessage: string;
  constructor(command: string, serverMessage: string) {
    super('WK_REMOTE_COMMAND_FAILED', serverMessage, { origin: 'remote' });
    this.command = command;
    this.serverMessage = serverMessage;
  }
}

/** The peer broke the control protocol (invalid JSON from a server, a reply nobody asked for). */
export class ControlProtocolError extends WirekitError {
  constructor(message: string, options?: { cause?: unknown; origin?: 'local' | 'remote' }) {
    super('WK_CONTROL_PROTOCOL', message, { origin: options?.origin ?? 'remote', cause: options?.cause });
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

/** A Unix socket path is held by a live server (or by a file that is not a socket). */
export class AddressInUseError extends WirekitError {
  readonly address: string;
  constructor(address: string, detail: string) {
    super('WK_ADDRESS_IN_USE', `${address}: ${detail}`, { origin: 'local' });
    this.address = address;
  }
}

/** An operation is not allowed in the connection's current state (a call after a hijack, ...). */
export class ControlStateError extends WirekitError {
  constructor(message: string) {
    super('WK_CONTROL_STATE', message, { origin: 'local' });
  }
}

import { WirekitError } from '../../errors.js';

/**
 * The READY/OK handshake failed: the peer sent something else, sent an undecodable message, or
 * closed the connection before finishing it. `code` is `WK_HANDSHAKE`.
 */
export class HandshakeError extends WirekitError {
  constructor(message: string, options: { cause?: unknown; origin: 'local' | 'remote' }) {
    super('WK_HANDSHAKE', message, options);
  }
}

/**
 * The socket path is taken: a live server answers on it (`WK_ADDRESS_IN_USE`), or the path exists
 * and is not a socket (`WK_PATH_NOT_SOCKET`). wirekit never removes either.
 */
export class SocketPathError extends WirekitError {
  readonly path: string;
  constructor(code: 'WK_ADDRESS_IN_USE' | 'WK_PATH_NOT_SOCKET', path: string, message: string) {
    super(code, message, { origin: 'local' });
    this.path = path;
  }
}

/**
 * A child process started by `launchChild` exited (or could not be started) while the parent
 * still expected something from it. Carries its exit code or signal and the tail of its stderr.
 */
export class ChildExitedError extends WirekitError {
  /** Exit code, or null when the child was killed by a signal or never started. */
  readonly exitCode: number | null;
  /** The signal that killed the child, if any. */
  readonly signal: NodeJS.Signals | null;
  /** The last bytes the child wrote to stderr, decoded as UTF-8. */
  readonly stderr: string;
  constructor(what: string, exitCode: number | null, signal: NodeJS.Signals | null, stderr: string, cause?: unknown) {
    const how = signal ? `was killed by ${signal}` : exitCode === null ? 'could not be started' : `exited with code ${exitCode}`;
    const tail = stderr.trim() ? `; stderr: ${stderr.trim().slice(-2000)}` : '';
    super('WK_CHILD_EXITED', `child process ${how} ${what}${tail}`, { cause, origin: 'remote' });
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

/** The server was closed while `accept()` waited, or `accept()` was called after `close()`. `WK_SERVER_CLOSED`. */
export class ServerClosedError extends WirekitError {
  constructor() {
    super('WK_SERVER_CLOSED', 'server is closed', { origin: 'local' });
  }
}

/**
 * The caller misused the delimited API: `accept()` while another `accept()` waits (`WK_BUSY`),
 * `listen()` on a server that already listens (`WK_BUSY`), or an address this Unix-socket
 * protocol cannot listen on (`WK_ADDRESS_UNSUPPORTED`: a `{ host, port }` address, since the
 * protocol's privacy rests on the socket file's 0600 mode).
 */
export class DelimitedUsageError extends WirekitError {
  constructor(code: 'WK_BUSY' | 'WK_ADDRESS_UNSUPPORTED', message: string) {
    super(code, message, { origin: 'local' });
  }
}

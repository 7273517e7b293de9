import { WirekitError } from '../../errors.js';

/**
 * The READY/OK handshake failed: the peer sent something else, sent an undecodable message, or
 * closed the connection before finishing it. `code` is `WK_HANDSHAKE`.
 */
export class HandshakeError extends WirekitError {
  constructor(message: string, options?: { cause?: unknown; origin?: 'local' | 'remote' }) {
    super('WK_HANDSHAKE', message, options);
  }
}

/**
 * The socket path is taken: a live server answers on it (`WK_SOCKET_IN_USE`), or the path exists
 * and is not a socket (`WK_PATH_NOT_SOCKET`). wirekit never removes either.
 */
export class SocketPathError extends WirekitError {
  readonly path: string;
  constructor(code: 'WK_SOCKET_IN_USE' | 'WK_PATH_NOT_SOCKET', path: string, message: string) {
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
    super('WK_CHILD_EXITED', `child process ${how} ${what}${tail}`, { cause });
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

/** Connecting to the server's socket failed (no such socket, refused, permission denied). `WK_CONNECT_FAILED`. */
export class ConnectError extends WirekitError {
  readonly path: string;
  constructor(path: string, cause: unknown) {
    super('WK_CONNECT_FAILED', `cannot connect to ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, origin: 'local' });
    this.path = path;
  }
}

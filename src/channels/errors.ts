/**
 * Every error class of the channels module (sans-I/O apart from the paths they name). The Unix
 * listener, the channels and `channels/index.ts` re-export them from here.
 */
import { WirekitError } from '../errors.js';

/** Thrown by reads on a channel that was switched, hijacked or closed locally. Code `WK_CHANNEL_DETACHED`. */
export class ChannelDetachedError extends WirekitError {
  constructor(what: string) {
    super('WK_CHANNEL_DETACHED', `channel was ${what}; use the object it returned`, { origin: 'local' });
  }
}

/** Codes of `UnixSocketPathError`. */
export type UnixSocketPathErrorCode = 'WK_ADDRESS_IN_USE' | 'WK_PATH_NOT_SOCKET' | 'WK_SOCKET_PATH_TOO_LONG';

/** A Unix socket path cannot be used. `path` is the absolute path concerned. */
export class UnixSocketPathError extends WirekitError {
  readonly path: string;
  constructor(code: UnixSocketPathErrorCode, socketPath: string, message: string, options?: { cause?: unknown }) {
    super(code, message, { origin: 'local', cause: options?.cause });
    this.path = socketPath;
  }
}

/**
 * Why a socket path counts as in use: a server accepted a probe connection (`live`), did not
 * answer within the probe timeout (`unresponsive`, maybe a full backlog: never treated as stale),
 * or the name kept changing under us (`contended`).
 */
export type SocketInUseReason = 'live' | 'unresponsive' | 'contended';

/**
 * Someone else holds the socket path; it was left untouched. Code `WK_ADDRESS_IN_USE` (the one
 * code for "someone already listens there", whatever the address kind; it was `WK_SOCKET_IN_USE`).
 */
export class SocketInUseError extends UnixSocketPathError {
  readonly reason: SocketInUseReason;
  constructor(socketPath: string, reason: SocketInUseReason, detail?: string) {
    const why =
      reason === 'live'
        ? 'a server is listening on it'
        : reason === 'unresponsive'
          ? `a socket there did not answer within ${detail ?? '?'} ms (treated as live)`
          : `the name kept changing while examined${detail ? ` (${detail})` : ''}`;
    super('WK_ADDRESS_IN_USE', socketPath, `cannot listen on ${socketPath}: ${why}; refusing to take it over`);
    this.reason = reason;
  }
}

/** The path exists and is not a socket; it was left untouched. Code `WK_PATH_NOT_SOCKET`. */
export class NotASocketError extends UnixSocketPathError {
  constructor(socketPath: string) {
    super('WK_PATH_NOT_SOCKET', socketPath, `cannot listen on ${socketPath}: it exists and is not a socket; refusing to replace it`);
  }
}

/**
 * Someone already listens on an address (a live server on a Unix socket path, a TCP port in use).
 * Code `WK_ADDRESS_IN_USE`. One class for the agent daemon, the control server and the hub.
 */
export class AddressInUseError extends WirekitError {
  readonly address: string;
  constructor(address: string, detail: string) {
    super('WK_ADDRESS_IN_USE', `${address}: ${detail}`, { origin: 'local' });
    this.address = address;
  }
}

/** Connecting failed (no such socket, refused, unreachable, TLS handshake refused). Code `WK_CONNECT`. */
export class ConnectError extends WirekitError {
  readonly address: string;
  constructor(address: string, cause: unknown) {
    super('WK_CONNECT', `cannot connect to ${address}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, origin: 'local' });
    this.address = address;
  }
}

import { WirekitError } from '../errors.js';

/** The daemon refused the connection's credentials (missing or wrong token). Code `WK_AUTH`. */
export class AuthError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote') {
    super('WK_AUTH', message, { origin });
  }
}

/** A path given by the peer would leave the daemon's root directory. Code `WK_PATH_ESCAPE`. */
export class PathEscapeError extends WirekitError {
  constructor(readonly path: string) {
    super('WK_PATH_ESCAPE', `path ${JSON.stringify(path)} is outside the allowed root`, { origin: 'remote' });
  }
}

/** A transferred file does not match its declared size or SHA-256 digest. Code `WK_CHECKSUM`. */
export class ChecksumError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote') {
    super('WK_CHECKSUM', message, { origin });
  }
}

/** A limit (concurrent sessions, message size) was reached. Code `WK_LIMIT`. */
export class LimitError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote') {
    super('WK_LIMIT', message, { origin });
  }
}

/** The peer broke the session protocol (unexpected frame, bad payload). Code `WK_PROTOCOL`. */
export class SessionProtocolError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote') {
    super('WK_PROTOCOL', message, { origin });
  }
}

/** Another daemon is already listening on the socket path (channels' class, shared by every module). */
export { AddressInUseError } from '../channels/errors.js';

/** The peer stopped answering keepalive pings. Code `WK_PEER_DEAD`. */
export class PeerDeadError extends WirekitError {
  constructor(timeoutMs: number) {
    super('WK_PEER_DEAD', `peer sent nothing for ${timeoutMs} ms (keepalive timeout)`, { origin: 'remote' });
  }
}

/** The hash worker thread failed or exited; every hash it held fails with this. Code `WK_HASH_WORKER`. */
export class HashWorkerError extends WirekitError {
  constructor(message: string, cause?: unknown) {
    super('WK_HASH_WORKER', message, { origin: 'local', cause });
  }
}

/** A hash was used after its digest or abort (a bug in the caller). Code `WK_HASH_STATE`. */
export class HashStateError extends WirekitError {
  constructor(message: string) {
    super('WK_HASH_STATE', message, { origin: 'local' });
  }
}

/** The hub refused this agent for good (wrong token): retrying cannot help. Code `WK_AUTH`. */
export class HubRefusedError extends WirekitError {
  constructor(code: string, message: string) {
    super(code === 'WK_AUTH' ? 'WK_AUTH' : 'WK_PROTOCOL', `the hub refused this agent: ${message}`, { origin: 'remote' });
  }
}

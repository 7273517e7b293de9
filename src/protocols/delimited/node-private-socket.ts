/**
 * The private (0600) Unix socket of the delimited protocol, as thin wrappers around the channels driver
 * `listenUnixSocket` (src/channels/unix-listener.ts), which does the work: bind inside a fresh
 * 0700 directory, chmod there, then `link` into place (atomic, never replacing anything), so the
 * socket is never reachable with another mode and the process umask is never touched. A stale
 * socket (connect refused) is replaced, a live one or anything that is not a socket is refused.
 *
 * These wrappers keep this module's API: options as before, and errors as `SocketPathError`
 * (`WK_ADDRESS_IN_USE`, `WK_PATH_NOT_SOCKET`) with the driver's error as `cause`.
 */
import net from 'node:net';
import {
  UnixSocketPathError,
  clearStaleUnixSocket,
  connectProbe,
  listenUnixSocket,
  type UnixListener,
} from '../../channels/unix-listener.js';
import { SocketPathError } from './errors.js';

export interface PrivateListenOptions {
  /** File mode of the socket. Default 0o600. */
  mode?: number;
  /** How long a liveness probe of an existing socket may take, in ms. Default 1000. */
  probeTimeout?: number;
  /** listen() backlog. Default 511, as Node's own default. */
  backlog?: number;
  /** Cancels listening (probe included) with an `AbortedError`. */
  signal?: AbortSignal;
}

/** A listening private socket (the same object as the channels driver's `UnixListener`). */
export type PrivateListener = UnixListener;

/** What a probe of an existing socket path found. */
export type ProbeResult = 'live' | 'stale' | 'missing';

/** The driver's path errors as this module's `SocketPathError`; anything else unchanged. */
function asSocketPathError(err: unknown): unknown {
  if (!(err instanceof UnixSocketPathError) || (err.code !== 'WK_ADDRESS_IN_USE' && err.code !== 'WK_PATH_NOT_SOCKET')) return err;
  const e = new SocketPathError(err.code, err.path, err.message);
  Object.defineProperty(e, 'cause', { value: err, configurable: true, writable: true });
  return e;
}

/**
 * Finds out whether a server listens on the Unix socket at `socketPath`: `'live'` if a connection
 * is accepted (it is closed at once) or pending, `'stale'` if refused, `'missing'` if the path
 * vanished. It does not look at the file type (a regular file refuses too); `clearStaleSocket`
 * and `listenPrivate` do. For the type too, use the channels driver's `probeUnixSocket`.
 */
export async function probeSocket(socketPath: string, timeout = 1000): Promise<ProbeResult> {
  const found = await connectProbe(socketPath, { timeout });
  return found === 'unresponsive' ? 'live' : found;
}

/** Removes a stale socket at `socketPath`; throws `SocketPathError` for a live socket or a non-socket. */
export async function clearStaleSocket(socketPath: string, probeTimeout = 1000): Promise<void> {
  try {
    await clearStaleUnixSocket(socketPath, { timeout: probeTimeout });
  } catch (err) {
    throw asSocketPathError(err);
  }
}

/**
 * Listens on a Unix socket at `socketPath` that is never reachable with a mode other than
 * `options.mode` (0600 by default). `server` is the server to listen with (closed on failure).
 */
export async function listenPrivate(socketPath: string, options: PrivateListenOptions = {}, server = net.createServer()): Promise<PrivateListener> {
  try {
    return await listenUnixSocket(socketPath, { ...options, server });
  } catch (err) {
    throw asSocketPathError(err);
  }
}

/**
 * Listening helpers: a Unix socket that is mode 0600 from the first instant, stale socket files
 * replaced, live ones refused (the channels driver `listenUnixSocket` does it: bound inside a
 * private directory, chmod-ed, then linked into place); or TCP, on loopback by default.
 */
import net from 'node:net';
import type { SocketAddress } from '../../channels/connect.js';
import { UnixSocketPathError, connectProbe, listenUnixSocket } from '../../channels/unix-listener.js';
import { AddressInUseError } from './errors.js';

/** How a Unix socket is created (ignored for TCP). */
export interface UnixSocketOptions {
  /** File mode of the socket (default 0o600). */
  mode?: number;
  /** How long to wait when probing an existing socket file for a live server (default 1000 ms). */
  probeTimeout?: number;
  /** listen() backlog (default 511, Node's default). */
  backlog?: number;
}

/** @deprecated use `SocketAddress` (`{ path }`) and pass `UnixSocketOptions` beside it. */
export interface UnixListenAddress extends UnixSocketOptions {
  path: string;
}

/** @deprecated use `SocketAddress` (`{ host, port }`); a missing `host` means 127.0.0.1. */
export interface TcpListenAddress {
  host?: string;
  port: number;
}

/** @deprecated use `SocketAddress`. */
export type ListenAddress = UnixListenAddress | TcpListenAddress;

/** A listening socket server. */
export interface SocketListener {
  /** The Node server (for `maxConnections`, `ref`/`unref`, ...). */
  readonly server: net.Server;
  /** The socket path, or the TCP address actually bound (with the real port when 0 was asked). */
  readonly address: string | net.AddressInfo;
  /** Stops accepting; resolves when the server is closed and a Unix socket file is removed. */
  close(): Promise<void>;
}

function isUnix(a: SocketAddress | ListenAddress): a is UnixListenAddress {
  return typeof (a as UnixListenAddress).path === 'string';
}

/**
 * Listens on `address` (a Unix socket path or a TCP host and port) and calls `onSocket` for
 * every accepted connection. Connections allow half-open (the server decides when to end its side).
 */
export async function listenSocket(
  address: SocketAddress | ListenAddress,
  onSocket: (socket: net.Socket) => void,
  options: UnixSocketOptions = {},
): Promise<SocketListener> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, onSocket);
  if (isUnix(address)) {
    return listenUnix(server, address.path, {
      mode: options.mode ?? address.mode,
      probeTimeout: options.probeTimeout ?? address.probeTimeout,
      backlog: options.backlog ?? address.backlog,
    });
  }
  const tcp = address as { host?: string; port: number };
  await listenOn(server, { host: tcp.host ?? '127.0.0.1', port: tcp.port });
  return {
    server,
    address: server.address() as net.AddressInfo,
    close: () => closeServer(server),
  };
}

function listenOn(server: net.Server, options: net.ListenOptions): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.removeListener('error', onError);
      resolvePromise();
    });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolvePromise) => {
    if (!server.listening) return resolvePromise();
    server.close(() => resolvePromise());
  });
}

async function listenUnix(server: net.Server, path: string, options: UnixSocketOptions): Promise<SocketListener> {
  // 'close' comes once the server stopped and its last connection ended (what close() waits for).
  const closed = new Promise<void>((resolvePromise) => server.once('close', () => resolvePromise()));
  let listener;
  try {
    listener = await listenUnixSocket(path, {
      server,
      mode: options.mode ?? 0o600,
      probeTimeout: options.probeTimeout ?? 1000,
      backlog: options.backlog,
    });
  } catch (err) {
    if (err instanceof UnixSocketPathError && (err.code === 'WK_ADDRESS_IN_USE' || err.code === 'WK_PATH_NOT_SOCKET')) {
      const detail = err.code === 'WK_PATH_NOT_SOCKET' ? 'exists and is not a socket' : 'a live server is listening on it';
      const e = new AddressInUseError(err.path, detail);
      Object.defineProperty(e, 'cause', { value: err, configurable: true, writable: true });
      throw e;
    }
    throw err;
  }
  const unix = listener;
  return {
    server,
    address: unix.path,
    async close() {
      // Removes the socket file (only if still ours) and stops accepting, then waits for the
      // connections to end, as server.close(callback) does.
      await unix.close();
      await closed;
    },
  };
}

/** True when something accepts connections on `path` (or does not answer within `timeout`). */
export async function probe(path: string, timeout: number): Promise<boolean> {
  try {
    const found = await connectProbe(path, { timeout });
    return found === 'live' || found === 'unresponsive';
  } catch {
    // An unexpected failure (EACCES, ...): not known to be free.
    return true;
  }
}

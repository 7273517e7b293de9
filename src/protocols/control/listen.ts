/**
 * Listening helpers: a Unix socket that is mode 0600 from the first instant (it is bound inside
 * a private directory, chmod-ed, then renamed into place), stale socket files replaced, live ones
 * refused; or TCP, on loopback by default.
 */
import { chmod, lstat, mkdtemp, rename, rm, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { AddressInUseError } from './errors.js';

/** A Unix socket address. */
export interface UnixListenAddress {
  path: string;
  /** File mode of the socket (default 0o600). */
  mode?: number;
  /** How long to wait when probing an existing socket file for a live server (default 1000 ms). */
  probeTimeout?: number;
}

/** A TCP address; `host` defaults to the loopback address 127.0.0.1. */
export interface TcpListenAddress {
  host?: string;
  port: number;
}

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

function isUnix(a: ListenAddress): a is UnixListenAddress {
  return typeof (a as UnixListenAddress).path === 'string';
}

/**
 * Listens on `address` and calls `onSocket` for every accepted connection. Connections allow
 * half-open (the server decides when to end its side).
 */
export async function listenSocket(address: ListenAddress, onSocket: (socket: net.Socket) => void): Promise<SocketListener> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, onSocket);
  if (isUnix(address)) return listenUnix(server, address);
  await listenOn(server, { host: address.host ?? '127.0.0.1', port: address.port });
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

async function listenUnix(server: net.Server, address: UnixListenAddress): Promise<SocketListener> {
  const path = resolve(address.path);
  const mode = address.mode ?? 0o600;
  // mkdtemp creates the directory 0700: nobody else can reach the socket before the chmod.
  const dir = await mkdtemp(join(dirname(path), '.wirekit-'));
  const tmp = join(dir, 's');
  try {
    await listenOn(server, { path: tmp });
    await chmod(tmp, mode);
    await checkExisting(path, address.probeTimeout ?? 1000);
    // rename() replaces a stale socket file atomically.
    await rename(tmp, path);
  } catch (err) {
    await closeServer(server);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  await rm(dir, { recursive: true, force: true });
  const ino = (await lstat(path)).ino;
  return {
    server,
    address: path,
    async close() {
      await closeServer(server);
      // Remove the socket file only if it is still ours (another server may have replaced it).
      const st = await lstat(path).catch(() => undefined);
      if (st && st.ino === ino) await unlink(path).catch(() => undefined);
    },
  };
}

/** Throws `AddressInUseError` when `path` holds a live server or is not a socket. */
async function checkExisting(path: string, timeout: number): Promise<void> {
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return;
  if (!st.isSocket()) throw new AddressInUseError(path, 'exists and is not a socket');
  if (await probe(path, timeout)) throw new AddressInUseError(path, 'a live server is listening on it');
}

/** True when something accepts connections on `path` (or does not answer within `timeout`). */
export function probe(path: string, timeout: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const sock = net.connect({ path });
    const timer = setTimeout(() => finish(true), timeout);
    const finish = (live: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolvePromise(live);
    };
    sock.once('connect', () => finish(true));
    sock.once('error', (err: NodeJS.ErrnoException) => finish(!(err.code === 'ECONNREFUSED' || err.code === 'ENOENT')));
  });
}

/**
 * Creating a listening Unix socket that is mode 0600 from the first instant it is reachable,
 * without touching the process umask (which is process-wide: the seed's `os.umask(0o177)` around
 * `bind()` changes the mode of files other threads create meanwhile).
 *
 * How: bind inside a fresh directory made by `mkdtemp` (mode 0700, so nobody else can reach
 * anything in it), `chmod` the socket there, then hard-link it to its final name. `link()` is atomic
 * and fails if the name exists, so a live socket created meanwhile by someone else is never
 * replaced; when hard links are not supported, an atomic `rename()` is used instead. The private
 * directory is on the same filesystem as the final path (it is created beside it), so the link or
 * rename cannot cross devices.
 *
 * Before that, an existing path is examined: a socket nobody listens on (connect gets
 * ECONNREFUSED) is stale and removed; a live one, or anything that is not a socket, is refused.
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SocketPathError } from './errors.js';

export interface PrivateListenOptions {
  /** File mode of the socket. Default 0o600. */
  mode?: number;
  /** How long a liveness probe of an existing socket may take, in ms. Default 1000. */
  probeTimeout?: number;
  /** listen() backlog. Default 511, as Node's own default. */
  backlog?: number;
}

export interface PrivateListener {
  server: net.Server;
  /** Absolute path of the socket. */
  path: string;
  /** Stops listening and removes the socket file if it is still the one created here. */
  close(): Promise<void>;
}

/** What a probe of an existing socket path found. */
export type ProbeResult = 'live' | 'stale' | 'missing';

/**
 * Finds out whether a server listens on the Unix socket at `socketPath`: `'live'` if a connection
 * is accepted (it is closed at once) or pending, `'stale'` if refused, `'missing'` if the path
 * vanished.
 */
export function probeSocket(socketPath: string, timeout = 1000): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: socketPath });
    const done = (r: ProbeResult | Error) => {
      clearTimeout(timer);
      s.removeAllListeners('connect');
      s.on('error', () => {});
      s.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    // Neither accepted nor refused in time: someone holds it with a full backlog. Live.
    const timer = setTimeout(() => done('live'), timeout);
    s.once('connect', () => done('live'));
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('stale');
      else if (err.code === 'ENOENT') done('missing');
      else if (err.code === 'EAGAIN') done('live');
      else done(err);
    });
  });
}

/** Removes a stale socket at `socketPath`; throws `SocketPathError` for a live socket or a non-socket. */
export async function clearStaleSocket(socketPath: string, probeTimeout = 1000): Promise<void> {
  let st;
  try {
    st = await fsp.lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    throw new SocketPathError('WK_PATH_NOT_SOCKET', socketPath, `${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const found = await probeSocket(socketPath, probeTimeout);
  if (found === 'live') throw new SocketPathError('WK_SOCKET_IN_USE', socketPath, `a server is listening on ${socketPath}; refusing to take it over`);
  if (found === 'stale') {
    try {
      await fsp.unlink(socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

function listenOn(server: net.Server, socketPath: string, backlog: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.removeListener('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ path: socketPath, backlog });
  });
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    // close() stops accepting at once; its callback waits for open connections, which belong to
    // the caller, so do not wait for it.
    server.close();
    resolve();
  });
}

/**
 * Listens on a Unix socket at `socketPath` that is never reachable with a mode other than
 * `options.mode` (0600 by default). See the module comment for how.
 */
export async function listenPrivate(socketPath: string, options: PrivateListenOptions = {}, server = net.createServer()): Promise<PrivateListener> {
  const mode = options.mode ?? 0o600;
  const finalPath = path.resolve(socketPath);
  await clearStaleSocket(finalPath, options.probeTimeout);
  const dir = await fsp.mkdtemp(path.join(path.dirname(finalPath), '.wk-'));
  const tmpPath = path.join(dir, 's');
  try {
    await listenOn(server, tmpPath, options.backlog ?? 511);
    await fsp.chmod(tmpPath, mode);
    try {
      await fsp.link(tmpPath, finalPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new SocketPathError('WK_SOCKET_IN_USE', finalPath, `${finalPath} was created by someone else meanwhile; refusing to replace it`);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw err;
      // No hard links here: fall back to rename, atomic too, after checking the name again.
      await clearStaleSocket(finalPath, options.probeTimeout);
      await fsp.rename(tmpPath, finalPath);
    }
  } catch (err) {
    await closeServer(server);
    await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
  await fsp.rm(dir, { recursive: true, force: true });
  const st = await fsp.stat(finalPath);
  let closed = false;
  return {
    server,
    path: finalPath,
    async close() {
      if (closed) return;
      closed = true;
      await closeServer(server);
      // Remove the socket file only if it is still ours (same inode).
      try {
        const now = await fsp.lstat(finalPath);
        if (now.ino === st.ino && now.dev === st.dev) await fsp.unlink(finalPath);
      } catch {
        // already gone
      }
    },
  };
}

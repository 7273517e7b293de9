/**
 * Node driver: listening on a private Unix socket.
 *
 * `listenUnixSocket(path)` gives a listening `net.Server` whose socket file has the wanted mode
 * (0600 by default) from the first instant it exists under `path`, without touching the process
 * umask (it is process-wide: narrowing it around `bind()` changes the mode of files other threads
 * create meanwhile).
 *
 * How:
 * 0. What holds `path` is examined first: not a socket → `NotASocketError` (never removed); a
 *    socket that accepts a connection (or does not answer within `probeTimeout`) →
 *    `SocketInUseError`; nothing, or a socket that refuses (ECONNREFUSED: its server is gone, the
 *    socket is stale) → go on.
 * 1. `mkdtemp` a private directory beside `path` (forced to 0700; same filesystem, so links and
 *    renames cannot cross devices), bind the socket inside it and `chmod` it there. Nobody else can
 *    reach it while its mode is still the umask's.
 * 2. Publish it with `link(tmp, path)`: atomic, and it fails with EEXIST instead of replacing
 *    anything, so two listeners racing for one path get exactly one winner.
 * 3. On EEXIST, examine the name again as in step 0 (it may have changed meanwhile). A stale
 *    socket is removed without ever unlinking a file nobody looked at: under a per-path lock (a
 *    Linux abstract socket, released by the kernel if its holder dies; see `removalLock`), and
 *    only if the name still holds the inode that refused, it is renamed into the private
 *    directory (atomic) and removed there once it refuses again; anything else that was moved is
 *    put back with `link`. Then step 2 again (a bounded number of times).
 * 4. Where the filesystem has no hard links (EPERM, ENOTSUP, ...), step 2 falls back to an `lstat`
 *    (name free?) followed by `rename`, under the same lock. Linux tmpfs, ext4, xfs and btrfs all
 *    support links to sockets.
 *
 * `close()` removes the socket file only if the name still refers to this socket (same device and
 * inode), and does so before closing the server, so while it checks no correct peer can take the
 * name (it would find the socket live).
 */
import { createHash } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, WirekitError } from '../errors.js';
import { NotASocketError, SocketInUseError, UnixSocketPathError } from './errors.js';

/** Default time a liveness probe may take, in ms. */
export const DEFAULT_PROBE_TIMEOUT = 1000;
/** Default `listen()` backlog: Node's own default. */
export const DEFAULT_UNIX_BACKLOG = 511;
/** How many times a contended name is re-examined before giving up. */
const MAX_ATTEMPTS = 8;
/** Name, inside the private directory, of a file moved aside to be checked. */
const ASIDE = 'stale';
/** Longest socket path the kernel takes (sun_path minus its NUL); libuv silently truncates longer ones. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

export { UnixSocketPathError, SocketInUseError, NotASocketError } from './errors.js';
export type { UnixSocketPathErrorCode, SocketInUseReason } from './errors.js';

/**
 * What is at a socket path: nothing (`missing`), something that is not a socket (`not-socket`), a
 * socket whose server is gone (`stale`: connect is refused), one that accepts (`live`), or one
 * that neither accepts nor refuses within the timeout (`unresponsive`).
 */
export type UnixSocketState = 'missing' | 'not-socket' | 'stale' | 'live' | 'unresponsive';

export interface UnixProbeOptions {
  /** How long the probe connection may take, in ms. Default 1000. */
  timeout?: number;
  /** Cancels the probe with an `AbortedError`. */
  signal?: AbortSignal;
}

export interface UnixListenOptions {
  /** File mode of the socket. Default 0o600. */
  mode?: number;
  /** `listen()` backlog. Default 511 (Node's default). */
  backlog?: number;
  /** How long a liveness probe of an existing socket may take, in ms. Default 1000. */
  probeTimeout?: number;
  /** Cancels the whole setup with an `AbortedError` (the server is closed, nothing is left behind). */
  signal?: AbortSignal;
  /**
   * The server to listen with (it must not be listening yet); default a fresh `net.createServer()`.
   * On failure it is closed.
   */
  server?: net.Server;
}

/** A server listening on a Unix socket created by `listenUnixSocket`. */
export interface UnixListener {
  /** The Node server. Its `address()` names the temporary path it was bound at: use `path`. */
  readonly server: net.Server;
  /** Absolute path of the socket. */
  readonly path: string;
  /**
   * Removes the socket file if the path still refers to this socket, then stops accepting.
   * Connections already accepted stay open (they belong to the caller). Idempotent.
   */
  close(): Promise<void>;
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(what, signal.reason);
}

function checkLength(socketPath: string, finalPath: string): void {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new UnixSocketPathError(
      'WK_SOCKET_PATH_TOO_LONG',
      finalPath,
      socketPath === finalPath
        ? `cannot listen on ${finalPath}: longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have`
        : `cannot listen on ${finalPath}: the temporary path beside it (${socketPath}) is longer than the ${MAX_SOCKET_PATH_BYTES} bytes a Unix socket path may have; use a shorter path`,
    );
  }
}

/**
 * Connects to `socketPath` once and says what answered, without looking at the file type (a
 * regular file refuses too: `probeUnixSocket` checks the type first). Rejects with an
 * `AbortedError` when `signal` fires, and with the system error for anything unexpected (EACCES).
 */
export function connectProbe(socketPath: string, options: UnixProbeOptions = {}): Promise<Exclude<UnixSocketState, 'not-socket'>> {
  const { signal } = options;
  const timeout = options.timeout ?? DEFAULT_PROBE_TIMEOUT;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError(`probe of ${socketPath}`, signal.reason));
    const s = net.createConnection({ path: socketPath });
    const done = (r: Exclude<UnixSocketState, 'not-socket'> | Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      s.removeAllListeners('connect');
      s.removeAllListeners('error');
      s.on('error', () => {});
      s.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const onAbort = () => done(new AbortedError(`probe of ${socketPath}`, signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    // Neither accepted nor refused in time: a server with a full backlog, or a stuck one. Never stale.
    const timer = setTimeout(() => done('unresponsive'), Math.min(timeout, 0x7fffffff));
    s.once('connect', () => done('live'));
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('stale');
      else if (err.code === 'ENOENT') done('missing');
      // A full backlog makes a non-blocking Unix connect fail with EAGAIN: someone listens.
      else if (err.code === 'EAGAIN') done('live');
      else done(err);
    });
  });
}

/** Says what is at `socketPath` (see `UnixSocketState`); looks at the file type before connecting. */
export async function probeUnixSocket(socketPath: string, options: UnixProbeOptions = {}): Promise<UnixSocketState> {
  checkAborted(options.signal, `probe of ${socketPath}`);
  const st = await lstatOrUndefined(socketPath);
  if (st === undefined) return 'missing';
  if (!st.isSocket()) return 'not-socket';
  return connectProbe(socketPath, options);
}

/**
 * A lock serializing, among wirekit processes on this host, the steps that remove a name or
 * publish one without hard links: a Linux abstract Unix socket named after the parent directory
 * (device, inode) and the base name. Binding it is atomic and exclusive, and the kernel releases it
 * when its holder exits, so a crashed holder never leaves a stale lock. Nobody else is kept out
 * (the lock is cooperative, and anyone could bind the name): when it cannot be had within twice
 * the probe timeout, or on other systems, the steps run without it, still verified (see
 * `clearName`), but then three or more starters racing on one stale path could, rarely, leave two
 * of them listening (one unreachable). Resolves to a release function.
 */
async function removalLock(finalPath: string, probe: UnixProbeOptions): Promise<() => void> {
  if (process.platform !== 'linux') return () => {};
  const parent = await fsp.stat(path.dirname(finalPath));
  const key = createHash('sha256').update(`${parent.dev}:${parent.ino}:${path.basename(finalPath)}`).digest('hex').slice(0, 40);
  const name = `\0wirekit-unix-listener/${key}`;
  const deadline = Date.now() + 2 * (probe.timeout ?? DEFAULT_PROBE_TIMEOUT);
  for (;;) {
    checkAborted(probe.signal, `locking ${finalPath}`);
    const lock = net.createServer((s) => s.destroy());
    try {
      await listenOn(lock, name, 1);
      lock.unref();
      return () => lock.close();
    } catch (err) {
      if (errno(err) !== 'EADDRINUSE') return () => {};
    }
    if (Date.now() >= deadline) return () => {};
    try {
      await sleep(2 + Math.random() * 8, undefined, { signal: probe.signal });
    } catch {
      throw new AbortedError(`locking ${finalPath}`, probe.signal?.reason);
    }
  }
}

async function withRemovalLock<T>(finalPath: string, probe: UnixProbeOptions, fn: () => Promise<T>): Promise<T> {
  const release = await removalLock(finalPath, probe);
  try {
    return await fn();
  } finally {
    release();
  }
}

/** link() errors meaning "no hard links here" rather than "not allowed" or "exists". */
function noHardLinks(code: string | undefined): boolean {
  return code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'EMLINK' || code === 'ENOSYS';
}

/**
 * Places `src` at `dst` without replacing anything: `link` (then `src` is removed), or where hard
 * links are not supported, an `lstat` check and `rename` (under the removal lock unless the caller
 * holds it). False when `dst` exists.
 */
async function placeNoReplace(src: string, dst: string, probe: UnixProbeOptions, lockHeld: boolean): Promise<boolean> {
  try {
    await fsp.link(src, dst);
  } catch (err) {
    const code = errno(err);
    if (code === 'EEXIST') return false;
    if (!noHardLinks(code)) throw err;
    const renameIfFree = async () => {
      if ((await lstatOrUndefined(dst)) !== undefined) return false;
      await fsp.rename(src, dst);
      return true;
    };
    return lockHeld ? renameIfFree() : withRemovalLock(dst, probe, renameIfFree);
  }
  // The name is placed; a leftover source name in the private directory is removed with it.
  await fsp.unlink(src).catch(() => {});
  return true;
}

/** What `clearName` did: found the name free, removed a stale socket, or saw it change (look again). */
type ClearOutcome = 'free' | 'removed' | 'changed';

/**
 * Examines what holds `finalPath`; throws when it must be left alone, removes it when it is a
 * stale socket: under the removal lock, only if the name still holds the inode that refused,
 * by moving it into `privateDir` (atomic) and removing it there once it refuses again (so no
 * reused inode number fools us); anything else that was moved is put back.
 */
async function clearName(finalPath: string, privateDir: string, probe: UnixProbeOptions): Promise<ClearOutcome> {
  const st = await lstatOrUndefined(finalPath);
  if (st === undefined) return 'free';
  if (!st.isSocket()) throw new NotASocketError(finalPath);
  const state = await connectProbe(finalPath, probe);
  if (state === 'missing') return 'free';
  if (state === 'live') throw new SocketInUseError(finalPath, 'live');
  if (state === 'unresponsive') throw new SocketInUseError(finalPath, 'unresponsive', String(probe.timeout ?? DEFAULT_PROBE_TIMEOUT));
  return withRemovalLock(finalPath, probe, async () => {
    // While waiting for the lock someone may have removed it, or replaced it: then look again.
    const again = await lstatOrUndefined(finalPath);
    if (again === undefined) return 'free';
    if (!sameFile(again, st)) return 'changed';
    const aside = path.join(privateDir, ASIDE);
    try {
      await fsp.rename(finalPath, aside);
    } catch (err) {
      if (errno(err) === 'ENOENT') return 'free'; // someone else removed it
      throw err;
    }
    let failure: unknown;
    try {
      const moved = await fsp.lstat(aside);
      // The same inode that refused (a socket inode never comes back to life), refusing again
      // where it is now: remove it.
      if (moved.isSocket() && sameFile(moved, st) && (await connectProbe(aside, probe)) === 'stale') {
        await fsp.unlink(aside);
        return 'removed';
      }
    } catch (err) {
      failure = err;
    }
    // Replaced between the check and the rename (or the check failed): put it back untouched.
    if (await placeNoReplace(aside, finalPath, probe, true)) {
      if (failure !== undefined) throw failure;
      return 'changed';
    }
    // Someone took the name meanwhile: never delete what was moved; leave it for a human.
    throw new SocketInUseError(finalPath, 'contended', `a file that replaced the stale socket was moved aside to ${aside} and could not be put back`);
  });
}

/**
 * Removes the private directory, unless something moved aside is still in it (it was not verified
 * stale and could not be put back): then only our own temporary socket goes.
 */
async function removePrivateDir(dir: string): Promise<void> {
  if ((await lstatOrUndefined(path.join(dir, ASIDE))) === undefined) await fsp.rm(dir, { recursive: true, force: true });
  else await fsp.rm(path.join(dir, 's'), { force: true });
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

/** Throws `NotASocketError` or `SocketInUseError` unless `finalPath` is missing or a stale socket. */
async function refuseIfTaken(finalPath: string, probe: UnixProbeOptions): Promise<'missing' | 'stale'> {
  const state = await probeUnixSocket(finalPath, probe);
  if (state === 'not-socket') throw new NotASocketError(finalPath);
  if (state === 'live') throw new SocketInUseError(finalPath, 'live');
  if (state === 'unresponsive') throw new SocketInUseError(finalPath, 'unresponsive', String(probe.timeout ?? DEFAULT_PROBE_TIMEOUT));
  return state;
}

/**
 * Removes the socket at `socketPath` if it is stale, safely (see the module comment). Resolves
 * true when it removed one, false when there was nothing; throws `NotASocketError` or
 * `SocketInUseError` (nothing removed), or `AbortedError`.
 */
export async function clearStaleUnixSocket(socketPath: string, options: UnixProbeOptions = {}): Promise<boolean> {
  const finalPath = path.resolve(socketPath);
  // Look first: a live socket or a non-socket is refused without creating anything.
  if ((await refuseIfTaken(finalPath, options)) === 'missing') return false;
  const dir = await fsp.mkdtemp(path.join(path.dirname(finalPath), '.wk'));
  try {
    await fsp.chmod(dir, 0o700);
    for (let attempt = 1; ; attempt++) {
      checkAborted(options.signal, `clearing ${finalPath}`);
      const outcome = await clearName(finalPath, dir, options);
      if (outcome !== 'changed') return outcome === 'removed';
      if (attempt >= MAX_ATTEMPTS) throw new SocketInUseError(finalPath, 'contended', `${attempt} attempts`);
    }
  } finally {
    await removePrivateDir(dir);
  }
}

/**
 * Listens on a Unix socket at `socketPath` that is never reachable there with a mode other than
 * `options.mode` (0600 by default); a stale socket file is replaced, a live one or a non-socket is
 * refused (`SocketInUseError`, `NotASocketError`). See the module comment for how.
 */
export async function listenUnixSocket(socketPath: string, options: UnixListenOptions = {}): Promise<UnixListener> {
  const mode = options.mode ?? 0o600;
  const { signal } = options;
  const probe: UnixProbeOptions = { timeout: options.probeTimeout ?? DEFAULT_PROBE_TIMEOUT, signal };
  const finalPath = path.resolve(socketPath);
  const what = `listening on ${finalPath}`;
  checkLength(finalPath, finalPath);
  checkAborted(signal, what);
  const server = options.server ?? net.createServer();
  if (server.listening) throw new WirekitError('WK_USAGE', `listenUnixSocket: the server given for ${finalPath} is already listening`, { origin: 'local' });
  // Look first: a live socket or a non-socket is refused before anything is created or bound.
  await refuseIfTaken(finalPath, probe);
  const dir = await fsp.mkdtemp(path.join(path.dirname(finalPath), '.wk'));
  let ours: Stats;
  try {
    // mkdtemp makes it 0700 & ~umask; make sure the owner can use it and nobody else can.
    await fsp.chmod(dir, 0o700);
    const tmpPath = path.join(dir, 's');
    checkLength(tmpPath, finalPath);
    checkAborted(signal, what);
    await listenOn(server, tmpPath, options.backlog ?? DEFAULT_UNIX_BACKLOG);
    await fsp.chmod(tmpPath, mode);
    // Identify our socket now: once published, a racing peer may briefly move the name aside.
    ours = await fsp.lstat(tmpPath);
    for (let attempt = 1; ; attempt++) {
      checkAborted(signal, what);
      if (await placeNoReplace(tmpPath, finalPath, probe, false)) break;
      if (attempt >= MAX_ATTEMPTS) throw new SocketInUseError(finalPath, 'contended', `${attempt} attempts`);
      await clearName(finalPath, dir, probe);
    }
  } catch (err) {
    if (server.listening) server.close();
    throw err;
  } finally {
    await removePrivateDir(dir);
  }
  let closing: Promise<void> | undefined;
  return {
    server,
    path: finalPath,
    close() {
      closing ??= (async () => {
        try {
          const now = await fsp.lstat(finalPath);
          if (sameFile(now, ours)) await fsp.unlink(finalPath);
        } catch (err) {
          if (errno(err) !== 'ENOENT') throw err;
        } finally {
          if (server.listening) server.close();
        }
      })();
      return closing;
    },
  };
}

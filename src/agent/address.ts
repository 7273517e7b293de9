/**
 * Daemon addresses: `unix:/path/to/sock` (or a bare path), `tcp://host:port`, `tls://host:port`.
 */
import { lstatSync, mkdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError, WirekitError } from '../errors.js';

export type AgentAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number; tls: boolean };

/** Environment variable naming the daemon address for client commands (and `serve`'s default). */
export const ADDRESS_ENV = 'WIREKIT_ADDRESS';
/** Environment variable holding the TCP token. */
export const TOKEN_ENV = 'WIREKIT_TOKEN';

/**
 * The directory of the default socket: `$XDG_RUNTIME_DIR/wirekit` when XDG_RUNTIME_DIR is set,
 * otherwise `<os.tmpdir()>/wirekit-<uid>`.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'wirekit');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `wirekit-${uid}`);
}

/** The default socket path: `<defaultStateDir()>/agent.sock`. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(defaultStateDir(env), 'agent.sock');
}

/**
 * Creates `dir` with mode 0700 if needed and checks that an existing one belongs to this user and
 * is not writable by others (a shared /tmp must not let another user pre-create it).
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  checkPrivateDir(dir, statSync(dir), uid === undefined ? [] : [uid]);
}

/** Throws `WK_UNSAFE_PATH` unless `st` is a directory owned by one of `owners` and not writable by group or others. */
function checkPrivateDir(dir: string, st: Stats, owners: readonly number[], prefix = ''): void {
  if (!st.isDirectory()) throw unsafe(`${prefix}${dir} is not a directory`);
  if (owners.length > 0 && !owners.includes(st.uid)) throw unsafe(`${prefix}${dir} belongs to another user (uid ${st.uid})`);
  if ((st.mode & 0o022) !== 0) throw unsafe(`${prefix}${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`);
}

function unsafe(message: string): WirekitError {
  return new WirekitError('WK_UNSAFE_PATH', message, { origin: 'local' });
}

/** The start of the message of every refusal by `trustedSocketPath` (the CLI exits 3 on it). */
export const REFUSED_SOCKET = 'refusing to connect: ';

/**
 * Checks a daemon's Unix socket before a client connects, and returns the path to connect to
 * (the socket in its directory's real path, so no symbolic link can be swapped in between).
 *
 * The directory must belong to this user (or root) and not be writable by group or others: then
 * nobody else can create, rename or replace a file in it, so what is checked stays what is
 * connected to. The socket must be a socket owned by this user: a socket file is owned by the
 * user whose process bound it, so this is the daemon's uid, known before anything is sent (Node
 * has no SO_PEERCRED; a socket in such a directory cannot be another user's). A squatted
 * `/tmp/wirekit-<uid>` is refused either way (`WK_UNSAFE_PATH`). A missing directory or socket is
 * left for the connect to report (`WK_CONNECT`). Without uids (Windows) nothing is checked.
 */
export function trustedSocketPath(socketPath: string): string {
  if (typeof process.getuid !== 'function') return socketPath;
  const uid = process.getuid();
  let dir: string;
  try {
    dir = realpathSync(path.dirname(socketPath));
  } catch {
    return socketPath;
  }
  checkPrivateDir(dir, statSync(dir), [uid, 0], REFUSED_SOCKET);
  const real = path.join(dir, path.basename(socketPath));
  let st: Stats;
  try {
    st = lstatSync(real);
  } catch {
    return real;
  }
  if (!st.isSocket()) throw unsafe(`${REFUSED_SOCKET}${real} is not a socket`);
  if (st.uid !== uid) throw unsafe(`${REFUSED_SOCKET}${real} belongs to another user (uid ${st.uid}), not to you`);
  return real;
}

/** Parses an address string. */
export function parseAddress(text: string): AgentAddress {
  if (text.startsWith('unix:')) {
    const p = text.slice(5).replace(/^\/\/(?=\/)/, '');
    if (!p) throw badAddress(text);
    return { kind: 'unix', path: path.resolve(p) };
  }
  const m = /^(tcp|tls):\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})\/?$/.exec(text);
  if (m) {
    const port = Number(m[3]);
    if (port > 65535) throw new UsageError(`invalid address ${JSON.stringify(text)}: port ${port} is out of range (0-65535)`);
    return { kind: 'tcp', host: m[2]!.replace(/^\[|\]$/g, ''), port, tls: m[1] === 'tls' };
  }
  if (text.includes('://')) throw badAddress(text);
  if (!text) throw badAddress(text);
  // `host:port` without a scheme is a TCP address written short, not a socket file called that.
  if (/^(\[[^\]]+\]|[^:/]+):\d{1,5}$/.test(text)) throw new UsageError(`invalid address ${JSON.stringify(text)}: a TCP address needs its scheme (did you mean tcp://${text}? or tls://${text})`);
  return { kind: 'unix', path: path.resolve(text) };
}

function badAddress(text: string): UsageError {
  return new UsageError(`invalid address ${JSON.stringify(text)} (expected unix:/path, tcp://host:port or tls://host:port)`);
}

/** The address as text. */
export function formatAddress(a: AgentAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.tls ? 'tls' : 'tcp'}://${host}:${a.port}`;
}

/** The address clients use: the given text, else $WIREKIT_ADDRESS, else the default socket. */
export function resolveClientAddress(text: string | undefined, env: NodeJS.ProcessEnv = process.env): AgentAddress {
  const t = text ?? env[ADDRESS_ENV];
  return t ? parseAddress(t) : { kind: 'unix', path: defaultSocketPath(env) };
}

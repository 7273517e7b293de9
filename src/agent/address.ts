/**
 * Daemon addresses: `unix:/path/to/sock` (or a bare path), `tcp://host:port`, `tls://host:port`.
 */
import { mkdirSync, statSync } from 'node:fs';
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
  const st = statSync(dir);
  if (!st.isDirectory()) throw new WirekitError('WK_UNSAFE_PATH', `${dir} is not a directory`, { origin: 'local' });
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.uid !== uid) throw new WirekitError('WK_UNSAFE_PATH', `${dir} belongs to another user (uid ${st.uid})`, { origin: 'local' });
  if ((st.mode & 0o022) !== 0) throw new WirekitError('WK_UNSAFE_PATH', `${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`, { origin: 'local' });
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

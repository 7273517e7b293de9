/**
 * The CLI's record of the hubs a user logged in to: `$XDG_CONFIG_HOME/wirekit/hubs.json` (default
 * `~/.config/wirekit/hubs.json`), a 0700 directory and a 0600 file written atomically, like ssh's
 * known hosts or a kubeconfig context list. One hub is the default, used when a command names an
 * agent without `--hub`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './args.js';

export interface HubLogin {
  /** The hub's user port, `tcp://host:port` or `tls://host:port`. */
  url: string;
  username: string;
  token: string;
  /** Token expiry, seconds since the epoch. */
  expire: number;
  /** TLS: CA file (PEM) to verify the hub with. */
  ca?: string;
}

export interface HubsFile {
  default?: string;
  hubs: Record<string, HubLogin>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(env.HOME ?? os.homedir(), '.config'), 'wirekit');
}

export function hubsFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), 'hubs.json');
}

export function readHubs(env: NodeJS.ProcessEnv = process.env): HubsFile {
  const file = hubsFile(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { hubs: {} };
    throw err;
  }
  const st = statSync(file);
  if ((st.mode & 0o077) !== 0) throw new UsageError(`${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  try {
    const v = JSON.parse(text) as HubsFile;
    if (typeof v !== 'object' || v === null || typeof v.hubs !== 'object') throw new UsageError('no "hubs" member');
    return v;
  } catch (err) {
    throw new UsageError(`${file} is not a wirekit hubs file: ${(err as Error).message}`);
  }
}

export function writeHubs(value: HubsFile, env: NodeJS.ProcessEnv = process.env): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = hubsFile(env);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return file;
}

/** The hub to use: `--hub NAME` (or a URL logged in to), else the default. */
export function pickHub(name: string | undefined, env: NodeJS.ProcessEnv = process.env): { name: string; login: HubLogin } {
  const hubs = readHubs(env);
  const key = name ?? hubs.default;
  if (key === undefined) throw new UsageError('no hub: log in first with `wirekit login tcp://HOST:PORT`');
  const login = hubs.hubs[key] ?? Object.values(hubs.hubs).find((h) => h.url === key);
  if (!login) throw new UsageError(`not logged in to hub ${JSON.stringify(key)} (wirekit login URL --name ${key})`);
  if (login.expire * 1000 <= Date.now()) throw new UsageError(`the token for hub ${key} expired; log in again (wirekit login ${login.url})`);
  return { name: key, login };
}

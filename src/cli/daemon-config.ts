/**
 * Named daemons: `$XDG_CONFIG_HOME/wirekit/config` (default `~/.config/wirekit/config`), a small
 * file in the spirit of ssh's config that maps names to a daemon's address, token file and CA, so
 * `-a NAME` (or `WIREKIT_ADDRESS=NAME`) reaches it:
 *
 *     # comments start with '#'
 *     daemon build1
 *       address     tcp://build1.lan:7000
 *       token-file  ~/.config/wirekit/build1.token
 *     daemon lab
 *       address     tls://lab.example:7443
 *       token-file  lab.token          # relative paths are relative to the config's directory
 *       ca          lab-ca.pem
 *
 * One `daemon NAME` line opens a section; each following `KEY VALUE` line (or `KEY=VALUE`) belongs
 * to it. Keys: `address` (required), `token-file`, `ca`, `insecure` (yes/no). Names are letters,
 * digits, `.`, `_` and `-`. The fleet hub's logins are a separate file beside it (hubs.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAddress, resolveClientAddress, ADDRESS_ENV, type AgentAddress } from '../agent/address.js';
import { UsageError } from './args.js';
import { configDir } from './hub-config.js';

export interface NamedDaemon {
  name: string;
  address: string;
  tokenFile?: string;
  ca?: string;
  insecure?: boolean;
}

const NAME = /^[A-Za-z0-9_.-]+$/;
const KEYS = new Set(['address', 'token-file', 'ca', 'insecure']);

/** The config file's path. */
export function daemonConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configDir(env), 'config');
}

/** Parses the config file's text; `file` names it in errors and anchors relative paths. */
export function parseDaemonConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Map<string, NamedDaemon> {
  const daemons = new Map<string, NamedDaemon>();
  const home = env.HOME ?? os.homedir();
  const expand = (p: string) => (p === '~' ? home : p.startsWith('~/') ? path.join(home, p.slice(2)) : path.resolve(path.dirname(file), p));
  let current: NamedDaemon | undefined;
  const lines = text.split('\n');
  const bad = (i: number, why: string) => new UsageError(`${file}:${i + 1}: ${why}`);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (!line) continue;
    const m = /^([A-Za-z-]+)\s*(?:=\s*|\s+)(.+)$/.exec(line);
    if (!m) throw bad(i, `expected KEY VALUE, got ${JSON.stringify(line)}`);
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim();
    if (key === 'daemon') {
      if (!NAME.test(value)) throw bad(i, `invalid daemon name ${JSON.stringify(value)} (letters, digits, '.', '_', '-')`);
      if (daemons.has(value)) throw bad(i, `daemon ${value} is defined twice`);
      current = { name: value, address: '' };
      daemons.set(value, current);
      continue;
    }
    if (!current) throw bad(i, `${key} before any "daemon NAME" line`);
    if (!KEYS.has(key)) throw bad(i, `unknown key ${key} (known: daemon, ${[...KEYS].join(', ')})`);
    if (key === 'address') {
      try {
        parseAddress(value);
      } catch (err) {
        throw bad(i, (err as Error).message);
      }
      current.address = value;
    } else if (key === 'token-file') current.tokenFile = expand(value);
    else if (key === 'ca') current.ca = expand(value);
    else if (value === 'yes' || value === 'no') current.insecure = value === 'yes';
    else throw bad(i, `insecure takes yes or no, got ${JSON.stringify(value)}`);
  }
  for (const d of daemons.values()) if (!d.address) throw new UsageError(`${file}: daemon ${d.name} has no address`);
  return daemons;
}

/** The named daemons of the config file (none when there is no file). */
export function readDaemonConfig(env: NodeJS.ProcessEnv = process.env): Map<string, NamedDaemon> {
  const file = daemonConfigFile(env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseDaemonConfig(text, file, env);
}

/** Where a client command goes: the address, and the token file and CA a named daemon brings. */
export interface DaemonTarget {
  address: AgentAddress;
  named?: NamedDaemon;
}

/**
 * Resolves `-a TEXT` (else $WIREKIT_ADDRESS, else the default socket): a daemon name from the
 * config file, else an address. A bare word that is neither a configured name nor an existing
 * file is refused (it would otherwise be taken as a socket path in the current directory).
 */
export function resolveDaemon(text: string | undefined, env: NodeJS.ProcessEnv = process.env): DaemonTarget {
  const t = text ?? env[ADDRESS_ENV];
  if (t && NAME.test(t)) {
    const named = readDaemonConfig(env).get(t);
    if (named) return { address: parseAddress(named.address), named };
    if (!existsSync(t)) {
      const from = text === undefined ? `$${ADDRESS_ENV}` : '-a';
      throw new UsageError(`${from} ${t}: no daemon named ${JSON.stringify(t)} in ${daemonConfigFile(env)} and no socket file ${t} (addresses look like unix:/path, tcp://host:port or tls://host:port)`);
    }
  }
  return { address: resolveClientAddress(t || undefined, env) };
}

/** Reads a file named on the command line, with a usage error (exit 2) when it is missing. */
export function readOptionFile(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new UsageError(`${option} ${file}: ${why}`);
  }
}

/** `wirekit help config`. */
export function configHelp(env: NodeJS.ProcessEnv = process.env): string {
  return `Named daemons: ${daemonConfigFile(env)}
($XDG_CONFIG_HOME/wirekit/config when XDG_CONFIG_HOME is set, else ~/.config/wirekit/config)

Like ssh's config: each "daemon NAME" line starts an entry, the indented KEY VALUE lines after it
belong to it, '#' starts a comment. Then -a NAME (or WIREKIT_ADDRESS=NAME) reaches that daemon.

  daemon build1
    address     tcp://build1.lan:7000
    token-file  ~/.config/wirekit/build1.token
  daemon lab
    address     tls://lab.example:7443
    token-file  lab.token        # relative to the config's directory
    ca          lab-ca.pem

Keys: address (required: unix:/path, tcp://host:port or tls://host:port), token-file (read when
neither --token nor $WIREKIT_TOKEN is given; --token-file wins), ca (PEM; --ca wins), insecure
(yes/no: do not verify a TLS certificate). The fleet hubs you log in to are kept apart, in
hubs.json beside it (wirekit login).`;
}

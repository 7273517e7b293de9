/** Shared pieces of the client commands: address and token options, errors and exit codes. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { WirekitError } from '../errors.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { AgentClient } from '../agent/client.js';
import { defaultStateDir, formatAddress, REFUSED_SOCKET, TOKEN_ENV, ADDRESS_ENV } from '../agent/address.js';
import { readOptionFile, resolveDaemon } from './daemon-config.js';
import { readTokenFile } from '../agent/auth.js';
import { UsageError, parseDuration, type Parsed, type Spec } from './args.js';
import { connectHub } from '../hub/hub-client.js';
import { hubTls, parseHubUrl } from './hub-address.js';
import { pickHub } from './hub-config.js';

/** Exit codes of every command (exec and shell pass the program's own status through). */
export const EXIT = {
  OK: 0,
  /** The command failed (remote error, checksum mismatch, refused path). */
  FAILED: 1,
  /** Bad arguments. */
  USAGE: 2,
  /** Cannot reach the daemon, its Unix socket is not safe to use, or authentication failed. */
  UNREACHABLE: 3,
  /** exec/shell: wirekit itself failed (the program's status is unknown). */
  SESSION_FAILED: 255,
} as const;

/**
 * exec/shell: the exit status when local output is a closed pipe (EPIPE, e.g. `| head -1`): the
 * session is ended and wirekit exits quietly with 141, what a shell reports for a program killed
 * by SIGPIPE (128 + 13), so `set -o pipefail` sees the same as with a local program.
 */
export const BROKEN_PIPE_STATUS = 141;

/**
 * Resolves when writing to one of `streams` (the local stdout and stderr) fails: EPIPE when the
 * reader went away, or any other write error. The error is handled here, so it never becomes an
 * uncaught 'error' event with a stack trace; the listener stays (a late error stays handled).
 */
export function outputBroken(streams: readonly NodeJS.WritableStream[]): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    for (const s of streams) s.on('error', (err: NodeJS.ErrnoException) => resolve(err));
  });
}

/** exec: a second Ctrl-C (SIGINT) this soon after the first ends the session from this side. */
export const INTERRUPT_AGAIN_MS = 1000;

/** Options every client command accepts. */
export const CLIENT_OPTIONS: Spec = {
  address: { type: 'string', short: 'a' },
  agent: { type: 'string', short: 'A' },
  hub: { type: 'string', short: 'H' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  insecure: { type: 'boolean' },
  timeout: { type: 'string' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  help: { type: 'boolean', short: 'h' },
};

/** With `-v`: a line on stderr for each step (`wirekit: connecting to ...`). */
export function traceFor(p: Parsed): ((message: string) => void) | undefined {
  if (!p.flags.verbose) return undefined;
  return (message) => void process.stderr.write(`wirekit: ${message}\n`);
}

export const CLIENT_HELP = `Connection options:
  -A, --agent ID       reach agent ID through a fleet hub (also: @ID as the first argument;
                       cp takes ID:PATH); the hub is the default one you logged in to
  -H, --hub NAME       the hub to use (see wirekit login)
  -a, --address ADDR   daemon address: unix:/path, /path, tcp://host:port, tls://host:port,
                       or a NAME from ~/.config/wirekit/config (see wirekit help config)
                       (default: $${ADDRESS_ENV}, else the default socket ${path.join(defaultStateDir(), 'agent.sock')})
      --token TOKEN    token for TCP/TLS daemons (default: $${TOKEN_ENV}, else --token-file,
                       else ${path.join(defaultStateDir(), 'token')} if it exists)
      --token-file F   read the token from F
      --ca FILE        TLS: trusted CA certificate (PEM)
      --insecure       TLS: do not verify the daemon's certificate
      --timeout DUR    connect/reply timeout (default 10s)
  -v, --verbose        say each step on stderr: the address, where the token comes from, each
                       connection (forward: each connection accepted)
  -h, --help           show this help`;

/**
 * The agent a command names: `--agent ID`, or a first positional `@ID` (removed from the
 * positionals). Undefined: the command talks to a daemon directly.
 */
export function takeAgent(p: Parsed): string | undefined {
  if (typeof p.flags.agent === 'string') return p.flags.agent;
  const first = p.positionals[0];
  if (first !== undefined && first.startsWith('@') && first.length > 1) {
    p.positionals.shift();
    if (p.positionals[0] === '--') p.positionals.shift();
    p.flags.agent = first.slice(1);
    return first.slice(1);
  }
  return undefined;
}

/** A client for agent `agent` through the hub `hub` (or the default hub). */
export function hubClientFor(agent: string, hub: string | undefined, timeoutMs: number, env: NodeJS.ProcessEnv = process.env, trace?: (message: string) => void): AgentClient {
  if (hub === undefined && env.WIREKIT_HUB) hub = env.WIREKIT_HUB;
  const { name, login } = pickHub(hub, env);
  const url = parseHubUrl(login.url);
  return new AgentClient({
    address: { kind: 'tcp', host: url.address.host, port: url.address.port, tls: url.tls },
    label: `agent ${agent} via hub ${name}`,
    timeoutMs,
    trace,
    dial: async () => {
      const session = await connectHub(url.address, { token: login.token }, { tls: hubTls(url, login.ca), timeoutMs });
      try {
        return await session.route(agent);
      } catch (err) {
        session.close();
        throw err;
      }
    },
  });
}

/** Builds a client from the common options. */
export function clientFrom(p: Parsed, env: NodeJS.ProcessEnv = process.env): AgentClient {
  const timeoutMs = p.flags.timeout ? parseDuration(p.flags.timeout as string, 'timeout') : 10_000;
  const agent = takeAgent(p);
  if (agent !== undefined) {
    if (p.flags.address !== undefined) throw new UsageError('--address and an agent name do not go together (an agent is reached through its hub)');
    return hubClientFor(agent, p.flags.hub as string | undefined, timeoutMs, env, traceFor(p));
  }
  const { address, named } = resolveDaemon(p.flags.address as string | undefined, env);
  const tokenFile = (p.flags['token-file'] as string | undefined) ?? named?.tokenFile;
  if (p.flags.token !== undefined) {
    process.stderr.write(`wirekit: warning: --token on the command line is visible to every user of this machine (ps, /proc/PID/cmdline); use $${TOKEN_ENV} or --token-file\n`);
  }
  let token = (p.flags.token as string | undefined) ?? env[TOKEN_ENV];
  let tokenFrom = p.flags.token !== undefined ? '--token' : token ? `$${TOKEN_ENV}` : undefined;
  if (!token && tokenFile) {
    token = readOptionFile(tokenFile, p.flags['token-file'] ? '--token-file' : `token-file of daemon ${named?.name}`).toString('utf8').trim();
    tokenFrom = tokenFile;
  }
  if (!token && address.kind === 'tcp') {
    const f = path.join(defaultStateDir(env), 'token');
    if (existsSync(f)) [token, tokenFrom] = [readTokenFile(f), f];
  }
  const trace = traceFor(p);
  if (trace) {
    trace(`daemon ${formatAddress(address)}${named ? ` (named ${named.name} in the config)` : ''}`);
    if (address.kind === 'tcp') trace(token ? `token from ${tokenFrom}` : 'no token (none given, no default token file)');
  }
  return new AgentClient({
    trace,
    address,
    token,
    ca: p.flags.ca ? readOptionFile(p.flags.ca as string, '--ca') : named?.ca ? readOptionFile(named.ca, `ca of daemon ${named.name}`) : undefined,
    insecure: p.flags.insecure === true || named?.insecure === true,
    timeoutMs,
  });
}

/** Exit code for an error. */
export function exitCodeFor(err: unknown): number {
  // Every local misuse is WK_USAGE, whichever class carries it (a hub's or codec's too).
  if (err instanceof UsageError || (err instanceof WirekitError && err.code === 'WK_USAGE' && err.origin === 'local')) return EXIT.USAGE;
  if (err instanceof WirekitError && (err.code === 'WK_CONNECT' || err.code === 'WK_AUTH' || (err.code === 'WK_TIMEOUT' && err.message.startsWith('connect')))) return EXIT.UNREACHABLE;
  if (err instanceof WirekitError && err.code === 'WK_UNSAFE_PATH' && err.message.startsWith(REFUSED_SOCKET)) return EXIT.UNREACHABLE;
  return EXIT.FAILED;
}

/** Prints an error as `wirekit CMD: message [CODE]`. */
export function reportError(cmd: string, err: unknown): void {
  const code = err instanceof WirekitError ? ` [${err instanceof RemoteCommandError && err.remoteCode ? err.remoteCode : err.code}]` : '';
  process.stderr.write(`wirekit ${cmd}: ${err instanceof Error ? err.message : String(err)}${code}\n`);
}

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AgentDaemon } from '../agent/daemon.js';
import { v8Collector } from '../agent/gc.js';
import { defaultSocketPath, defaultStateDir, ensurePrivateDir, formatAddress, parseAddress, TOKEN_ENV, type AgentAddress } from '../agent/address.js';
import { generateToken, writeTokenFile } from '../agent/auth.js';
import { installLastResort } from '../agent/last-resort.js';
import { createLogger, isLogLevel, type LogLevel } from '../agent/log.js';
import { parseArgs, parseDuration, parseIntArg, UsageError } from './args.js';
import os from 'node:os';
import { HubDialer } from '../agent/dial-out.js';
import { readTokenFile } from '../agent/auth.js';
import type { Logger } from '../agent/log.js';
import { parseHubUrl } from './hub-address.js';

const VERSION = '0.1.0';

/** The shortest token `wirekit serve` accepts from the environment. */
export const MIN_TOKEN_LENGTH = 16;

export const help = `Usage: wirekit serve [options]

Runs the agent daemon. By default it listens on a Unix socket (mode 0600) at
  $XDG_RUNTIME_DIR/wirekit/agent.sock, or ${path.join('<tmpdir>', 'wirekit-<uid>', 'agent.sock')} without XDG_RUNTIME_DIR
(here: ${defaultSocketPath()}), in a directory created with mode 0700. A stale socket file is
replaced; a running daemon's is not.

Options:
  -l, --listen ADDR        unix:/path, /path, tcp://host:port or tls://host:port (repeatable;
                           default: the Unix socket above). TCP and TLS connections must send a
                           token: $${TOKEN_ENV} if set, else a new one written (mode 0600) to
                           --token-file (default ${path.join(defaultStateDir(), 'token')}).
      --token-file FILE    where to write the generated token
      --tls-cert FILE      certificate (PEM) for tls:// listeners
      --tls-key FILE       private key (PEM) for tls:// listeners
      --root DIR           confine the paths of file copies (cp, both ways) and of programs'
                           working directories to DIR: '..' and symbolic links cannot lead
                           out, and each file is opened from a descriptor of its directory,
                           so a link swapped in during the copy is refused, not followed.
                           --root does NOT confine exec, shell or forward: a program started
                           by exec or shell can read and write anything this user can, and a
                           forward can reach any host; switch those off with the options below
      --no-exec            refuse exec sessions (WK_PERMISSION)
      --no-shell           refuse shell (terminal) sessions
      --no-forward         refuse port forwards
      --transfer-timeout DUR  end a file copy that moves no byte for DUR: its session slot and
                           temporary file are freed (default 60s)
      --fsync              flush each uploaded file's data to disk before renaming it into
                           place (slower; default off, like cp)
      --max-sessions N     concurrent sessions at most (default 256)
      --max-message BYTES  largest control message (default 1048576; before a TCP/TLS
                           connection sent its token: 4096)
      --max-connections N  TCP/TLS connections at once (default 1024); one more is refused
                           (WK_LIMIT). Unix-socket connections are not counted
      --max-connections-per-address N  TCP/TLS connections at once from one address (default 64)
      --auth-timeout DUR   a TCP/TLS connection that has not sent the token within DUR is
                           closed (default 10s)
      --ping-interval DUR  session keepalive ping interval (default 15s)
      --ping-timeout DUR   a session silent this long is ended (default 45s)
      --hub URL            also dial out to a fleet hub's agent port (tcp://host:port or
                           tls://host:port) and serve sessions routed through it; repeat it
                           for the hubs of one fleet: the agent moves to the next when its
                           hub is gone
      --enroll-token-file F  the hub's enrollment token (first registration; afterwards
                           the hub's own token for this agent, kept in --hub-token-file)
      --hub-token-file F   where this agent's hub token is kept, mode 0600
                           (default <state dir>/hub-token)
      --hub-ca FILE        TLS: CA certificate (PEM) the hub's certificate must chain to
      --hub-fingerprint H  TLS: pin the hub's certificate by its SHA-256 fingerprint instead
      --id ID              this agent's id on the hub (default: the host name)
      --label KEY=VALUE    a property shown in wirekit ls and filtered on (repeatable)
      --labels-file F      properties from a JSON object file (e.g. {"site":"lab","allowlist":["u/ann"]})
      --no-local           with --hub: do not listen locally at all
      --log-level LEVEL    silent, error, warn (default), info, debug
  -v, --verbose            same as --log-level info (twice: debug)
  -h, --help               show this help

Uploads are written to a hidden temporary file beside the destination and renamed into place
when complete and verified; each is recorded under <state dir>/transfers, so the temporary
files of a daemon that was killed are removed at its next start. Setuid and setgid bits of an
uploaded file are dropped unless the client asks to keep them (cp --setid).
$${TOKEN_ENV} must be at least ${MIN_TOKEN_LENGTH} characters. Wrong tokens are answered after 1 s, and
10 failures from one address within 10 minutes lock it out for 10 minutes.
tcp:// listeners are always plain TCP; only tls:// listeners use --tls-cert.

Stops cleanly on SIGINT or SIGTERM (sessions are ended, the socket removed). Every process an exec
or shell session started is ended with its session, also when the daemon is SIGKILLed (a small
sh supervisor per session does it), except those that left the session (setsid, daemons).
Exit status: 0 after a clean stop, 1 when it cannot listen, 2 on bad arguments.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    listen: { type: 'string', short: 'l', multiple: true },
    'token-file': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    root: { type: 'string' },
    fsync: { type: 'boolean' },
    'max-sessions': { type: 'string' },
    'max-message': { type: 'string' },
    'max-connections': { type: 'string' },
    'max-connections-per-address': { type: 'string' },
    'auth-timeout': { type: 'string' },
    'ping-interval': { type: 'string' },
    'ping-timeout': { type: 'string' },
    'log-level': { type: 'string' },
    hub: { type: 'string', multiple: true },
    'enroll-token-file': { type: 'string' },
    'hub-token-file': { type: 'string' },
    'hub-ca': { type: 'string' },
    'hub-fingerprint': { type: 'string' },
    id: { type: 'string' },
    label: { type: 'string', multiple: true },
    'labels-file': { type: 'string' },
    'no-local': { type: 'boolean' },
    'no-exec': { type: 'boolean' },
    'no-shell': { type: 'boolean' },
    'no-forward': { type: 'boolean' },
    'transfer-timeout': { type: 'string' },
    verbose: { type: 'boolean', short: 'v', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (p.flags.help) return (console.log(help), 0);
  if (p.positionals.length) throw new UsageError(`unexpected argument ${p.positionals[0]}`);
  let level: LogLevel = 'warn';
  const v = (p.flags.verbose as string[] | undefined)?.length ?? 0;
  if (v === 1) level = 'info';
  if (v >= 2) level = 'debug';
  if (p.flags['log-level'] !== undefined) {
    const l = p.flags['log-level'] as string;
    if (!isLogLevel(l)) throw new UsageError(`invalid log level ${l}`);
    level = l;
  }
  const log = createLogger(level);
  installLastResort(log); // an unexpected error ends only its session (docs/agent.md)
  const addrs: AgentAddress[] = ((p.flags.listen as string[] | undefined) ?? []).map((a) => parseAddress(a));
  const hubUrls = (p.flags.hub as string[] | undefined) ?? [];
  const hubUrl = hubUrls.length > 0 ? hubUrls.join(' ') : undefined;
  if (p.flags['no-local'] && !hubUrl) throw new UsageError('--no-local needs --hub');
  if (p.flags['no-local'] && addrs.length) throw new UsageError('--no-local and --listen do not go together');
  if (addrs.length === 0 && !p.flags['no-local']) {
    const dir = defaultStateDir();
    ensurePrivateDir(dir);
    addrs.push({ kind: 'unix', path: defaultSocketPath() });
  }
  const certFile = p.flags['tls-cert'] as string | undefined;
  const keyFile = p.flags['tls-key'] as string | undefined;
  if (!!certFile !== !!keyFile) throw new UsageError('--tls-cert and --tls-key go together');
  if (addrs.some((a) => a.kind === 'tcp' && a.tls) && !certFile) throw new UsageError('tls:// needs --tls-cert and --tls-key');
  const disabledSessions = [p.flags['no-exec'] && 'exec', p.flags['no-shell'] && 'terminal', p.flags['no-forward'] && 'forward'].filter((k): k is string => typeof k === 'string');
  const envToken = process.env[TOKEN_ENV];
  if (envToken !== undefined && envToken !== '' && envToken.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`$${TOKEN_ENV} is ${envToken.length} characters long; a token needs at least ${MIN_TOKEN_LENGTH} (or unset it to have one generated)`);
  }
  const daemon = new AgentDaemon({
    root: p.flags.root as string | undefined,
    disabledSessions,
    tempJournalDir: path.join(defaultStateDir(), 'transfers'),
    transferTimeoutMs: p.flags['transfer-timeout'] ? parseDuration(p.flags['transfer-timeout'] as string, '--transfer-timeout') : undefined,
    fsync: p.flags.fsync === true,
    collectGarbage: v8Collector(),
    maxSessions: p.flags['max-sessions'] ? parseIntArg(p.flags['max-sessions'] as string, '--max-sessions', 1) : undefined,
    maxMessageBytes: p.flags['max-message'] ? parseIntArg(p.flags['max-message'] as string, '--max-message', 1024) : undefined,
    maxConnections: p.flags['max-connections'] ? parseIntArg(p.flags['max-connections'] as string, '--max-connections', 1) : undefined,
    maxConnectionsPerAddress: p.flags['max-connections-per-address'] ? parseIntArg(p.flags['max-connections-per-address'] as string, '--max-connections-per-address', 1) : undefined,
    authTimeoutMs: p.flags['auth-timeout'] ? parseDuration(p.flags['auth-timeout'] as string, '--auth-timeout') : undefined,
    keepalive: {
      intervalMs: p.flags['ping-interval'] ? parseDuration(p.flags['ping-interval'] as string, '--ping-interval') : undefined,
      timeoutMs: p.flags['ping-timeout'] ? parseDuration(p.flags['ping-timeout'] as string, '--ping-timeout') : undefined,
    },
    logger: log,
  });
  let token: string | undefined;
  const lines: string[] = [];
  const swept = await daemon.sweepTempFiles();
  if (swept.length > 0) log.info(`removed ${swept.length} temporary file(s) left by a daemon that was killed`);
  for (const a of addrs) {
    if (a.kind === 'unix') {
      const l = await daemon.listenUnix(a.path);
      lines.push(`wirekit agent listening on ${l.address}`);
    } else {
      if (token === undefined) {
        token = process.env[TOKEN_ENV];
        if (!token) {
          token = generateToken();
          const file = (p.flags['token-file'] as string | undefined) ?? path.join(defaultStateDir(), 'token');
          ensurePrivateDir(path.dirname(file));
          writeTokenFile(file, token);
          lines.push(`token written to ${file} (mode 0600)`);
        }
      }
      // Only tls:// is TLS: a tcp:// listener stays plain even when a certificate is given.
      const l = await daemon.listenTcp(a.host, a.port, { token, tls: a.tls && certFile ? { cert: readFileSync(certFile), key: readFileSync(keyFile!) } : undefined });
      lines.push(`wirekit agent listening on ${l.address}`);
    }
  }
  let dialer: (HubDialer & { agentId: string }) | undefined;
  if (hubUrl) {
    dialer = await startDialOut(p.flags, hubUrls, daemon, log, disabledSessions);
    lines.push(`dialing out to hub ${hubUrl} as agent ${dialer.agentId}`);
  }
  if (daemon.listeners.length > 0) {
    const tokenFile = process.env[TOKEN_ENV] ? undefined : ((p.flags['token-file'] as string | undefined) ?? path.join(defaultStateDir(), 'token'));
    lines.push(...tryLines(daemon.listeners.map((l) => l.address), { tokenFile, certFile }), '(then exec -- uname -a, shell, cp, forward the same way; Ctrl-C stops the daemon)');
  }
  if (level !== 'silent') process.stderr.write(lines.join('\n') + '\n');
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info(`${sig}: stopping`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  dialer?.stop();
  await daemon.close();
  return 0;
}

async function startDialOut(flags: Record<string, unknown>, hubUrls: readonly string[], daemon: AgentDaemon, log: Logger, disabled: string[]): Promise<HubDialer & { agentId: string }> {
  const urls = hubUrls.map(parseHubUrl);
  const url = urls[0]!;
  if (urls.some((u) => u.tls !== url.tls)) throw new UsageError('the hubs of one fleet are all tcp:// or all tls://');
  const properties: Record<string, unknown> = {};
  if (typeof flags['labels-file'] === 'string') {
    const v = JSON.parse(readFileSync(flags['labels-file'], 'utf8')) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${flags['labels-file']}: expected a JSON object of properties`);
    Object.assign(properties, v);
  }
  for (const kv of (flags.label as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--label needs KEY=VALUE, got ${JSON.stringify(kv)}`);
    properties[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const id = (flags.id as string | undefined) ?? os.hostname();
  const enrollFile = flags['enroll-token-file'] as string | undefined;
  const enrollmentToken = enrollFile ? readTokenFile(enrollFile) : process.env.WIREKIT_ENROLL_TOKEN;
  const tokenFile = (flags['hub-token-file'] as string | undefined) ?? path.join(defaultStateDir(), 'hub-token');
  ensurePrivateDir(path.dirname(tokenFile));
  const fingerprint = flags['hub-fingerprint'] as string | undefined;
  const ca = flags['hub-ca'] as string | undefined;
  if ((fingerprint || ca) && !url.tls) throw new UsageError('--hub-ca and --hub-fingerprint need a tls:// hub');
  const dialer = new HubDialer({
    hub: urls.map((u) => u.address),
    tls: url.tls ? { ...(ca ? { ca: readFileSync(ca) } : {}), ...(fingerprint ? { fingerprint } : {}) } : false,
    register: { id, hostname: os.hostname(), version: VERSION, capabilities: ['exec', 'terminal', 'upload', 'download', 'forward'].filter((k) => !disabled.includes(k)), properties },
    enrollmentToken,
    tokenFile,
    logger: log,
    serve: (stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user} (session ${info.sid})`, leftover, scope: `hub user ${info.user}` }),
  });
  await dialer.start();
  return Object.assign(dialer, { agentId: id });
}

/**
 * The `try:` lines `serve` prints: for each address it listens on, a `wirekit ping` that works
 * as typed: `-a` unless it is the default socket, the token file unless the client finds it by
 * itself (or the token comes from $WIREKIT_TOKEN, which the user has), `--ca` for a self-signed
 * certificate. A wildcard address (0.0.0.0, ::) is reached at the loopback address.
 */
export function tryLines(addresses: readonly string[], opts: { tokenFile?: string; certFile?: string; defaultSocket?: string; defaultTokenFile?: string }): string[] {
  const defaultSocket = opts.defaultSocket ?? `unix:${defaultSocketPath()}`;
  const defaultToken = opts.defaultTokenFile ?? path.join(defaultStateDir(), 'token');
  const quote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return addresses.map((text) => {
    if (text === defaultSocket) return 'try: wirekit ping';
    const a = parseAddress(text);
    if (a.kind === 'unix') return `try: wirekit ping -a ${quote(text)}`;
    const host = a.host === '0.0.0.0' ? '127.0.0.1' : a.host === '::' ? '::1' : a.host;
    const parts = [`try: wirekit ping -a ${quote(formatAddress({ ...a, host }))}`];
    if (opts.tokenFile === undefined) parts.push(`   (with $${TOKEN_ENV} set to the daemon's token)`);
    else if (path.resolve(opts.tokenFile) !== defaultToken) parts.splice(1, 0, ` --token-file ${quote(path.resolve(opts.tokenFile))}`);
    if (a.tls && opts.certFile && selfSigned(opts.certFile)) parts.splice(1, 0, ` --ca ${quote(path.resolve(opts.certFile))}`);
    return parts.join('');
  });
}

/** True when the certificate in `file` signed itself (a client then trusts it with --ca FILE). */
function selfSigned(file: string): boolean {
  try {
    const cert = new X509Certificate(readFileSync(file));
    return cert.checkIssued(cert) && cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

import { readFileSync, statSync } from 'node:fs';
import { parseForwardOrigin } from '../hub/web-forward.js';
import os from 'node:os';
import path from 'node:path';
import { installLastResort } from '../agent/last-resort.js';
import { createLogger, isLogLevel, type LogLevel } from '../agent/log.js';
import { Hub } from '../hub/hub.js';
import { startHub, type ListenSpec } from '../hub/server.js';
import { allowList } from '../hub/overlord/ghost-port.js';
import { isLanTarget } from '../hub/overlord/lan-discovery.js';
import { NatsFleet } from '../hub/nats-fleet.js';
import { hubIdFrom } from '../hub/nats-records.js';
import { parseArgs, parseDuration, parseIntArg, UsageError } from './args.js';
import { connectHub } from '../hub/hub-client.js';
import { hubTls, parseHubUrl } from './hub-address.js';
import { pickHub } from './hub-config.js';

const defaultState = () => path.join(process.env.XDG_STATE_HOME && path.isAbsolute(process.env.XDG_STATE_HOME) ? process.env.XDG_STATE_HOME : path.join(os.homedir(), '.local', 'state'), 'wirekit', 'hub');

export const help = `Usage: wirekit hub [options]
       wirekit hub --init --admin-user NAME [--admin-pass PASS | --admin-pass-file F]
       wirekit hub user add NAME [--admin] | remove NAME | passwd NAME | list   [--state DIR]
       wirekit hub drain [-H HUB] [--batch N] [--interval DUR] [--jitter DUR]

Runs a fleet hub: agents dial out to it (wirekit serve --hub ...), users reach them through
it (wirekit login, ls, shell AGENT, exec AGENT, cp, forward) or its HTTP/WebSocket API.

Options:
      --state DIR          state directory, mode 0700: users, keys, agent tokens
                           (default ${defaultState()})
      --agents HOST:PORT   where agents connect (default 127.0.0.1:7701)
      --users HOST:PORT    where the CLI connects (default 127.0.0.1:7702)
      --http HOST:PORT     the HTTP/WebSocket API (default 127.0.0.1:7780; "off" for none)
      --console-forward-origin PATTERN
                           where forwarded web services open: a wildcard origin such as
                           http://*.fwd.example.net:7780 (the * is a random label per forward;
                           default http://*.localhost:PORT of --http; "off" for none)
      --tls-cert FILE      certificate (PEM): every listener speaks TLS
      --tls-key FILE       its private key (PEM)
      --name NAME          the hub's name, told to agents (default: the host name)
      --max-agents N       agents at once (default 20000)
      --keepalive DUR      agents ping this often; one silent for 3 times as long is dropped
                           (default 10s)
      --nats URL           join a fleet of hubs on NATS (nats://HOST:PORT or tls://HOST:PORT;
                           repeat it for the servers of a NATS cluster); see docs/scale-out.md
      --advertise HOST:PORT  with --nats: this hub's agent port as agents reach it (dial-backs
                           for users on this hub; default: the --agents address)
      --fleet-ttl DUR      with --nats: an agent's entry lives this long without a refresh
                           (the KV bucket's max_age; default 30s)
      --nats-creds FILE    NATS credentials file (JWT and NKey seed)
      --nats-user NAME     NATS user (password from $WIREKIT_NATS_PASS or --nats-pass-file)
      --nats-pass-file F   the NATS user's password
      --nats-token-file F  a NATS token
      --nats-ca FILE       TLS to NATS: CA certificate (PEM)
      --nats-cert FILE     TLS to NATS: client certificate (PEM)
      --nats-key FILE      TLS to NATS: its private key (PEM)
      --relay HOST:PORT    with --nats: listen for hub-to-hub relay streams there (TLS with
                           --tls-cert), so a session works when an agent cannot dial back to
                           this hub (off by default)
      --relay-advertise HOST:PORT  the relay port as the other hubs reach it
      --fleet-secret-file F  the secret hubs prove on a relay stream (default: derived from
                           hub.json's token secret, which the hubs of a fleet share)
      --log-level LEVEL    silent, error, warn, info (default), debug
      --overlord           accept Overlord ghosts of the current generation (GET /connect on
                           the HTTP port); they cannot authenticate: see docs/overlord.md
      --overlord-classic HOST:PORT
                           accept classic Overlord ghosts on raw TCP there (Overlord's 4455);
                           implies --overlord
      --overlord-allow CIDR
                           only ghosts from these address ranges (repeatable, or comma-separated)
      --lan-discovery      broadcast Overlord's LAN announcement (OVERLORD <ip>:<port>, every 5 s;
                           the /connect port, else the classic one); off by default
      --lan-discovery-to HOST:PORT
                           where to send it (IPv4; default 255.255.255.255:4456)
      --lan-discovery-ip IP  the address announced (default empty: the packet's source)
      --ghost-upgrade-file PATH
                           serve this ghost.py at /upgrade/ghost.py (and its SHA-1): ghosts
                           whose own differs replace themselves with it (default: 404, no upgrade)
      --overlord-webroot DIR
                           serve DIR on the HTTP port as overlordd serves its webroot: Overlord's
                           dashboard (built into DIR/apps/dashboard, its index.html copied to DIR)
                           at /; GET /api/apps lists DIR/apps (hidden files are not served)
      --init               create the state and an admin user, then exit (refuses existing users)
      --admin-user NAME    the admin's name (with --init)
      --admin-pass PASS    the admin's password (with --init; prefer --admin-pass-file or
                           $WIREKIT_ADMIN_PASS: a command line is visible to every user)
      --admin-pass-file F  read the admin's password from F
  -h, --help               show this help

On start it prints the agent port, the enrollment token's file and how to log in.
Stops cleanly on SIGINT or SIGTERM. SIGUSR2 drains it (as wirekit hub drain with defaults).

wirekit hub drain (an admin logged in to the hub, see wirekit login) tells the hub's agents to
move to their next hub, N (--batch, default 100) every --interval (default 1s), each within
--jitter (default: the interval); the hub takes no new agent from then on. It prints each batch
and returns once they are gone. Stop the hub afterwards.`;

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listenSpec(text: string, what: string): ListenSpec {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(text)} (expected HOST:PORT)`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: parseIntArg(m[2]!, `${what} port`, 0, 65535) };
}

function readPassword(flags: Record<string, unknown>, prefix: string): string | undefined {
  if (typeof flags[`${prefix}-pass`] === 'string') return flags[`${prefix}-pass`] as string;
  if (typeof flags[`${prefix}-pass-file`] === 'string') return readFileSync(flags[`${prefix}-pass-file`] as string, 'utf8').replace(/\r?\n$/, '');
  return process.env.WIREKIT_ADMIN_PASS;
}

async function readLine(prompt: string): Promise<string> {
  if (process.env.WIREKIT_PASSWORD !== undefined) return process.env.WIREKIT_PASSWORD;
  const { readPasswordFromTty } = await import('./password-prompt.js');
  return readPasswordFromTty(prompt);
}

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    state: { type: 'string' },
    agents: { type: 'string' },
    users: { type: 'string' },
    http: { type: 'string' },
    'console-forward-origin': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    name: { type: 'string' },
    'max-agents': { type: 'string' },
    keepalive: { type: 'string' },
    'log-level': { type: 'string' },
    overlord: { type: 'boolean' },
    'overlord-classic': { type: 'string' },
    'overlord-allow': { type: 'string', multiple: true },
    'ghost-upgrade-file': { type: 'string' },
    'overlord-webroot': { type: 'string' },
    'lan-discovery': { type: 'boolean' },
    'lan-discovery-to': { type: 'string' },
    'lan-discovery-ip': { type: 'string' },
    nats: { type: 'string', multiple: true },
    advertise: { type: 'string' },
    'fleet-ttl': { type: 'string' },
    'nats-creds': { type: 'string' },
    'nats-user': { type: 'string' },
    'nats-pass-file': { type: 'string' },
    'nats-token-file': { type: 'string' },
    'nats-ca': { type: 'string' },
    'nats-cert': { type: 'string' },
    'nats-key': { type: 'string' },
    relay: { type: 'string' },
    'relay-advertise': { type: 'string' },
    'fleet-secret-file': { type: 'string' },
    hub: { type: 'string', short: 'H' },
    batch: { type: 'string' },
    interval: { type: 'string' },
    jitter: { type: 'string' },
    init: { type: 'boolean' },
    'admin-user': { type: 'string' },
    'admin-pass': { type: 'string' },
    'admin-pass-file': { type: 'string' },
    admin: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (p.flags.help) return (console.log(help), 0);
  const stateDir = path.resolve((p.flags.state as string | undefined) ?? defaultState());
  const level = (p.flags['log-level'] as string | undefined) ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`invalid log level ${JSON.stringify(level)}`);
  const logger = createLogger(level as LogLevel);

  if (p.positionals[0] === 'user') return userCommand(stateDir, p.positionals.slice(1), p.flags.admin === true);
  if (p.positionals[0] === 'drain') return drainCommand(p.flags, p.positionals.slice(1));
  for (const f of ['hub', 'batch', 'interval', 'jitter']) if (p.flags[f] !== undefined) throw new UsageError(`--${f} is an option of wirekit hub drain`);
  if (p.positionals.length) throw new UsageError(`unexpected argument ${p.positionals[0]} (see wirekit hub --help)`);

  if (p.flags.init) {
    const name = p.flags['admin-user'] as string | undefined;
    if (!name) throw new UsageError('--init needs --admin-user NAME');
    const pass = readPassword(p.flags, 'admin') ?? (await readLine(`password for ${name}: `));
    const hub = await Hub.open(stateDir, { logger });
    if (hub.users.size > 0) throw new UsageError(`${stateDir} already has users; use wirekit hub user add`);
    await hub.addUser(name, pass, true);
    console.log(`hub state initialised in ${stateDir}; admin user ${name}`);
    return 0;
  }

  const cert = p.flags['tls-cert'] as string | undefined;
  const key = p.flags['tls-key'] as string | undefined;
  if (!!cert !== !!key) throw new UsageError('--tls-cert and --tls-key go together');
  const httpFlag = p.flags.http as string | undefined;
  const classic = p.flags['overlord-classic'] as string | undefined;
  const allow = ((p.flags['overlord-allow'] as string[] | undefined) ?? []).flatMap((a) => a.split(',')).filter((a) => a !== '');
  if (allow.length && !p.flags.overlord && !classic) throw new UsageError('--overlord-allow needs --overlord or --overlord-classic');
  const upgradeFile = p.flags['ghost-upgrade-file'] as string | undefined;
  if (upgradeFile !== undefined && !p.flags.overlord && !classic) throw new UsageError('--ghost-upgrade-file needs --overlord or --overlord-classic');
  const webrootFlag = p.flags['overlord-webroot'] as string | undefined;
  if (webrootFlag !== undefined && httpFlag === 'off') throw new UsageError('--overlord-webroot needs the HTTP API (not --http off)');
  const webroot = webrootFlag === undefined ? undefined : path.resolve(webrootFlag);
  if (webroot !== undefined && !isDirectory(webroot)) throw new UsageError(`--overlord-webroot ${webrootFlag}: not a directory`);
  const lanTo = p.flags['lan-discovery-to'] as string | undefined;
  const lanIp = p.flags['lan-discovery-ip'] as string | undefined;
  if ((lanTo !== undefined || lanIp !== undefined) && !p.flags['lan-discovery']) throw new UsageError('--lan-discovery-to and --lan-discovery-ip need --lan-discovery');
  if (p.flags['lan-discovery'] && !p.flags.overlord && !classic) throw new UsageError('--lan-discovery needs --overlord or --overlord-classic');
  let lanDiscovery: { host: string; port: number; ip?: string } | undefined;
  if (p.flags['lan-discovery']) {
    const t = lanTo === undefined ? { host: '255.255.255.255', port: 4456 } : listenSpec(lanTo, '--lan-discovery-to');
    if (!isLanTarget(t.host)) throw new UsageError(`--lan-discovery-to needs an IPv4 address (as Overlord), not ${JSON.stringify(t.host)}`);
    if (lanIp !== undefined && !isLanTarget(lanIp)) throw new UsageError(`--lan-discovery-ip needs an IPv4 address, not ${JSON.stringify(lanIp)}`);
    lanDiscovery = { ...t, ...(lanIp !== undefined ? { ip: lanIp } : {}) };
  }
  const overlord =
    p.flags.overlord || classic
      ? {
          classic: classic ? listenSpec(classic, '--overlord-classic') : undefined,
          allowFrom: allow,
          ...(upgradeFile !== undefined ? { ghostUpgradeFile: path.resolve(upgradeFile) } : {}),
          ...(lanDiscovery ? { lanDiscovery } : {}),
        }
      : undefined;
  if (overlord) {
    try {
      allowList(allow);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const forwardFlag = p.flags['console-forward-origin'] as string | undefined;
  const forwardOrigin = forwardFlag === 'off' ? false : forwardFlag;
  if (forwardOrigin) {
    try {
      parseForwardOrigin(forwardOrigin);
    } catch (err) {
      throw new UsageError(`--console-forward-origin: ${(err as Error).message}`);
    }
  }
  const name = (p.flags.name as string | undefined) ?? os.hostname();
  const fleet = natsFleetFrom(p.flags, name);
  installLastResort(logger); // an unexpected error is logged, the hub serves on
  const running = await startHub({
    ...(fleet ? { fleet } : {}),
    ...(typeof p.flags.advertise === 'string' ? { advertise: advertiseSpec(p.flags.advertise, '--advertise') } : {}),
    ...(typeof p.flags.relay === 'string' ? { relay: listenSpec(p.flags.relay, '--relay') } : {}),
    ...(typeof p.flags['relay-advertise'] === 'string' ? { relayAdvertise: advertiseSpec(p.flags['relay-advertise'], '--relay-advertise') } : {}),
    ...(typeof p.flags['fleet-secret-file'] === 'string' ? { fleetSecret: fleetSecretFrom(p.flags['fleet-secret-file']) } : {}),
    stateDir,
    logger,
    name,
    maxAgents: p.flags['max-agents'] ? parseIntArg(p.flags['max-agents'] as string, '--max-agents', 1) : undefined,
    keepaliveMs: p.flags.keepalive ? parseDuration(p.flags.keepalive as string, '--keepalive') : undefined,
    agents: p.flags.agents ? listenSpec(p.flags.agents as string, '--agents') : undefined,
    users: p.flags.users ? listenSpec(p.flags.users as string, '--users') : undefined,
    http: httpFlag === 'off' ? false : httpFlag ? listenSpec(httpFlag, '--http') : undefined,
    tls: cert && key ? { cert: readFileSync(cert), key: readFileSync(key) } : undefined,
    overlord,
    ...(forwardOrigin !== undefined ? { httpApi: { forwardOrigin } } : {}),
    ...(webroot !== undefined ? { webroot } : {}),
  });
  const scheme = running.tls ? 'tls' : 'tcp';
  const fmt = (a: { host: string; port: number }) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  const enrollFile = path.join(stateDir, 'enrollment-token');
  const { writeTokenFile } = await import('../agent/auth.js');
  writeTokenFile(enrollFile, running.hub.enrollmentToken);
  process.stderr.write(
    [
      `wirekit hub ${running.hub.name}: agents on ${scheme}://${fmt(running.agentAddress)}, users on ${scheme}://${fmt(running.userAddress)}` +
        (running.httpAddress ? `, HTTP API on ${running.tls ? 'https' : 'http'}://${fmt(running.httpAddress)}` : ''),
      ...(running.api?.forwards.origin ? [`  forwarded web services (console) on ${running.api.forwards.origin}`] : []),
      ...(running.overlord
        ? [
            `  Overlord ghosts (unauthenticated${allow.length ? `, from ${allow.join(',')}` : ', from anywhere'}):` +
              (running.overlordClassicAddress ? ` classic on tcp://${fmt(running.overlordClassicAddress)}` : '') +
              (running.httpAddress ? ` current on ${running.tls ? 'https' : 'http'}://${fmt(running.httpAddress)}/connect` : ''),
          ]
        : []),
      `  enroll an agent:  wirekit serve --hub ${scheme}://${fmt(running.agentAddress)} --enroll-token-file ${enrollFile}`,
      ...(running.relayAddress ? [`  hub relays on ${scheme}://${fmt(running.relayAddress)}`] : []),
      running.hub.users.size === 0
        ? `  no users yet:     wirekit hub --init --admin-user admin --state ${stateDir}`
        : `  log in:           wirekit login ${scheme}://${fmt(running.userAddress)}`,
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGUSR2', () => {
      if (running.hub.isDraining) return;
      void running.drain().then(({ moved, remaining }) => logger.info(`hub: drain done: ${moved} agents moved, ${remaining} left`));
    });
  });
  await running.close();
  return 0;
}

/** The NATS fleet the flags ask for, or undefined for a hub alone. */
function natsFleetFrom(flags: Record<string, unknown>, name: string): NatsFleet | undefined {
  const servers = (flags.nats as string[] | undefined) ?? [];
  const natsOnly = ['advertise', 'relay', 'relay-advertise', 'fleet-secret-file', 'fleet-ttl', 'nats-creds', 'nats-user', 'nats-pass-file', 'nats-token-file', 'nats-ca', 'nats-cert', 'nats-key'].filter((f) => flags[f] !== undefined);
  if (servers.length === 0) {
    if (natsOnly.length > 0) throw new UsageError(`--${natsOnly[0]} needs --nats`);
    return undefined;
  }
  for (const s of servers) if (!/^(nats|tls):\/\/[^\s/]+(:\d{1,5})?\/?$/.test(s)) throw new UsageError(`invalid NATS URL ${JSON.stringify(s)} (expected nats://HOST:PORT or tls://HOST:PORT)`);
  const file = (f: string) => readFileSync(flags[f] as string, 'utf8').replace(/\r?\n$/, '');
  const user = flags['nats-user'] as string | undefined;
  const pass = flags['nats-pass-file'] !== undefined ? file('nats-pass-file') : process.env.WIREKIT_NATS_PASS;
  if (pass !== undefined && user === undefined && flags['nats-pass-file'] !== undefined) throw new UsageError('--nats-pass-file needs --nats-user');
  if (!!flags['nats-cert'] !== !!flags['nats-key']) throw new UsageError('--nats-cert and --nats-key go together');
  const tlsFiles = { caFile: flags['nats-ca'] as string | undefined, certFile: flags['nats-cert'] as string | undefined, keyFile: flags['nats-key'] as string | undefined };
  return new NatsFleet({
    servers,
    hubId: hubIdFrom(name),
    ...(flags['fleet-ttl'] !== undefined ? { ttlMs: parseDuration(flags['fleet-ttl'] as string, '--fleet-ttl') } : {}),
    ...(user !== undefined ? { user, pass } : {}),
    ...(flags['nats-token-file'] !== undefined ? { token: file('nats-token-file') } : {}),
    ...(flags['nats-creds'] !== undefined ? { credsFile: flags['nats-creds'] as string } : {}),
    ...(tlsFiles.caFile || tlsFiles.certFile ? { tls: Object.fromEntries(Object.entries(tlsFiles).filter(([, v]) => v !== undefined)) } : {}),
  });
}

function advertiseSpec(text: string, what: string): string {
  const spec = listenSpec(text, what);
  if (spec.port === 0) throw new UsageError(`${what} needs a port`);
  return spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`;
}

/** The fleet secret from a file: at least 32 bytes of it (surrounding whitespace removed). */
function fleetSecretFrom(file: string): Uint8Array {
  const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
  if (secret.length < 32) throw new UsageError(`--fleet-secret-file ${file}: the secret must be at least 32 characters`);
  return secret;
}

/** wirekit hub drain: asks the logged-in hub to move its agents away, printing each batch. */
async function drainCommand(flags: Record<string, unknown>, rest: string[]): Promise<number> {
  if (rest.length) throw new UsageError(`unexpected argument ${rest[0]}`);
  const { login } = pickHub(flags.hub as string | undefined);
  const url = parseHubUrl(login.url);
  const session = await connectHub(url.address, { token: login.token }, { tls: hubTls(url, login.ca) });
  try {
    const r = await session.drain({
      ...(flags.batch !== undefined ? { batch: parseIntArg(flags.batch as string, '--batch', 1, 1_000_000) } : {}),
      ...(flags.interval !== undefined ? { intervalMs: parseDuration(flags.interval as string, '--interval') } : {}),
      ...(flags.jitter !== undefined ? { jitterMs: parseDuration(flags.jitter as string, '--jitter') } : {}),
      onProgress: (p) => console.log(`moved ${p.moved}, ${p.remaining} still connected`),
    });
    console.log(`drained: ${r.moved} agents moved, ${r.remaining} still connected`);
    return r.remaining === 0 ? 0 : 1;
  } finally {
    session.close();
  }
}

async function userCommand(stateDir: string, args: string[], admin: boolean): Promise<number> {
  const [verb, name] = args;
  const hub = await Hub.open(stateDir, { logger: createLogger('warn') });
  switch (verb) {
    case 'list':
      for (const u of hub.users.list()) console.log(`${u.username}${u.is_admin ? ' (admin)' : ''}${u.groups.length ? `  groups: ${u.groups.join(',')}` : ''}`);
      return 0;
    case 'add':
    case 'passwd': {
      if (!name) throw new UsageError(`wirekit hub user ${verb} NAME`);
      const pass = await readLine(`password for ${name}: `);
      if (verb === 'add') await hub.addUser(name, pass, admin);
      else await hub.setPassword(name, pass);
      console.log(verb === 'add' ? `user ${name} added${admin ? ' (admin)' : ''}` : `password of ${name} changed`);
      return 0;
    }
    case 'remove':
      if (!name) throw new UsageError('wirekit hub user remove NAME');
      await hub.removeUser(name);
      console.log(`user ${name} removed`);
      return 0;
    default:
      throw new UsageError('wirekit hub user add NAME [--admin] | remove NAME | passwd NAME | list');
  }
}

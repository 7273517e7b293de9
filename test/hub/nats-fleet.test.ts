/**
 * Several hubs, one fleet, on a real nats-server: three `wirekit hub --nats` children sharing one
 * NATS, thirty agents (HubDialer, one AgentDaemon serving them all) spread over them. Every hub
 * lists the whole fleet; sessions to an agent on another hub behave as direct ones; the allowlist
 * holds across hubs; two agents claiming one id on two hubs: one wins; NATS restarted: the hubs
 * resync; a hub killed: its agents reappear on the others and no stale entry survives the TTL; an
 * agent that cannot reach the user's hub: its own hub relays the session (hub-to-hub stream); a hub
 * drained: its agents move to the others in batches.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { connect as natsConnect } from 'nats';
import { AgentClient } from '../../src/agent/client.js';
import { AgentDaemon } from '../../src/agent/daemon.js';
import { HubDialer, type DialOutState } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';
import { connectHub, type HubCredentials } from '../../src/hub/hub-client.js';
import { AGENTS_BUCKET, parseAgentRecord } from '../../src/hub/nats-records.js';
import { openRelay } from '../../src/hub/fleet-relay.js';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import { NatsServer } from '../helpers/nats-server.js';
import { PEERS, skipWithout } from '../helpers/peers.js';

const skip = skipWithout(PEERS.natsServer);
const quiet = createLogger('silent');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-fleet-')));
const children = new Set<ChildProcess>();
const cli = cliRunner(() => ({ ...process.env, WIREKIT_TOKEN: '', WIREKIT_ADDRESS: '', WIREKIT_HUB: '' }), children);
const TTL = '3s';
const ROOT: HubCredentials = { username: 'root', password: 'rootpass' };
const ANN: HubCredentials = { username: 'ann', password: 'annpass' };

interface HubChild {
  name: string;
  child: ChildProcess;
  agents: { host: string; port: number };
  users: { host: string; port: number };
  relay: { host: string; port: number } | undefined;
  log: string[];
}

let nats: NatsServer;
const hubs: HubChild[] = [];
let enrollment = '';
const daemon = new AgentDaemon({ logger: quiet });
const dialers = new Map<string, HubDialer>();
const ids = Array.from({ length: 30 }, (_, i) => `a${String(i).padStart(2, '0')}`);

function stateDir(i: number): string {
  return path.join(dir, `state${i}`);
}

async function startHubChild(i: number, extra: readonly string[] = []): Promise<HubChild> {
  const name = `h${i}`;
  const child = spawn(
    process.execPath,
    [MAIN, 'hub', '--state', stateDir(i), '--name', name, '--nats', nats.url, '--fleet-ttl', TTL, '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', 'off', '--keepalive', '300ms', '--log-level', 'info', '--relay', '127.0.0.1:0', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } },
  );
  children.add(child);
  const log: string[] = [];
  child.stderr!.on('data', (d: Buffer) => log.push(String(d)));
  const m = await waitLine(child.stderr!, /agents on tcp:\/\/(127\.0\.0\.1):(\d+), users on tcp:\/\/(127\.0\.0\.1):(\d+)/);
  const r = /hub relays on tcp:\/\/(127\.0\.0\.1):(\d+)/.exec(log.join(''));
  return { name, child, log, agents: { host: m[1]!, port: Number(m[2]) }, users: { host: m[3]!, port: Number(m[4]) }, relay: r ? { host: r[1]!, port: Number(r[2]) } : undefined };
}

/** Stops a hub child (SIGTERM, SIGKILL if it does not exit within 5 s). */
async function stopHubChild(h: HubChild): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  const exited = once(h.child, 'exit');
  h.child.kill('SIGTERM');
  const force = setTimeout(() => h.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(force);
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function startAgent(id: string, order: readonly HubChild[], properties: Record<string, unknown>): HubDialer {
  dialers.get(id)?.stop();
  const d = new HubDialer({
    hub: order.map((h) => h.agents),
    register: { id, hostname: `${id}.test`, version: 'test', capabilities: ['exec', 'terminal', 'upload', 'download', 'forward'], properties },
    enrollmentToken: enrollment,
    tokenFile: path.join(dir, `${id}.token`),
    logger: quiet,
    backoffMinMs: 100,
    backoffMaxMs: 1000,
    serve: (stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user}`, leftover }),
  });
  dialers.set(id, d);
  void d.start();
  return d;
}

function waitState(d: HubDialer, want: DialOutState): Promise<string | undefined> {
  if (d.state === want) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const off = d.onState((s, detail) => {
      if (s === want) {
        off();
        resolve(detail);
      }
    });
  });
}

async function listing(h: HubChild, who: HubCredentials = ROOT): Promise<string[]> {
  const s = await connectHub(h.users, who, { timeoutMs: 5000 });
  try {
    return (await s.agents()).map((a) => a.id);
  } finally {
    s.close();
  }
}

/** Waits until `cond` holds for the listing of every hub in `on` (polling the hubs, as a user would). */
async function waitListings(on: readonly HubChild[], cond: (ids: string[]) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[][] = [];
  for (;;) {
    last = await Promise.all(on.map((h) => listing(h).catch(() => [] as string[])));
    if (last.every(cond)) return;
    if (Date.now() > deadline) throw new Error(`${what}: listings ${JSON.stringify(last.map((l) => `${l.length}: ${l.join(',')}`))}\n${on.map((h) => h.log.join('')).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exactly = (want: readonly string[]) => (got: string[]) => got.length === want.length && want.every((w, i) => got[i] === w);

/** A client for `agent` through hub `h`'s user port, as `wirekit -A agent` builds it. */
function through(h: HubChild, agent: string, who: HubCredentials = ROOT): AgentClient {
  return new AgentClient({
    address: { kind: 'tcp', host: h.users.host, port: h.users.port, tls: false },
    label: `agent ${agent} via hub ${h.name}`,
    timeoutMs: 10_000,
    dial: async () => {
      const s = await connectHub(h.users, who, { timeoutMs: 10_000 });
      try {
        return await s.route(agent);
      } catch (err) {
        s.close();
        throw err;
      }
    },
  });
}

/** The hub an agent is on, from the KV. */
async function holders(): Promise<Map<string, string>> {
  const nc = await natsConnect({ servers: nats.url });
  try {
    const kv = await nc.jetstream().views.kv(AGENTS_BUCKET, { bindOnly: true });
    const out = new Map<string, string>();
    let done!: () => void;
    const initialized = new Promise<void>((r) => (done = r));
    const w = await kv.watch({ initializedFn: () => done() });
    void (async () => {
      for await (const e of w) {
        if (e.operation === 'PUT') {
          const r = parseAgentRecord(e.value);
          out.set(r.id, r.hub);
        } else out.delete(Buffer.from(e.key, 'base64url').toString());
      }
    })();
    await initialized;
    w.stop();
    return out;
  } finally {
    await nc.close();
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<string> {
  let s = '';
  for await (const c of stream) s += String(c);
  return s;
}

async function readUntil(stream: Duplex | NodeJS.ReadableStream, text: string): Promise<string> {
  let got = '';
  for await (const chunk of stream) {
    got += String(chunk);
    if (got.includes(text)) return got;
  }
  return got;
}

before(async () => {
  if (skip) return;
  nats = await NatsServer.start();
  const init = await cli(['hub', '--init', '--admin-user', 'root', '--state', stateDir(1)], { env: { WIREKIT_ADMIN_PASS: 'rootpass' } });
  assert.equal(init.code, 0, init.stderr);
  const add = await cli(['hub', 'user', 'add', 'ann', '--state', stateDir(1)], { env: { WIREKIT_PASSWORD: 'annpass' } });
  assert.equal(add.code, 0, add.stderr);
  // The hubs of one fleet share their secrets and users (docs/scale-out.md): copy them.
  for (const i of [2, 3, 4, 5]) {
    mkdirSync(stateDir(i), { mode: 0o700 });
    for (const f of ['hub.json', 'users.json']) {
      copyFileSync(path.join(stateDir(1), f), path.join(stateDir(i), f));
      chmodSync(path.join(stateDir(i), f), 0o600);
    }
  }
  hubs.push(...(await Promise.all([1, 2, 3].map((i) => startHubChild(i)))));
  enrollment = readFileSync(path.join(stateDir(1), 'enrollment-token'), 'utf8').trim();
  ids.forEach((id, i) => {
    const order = [0, 1, 2].map((k) => hubs[(i + k) % 3]!);
    startAgent(id, order, { n: i, allowlist: i % 2 === 0 ? ['u/ann'] : ['u/bob'] });
  });
  await waitListings(hubs, exactly(ids), 'thirty agents on every hub');
});

after(async () => {
  for (const d of dialers.values()) d.stop();
  for (const c of children) c.kill('SIGKILL');
  await daemon.close();
  await nats?.close();
});

test('every hub lists all thirty agents, wherever each is connected', { skip }, async () => {
  for (const h of hubs) assert.deepEqual(await listing(h), ids);
  const where = await holders();
  assert.equal(where.size, 30);
  // Spread: agent i started on hub i % 3.
  assert.deepEqual(ids.map((id) => where.get(id)), ids.map((_, i) => `h${(i % 3) + 1}`));
});

test('exec, shell, cp and forward to an agent on another hub, with the same assertions as direct', { skip }, async () => {
  // a01 is on h2; the user is on h1.
  const client = through(hubs[0]!, 'a01');
  const run = await client.exec(['sh', '-c', 'read x; echo "out $x"; echo err >&2; exit 7']);
  run.stdin.end('typed\n');
  const [out, err, status] = await Promise.all([collect(run.stdout), collect(run.stderr), run.exit]);
  assert.equal(out, 'out typed\n');
  assert.equal(err, 'err\n');
  assert.equal(status.code, 7);

  const term = await client.terminal({ argv: ['sh'], cols: 80, rows: 24 });
  term.write('echo "sum $((40+2))"\n');
  assert.match(await readUntil(term.output, 'sum 42'), /sum 42/);
  term.write('exit 3\n');
  assert.equal((await term.exit).code, 3);

  const data = randomBytes(2 * 1024 * 1024 + 5);
  const src = path.join(dir, 'up.bin');
  writeFileSync(src, data);
  const remote = path.join(dir, 'remote.bin');
  // SHA-256 asked for: the default is BLAKE3 when both sides have it (test/cli/cp.test.ts).
  const up = await client.upload(src, remote, { checksum: 'sha256' });
  const sha = createHash('sha256').update(data).digest('hex');
  assert.equal(up.sha256, sha);
  assert.deepEqual(readFileSync(remote), data);
  const back = path.join(dir, 'down.bin');
  const down = await through(hubs[2]!, 'a01').download(remote, back, { checksum: 'sha256' });
  assert.equal(down.sha256, sha);
  assert.deepEqual(readFileSync(back), data);

  const server = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const tunnel = await client.forward('127.0.0.1', (server.address() as net.AddressInfo).port);
  tunnel.write('GET /fleet HTTP/1.0\r\nHost: x\r\n\r\n');
  assert.match(await collect(tunnel), /hello from \/fleet$/);
  server.close();

  const missing = through(hubs[0]!, 'nope');
  await assert.rejects(missing.exec(['true']), /no agent nope/);
});

test("a user's allowlist holds across hubs", { skip }, async () => {
  const even = ids.filter((_, i) => i % 2 === 0);
  for (const h of hubs) assert.deepEqual(await listing(h, ANN), even);
  // a03 (h1, bob's) through h3: refused; a04 (h2, ann's) through h3: served.
  await assert.rejects(through(hubs[2]!, 'a03', ANN).exec(['true']), /may not open agent a03/);
  const run = await through(hubs[2]!, 'a04', ANN).exec(['echo', 'ann']);
  assert.equal(await collect(run.stdout), 'ann\n');
  assert.equal((await run.exit).code, 0);
});

test('two agents claiming one id on two hubs at once: exactly one wins', { skip }, async () => {
  const first = startAgent('dup', [hubs[0]!], { allowlist: ['anyone'], which: 'one' });
  const second = new HubDialer({
    hub: [hubs[1]!.agents],
    register: { id: 'dup', hostname: 'dup2.test', version: 'test', capabilities: ['exec'], properties: { allowlist: ['anyone'], which: 'two' } },
    enrollmentToken: enrollment,
    tokenFile: path.join(dir, 'dup2.token'),
    logger: quiet,
    backoffMinMs: 100,
    backoffMaxMs: 1000,
    serve: (stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user}`, leftover }),
  });
  void second.start();
  const outcome = (d: HubDialer) =>
    new Promise<'won' | 'lost'>((resolve) => {
      const off = d.onState((s, detail) => {
        if (s === 'registered') resolve('won');
        if (s === 'waiting' && /duplicate agent id: dup/.test(detail ?? '')) resolve('lost');
        if (s === 'registered' || s === 'waiting') off();
      });
    });
  const results = await Promise.all([outcome(first), outcome(second)]);
  assert.deepEqual([...results].sort(), ['lost', 'won']);
  const winner = results[0] === 'won' ? first : second;
  const loser = winner === first ? second : first;
  await waitListings(hubs, (l) => l.filter((x) => x === 'dup').length === 1, 'dup listed once on every hub');
  // The loser keeps being refused while the winner holds the id.
  await waitState(loser, 'connecting');
  assert.match((await waitState(loser, 'waiting')) ?? '', /duplicate agent id: dup/);
  loser.stop();
  winner.stop();
  dialers.delete('dup');
  await waitListings(hubs, exactly(ids), 'dup gone from every hub');
});

/** A GET of hub `port`'s HTTP API with a bearer token: status and JSON body. */
async function apiGet(port: number, token: string, pathname: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.json() };
}

test('ls details and properties of agents on other hubs come from the fleet registry, under the same allowlist', { skip }, async () => {
  // h5 holds no agent: every one it shows is on another hub.
  const h5 = await startHubChild(5, ['--http', '127.0.0.1:0']);
  try {
    const port = Number(/HTTP API on http:\/\/127\.0\.0\.1:(\d+)/.exec(h5.log.join(''))![1]);
    await waitListings([h5], exactly(ids), 'h5 lists the fleet');
    // The user port's listing (`wirekit ls`): details as the agent registered them on its own hub (h2).
    const s = await connectHub(h5.users, ROOT, { timeoutMs: 5000 });
    let a01;
    try {
      a01 = (await s.agents()).find((a) => a.id === 'a01');
    } finally {
      s.close();
    }
    assert.equal(a01?.hostname, 'a01.test');
    assert.equal(a01?.version, 'test');
    assert.deepEqual(a01?.capabilities, ['exec', 'terminal', 'upload', 'download', 'forward']);
    assert.deepEqual(a01?.properties, { n: 1, allowlist: ['u/bob'] });
    assert.match(a01?.address ?? '', /^127\.0\.0\.1/);
    // The HTTP API's per-agent route, with the allowlist: ann may see a00 (u/ann), not a01 (u/bob).
    const login = async (who: HubCredentials) => {
      const res = await fetch(`http://127.0.0.1:${port}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(who), signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      return ((await res.json()) as { data: { token: string } }).data.token;
    };
    const root = await login(ROOT);
    const ann = await login(ANN);
    assert.deepEqual(await apiGet(port, root, '/api/agents/a01/properties'), { status: 200, body: { status: 'success', data: { n: 1, allowlist: ['u/bob'] } } });
    assert.deepEqual((await apiGet(port, ann, '/api/agents/a00/properties')).body, { status: 'success', data: { n: 0, allowlist: ['u/ann'] } });
    assert.equal((await apiGet(port, ann, '/api/agents/a01/properties')).status, 401);
    assert.equal((await apiGet(port, root, '/api/agents/nobody/properties')).status, 404);
  } finally {
    await stopHubChild(h5);
  }
});

test("an agent that cannot reach the user's hub: its hub relays the session over a hub-to-hub stream", { skip }, async () => {
  // h4 advertises an agent port nobody listens on: no agent can dial back to it.
  const h4 = await startHubChild(4, ['--advertise', `127.0.0.1:${await closedPort()}`]);
  try {
    await waitListings([h4], exactly(ids), 'h4 lists the fleet');
    // a01 is on h2; the user is on h4.
    const client = through(h4, 'a01');
    const run = await client.exec(['sh', '-c', 'read x; echo "out $x"; echo err >&2; exit 5']);
    run.stdin.end('relayed\n');
    const [out, err, status] = await Promise.all([collect(run.stdout), collect(run.stderr), run.exit]);
    assert.equal(out, 'out relayed\n');
    assert.equal(err, 'err\n');
    assert.equal(status.code, 5);
    const term = await client.terminal({ argv: ['sh'], cols: 80, rows: 24 });
    term.write('echo "sum $((20+3))"\n');
    assert.match(await readUntil(term.output, 'sum 23'), /sum 23/);
    term.write('exit 4\n');
    assert.equal((await term.exit).code, 4);
    const data = randomBytes(1024 * 1024 + 3);
    const src = path.join(dir, 'relay-up.bin');
    writeFileSync(src, data);
    const remote = path.join(dir, 'relay-remote.bin');
    const up = await client.upload(src, remote, { checksum: 'sha256' });
    assert.equal(up.sha256, createHash('sha256').update(data).digest('hex'));
    assert.deepEqual(readFileSync(remote), data);
    assert.match(hubs[1]!.log.join(''), /relaying h4\.\S+ of a01 to hub h4/);
    assert.match(h4.log.join(''), /relayed by hub h2/);
    // Only a hub holding the fleet secret may relay.
    await assert.rejects(
      openRelay(`127.0.0.1:${h4.relay!.port}`, { secret: randomBytes(32), from: 'h2', sid: 'h4.nothing', agent: 'a01', tls: false, timeoutMs: 5000 }),
      /refused the relay: relay: wrong fleet secret/,
    );
  } finally {
    await stopHubChild(h4);
  }
});

test('a hub drained: its agents move to the other hubs in staggered batches, and it takes no new one', { skip }, async () => {
  const h5 = await startHubChild(5);
  const mine = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5'];
  try {
    for (const id of mine) startAgent(id, [h5, hubs[1]!], { allowlist: ['anyone'] });
    await waitListings([h5, hubs[0]!], (l) => mine.every((id) => l.includes(id)), 'the d agents on h5, listed by h1 too');
    const before = await holders();
    assert.deepEqual(mine.map((id) => before.get(id)), mine.map(() => 'h5'));
    const xdg = path.join(dir, 'xdg');
    const env = { XDG_CONFIG_HOME: xdg };
    const login = await cli(['login', `tcp://${h5.users.host}:${h5.users.port}`, '-u', 'root'], { env: { ...env, WIREKIT_PASSWORD: 'rootpass' } });
    assert.equal(login.code, 0, login.stderr);
    const drained = await cli(['hub', 'drain', '--batch', '2', '--interval', '200ms'], { env, timeoutMs: 30_000 });
    assert.equal(drained.code, 0, drained.stderr);
    assert.deepEqual(String(drained.stdout).trim().split('\n'), ['moved 2, 4 still connected', 'moved 4, 2 still connected', 'moved 6, 0 still connected', 'drained: 6 agents moved, 0 still connected']);
    // Each moved agent went on to its next hub, h2, and is usable there.
    await waitListings([hubs[0]!, hubs[1]!, h5], (l) => mine.every((id) => l.includes(id)), 'the d agents listed again');
    const deadline = Date.now() + 20_000;
    let after = await holders();
    while (!mine.every((id) => after.get(id) === 'h2') && Date.now() < deadline) after = await holders();
    assert.deepEqual(mine.map((id) => after.get(id)), mine.map(() => 'h2'));
    const r = await through(hubs[0]!, 'd3').exec(['echo', 'moved']);
    assert.equal(await collect(r.stdout), 'moved\n');
    // A draining hub takes no new agent.
    const fresh = startAgent('fresh', [h5], { allowlist: ['anyone'] });
    assert.match((await waitState(fresh, 'waiting')) ?? '', /WK_DRAINING: hub h5 is draining/);
  } finally {
    for (const id of [...mine, 'fresh']) {
      dialers.get(id)?.stop();
      dialers.delete(id);
    }
    await stopHubChild(h5);
  }
  await waitListings(hubs, exactly(ids), 'the d agents gone from every hub');
});

test('NATS restarted: each hub serves its own agents meanwhile, then the hubs resync', { skip }, async () => {
  await nats.stop(true);
  // h1's own agent a00, through h1: served without NATS.
  const run = await through(hubs[0]!, 'a00').exec(['echo', 'alone']);
  assert.equal(await collect(run.stdout), 'alone\n');
  // An agent joins h2 while NATS is away: only h2 has it.
  const late = startAgent('late', [hubs[1]!], { allowlist: ['anyone'] });
  await waitState(late, 'registered');
  assert.ok((await listing(hubs[1]!)).includes('late'));
  await nats.start();
  const all = [...ids, 'late'].sort();
  await waitListings(hubs, exactly(all), 'every hub resynced after the NATS restart');
  const r = await through(hubs[2]!, 'late').exec(['echo', 'resynced']);
  assert.equal(await collect(r.stdout), 'resynced\n');
});

test('a hub killed: its agents reappear on the others, sessions elsewhere go on, no stale entry survives the TTL', { skip }, async () => {
  // A session through h1 to a01 (on h2) stays open across the kill of h3.
  const server = http.createServer((req, res) => res.end(`still ${req.url}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const term = await through(hubs[0]!, 'a01').terminal({ argv: ['sh'] });
  const dead = hubs[2]!;
  const onDead = ids.filter((_, i) => i % 3 === 2);
  dead.child.kill('SIGKILL');
  // a02 dies with its hub: its entry must go by the TTL, on every hub and in the KV.
  dialers.get('a02')!.stop();
  const survivors = [...ids.filter((id) => id !== 'a02'), 'late'].sort();
  await waitListings([hubs[0]!, hubs[1]!], exactly(survivors), 'h3 agents moved to h1/h2 and a02 expired');
  const where = await holders();
  for (const id of onDead.filter((x) => x !== 'a02')) assert.match(where.get(id) ?? '', /^h[12]$/, `${id} is on ${where.get(id)}`);
  assert.equal([...where.values()].filter((h) => h === 'h3').length, 0);
  assert.equal(where.has('a02'), false);
  // The moved agents are usable through either hub.
  const r = await through(hubs[1]!, 'a05').exec(['echo', 'moved']);
  assert.equal(await collect(r.stdout), 'moved\n');
  term.write('echo "after $((1+1))"\n');
  assert.match(await readUntil(term.output, 'after 2'), /after 2/);
  term.write('exit\n');
  await term.exit;
  server.close();
});

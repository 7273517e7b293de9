/**
 * Fleet hubs on NATS: a real nats-server (skipped without it), two hubs in this process joined by
 * NatsFleet, simulated agents (test/helpers/agent-swarm.ts) split over them, one real agent daemon.
 *   - registry convergence: from the first agent connecting until both hubs list every agent;
 *   - session setup (connect through the user's hub to the first `ping` reply), agent on the same
 *     hub against agent on the other hub, p50 and p99.
 * In-process, so the agent count is bounded by this process's file limit (two sockets per agent).
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../src/agent/client.js';
import { AgentDaemon } from '../src/agent/daemon.js';
import { HubDialer } from '../src/agent/dial-out.js';
import { createLogger } from '../src/agent/log.js';
import { connectHub } from '../src/hub/hub-client.js';
import { Hub } from '../src/hub/hub.js';
import { NatsFleet } from '../src/hub/nats-fleet.js';
import { startHub, type RunningHub } from '../src/hub/server.js';
import { AgentSwarm } from '../test/helpers/agent-swarm.js';
import { NatsServer } from '../test/helpers/nats-server.js';
import type { BenchContext, Reporter } from './harness.js';

export const name = 'nats';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'hub-child.js');

const quiet = createLogger('silent');
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  if (spawnSync('nats-server', ['--version']).status !== 0) {
    console.log('  (skipped: needs nats-server, apt-get install nats-server)');
    return;
  }
  // WIREKIT_BENCH_NATS_PART=scale (or in-process) runs one part only.
  const part = process.env.WIREKIT_BENCH_NATS_PART;
  if (part === undefined || part === 'in-process') await inProcess(reporter, ctx);
  if (part === undefined || part === 'scale') await scale(reporter, ctx);
}

type Msg = { type: string; [k: string]: unknown };

function ask(child: ChildProcess, m: Msg, answer: string, timeoutMs = 60_000): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`${answer}: no answer from child ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (r: Msg) => {
      if (r.type === answer) done(undefined, r);
      else if (r.type === 'failed') done(new Error(String(r.message)));
    };
    const onExit = (code: number | null) => done(new Error(`child ${child.pid} exited (${code}) before ${answer}`));
    const done = (err?: Error, r?: Msg) => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(r!);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
    if (m.type !== '') child.send(m);
  });
}

/** Polls until `cond` holds or `timeoutMs` passes; resolves with whether it held. */
async function until(cond: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/**
 * Two fleet hubs as child processes (bench/hub-child.ts fleet-hub, so each one's RSS is its own and
 * each holds its agents under the per-process file limit), two swarm processes of N/2 simulated
 * agents each, one nats-server with monitoring (-m) for its byte counters:
 *   - registry convergence: swarms started → both hubs list all N;
 *   - hub RSS per agent: a hub's RSS after a full GC over its baseline before any agent, divided by
 *     its own agents (it also lists the other hub's N/2);
 *   - NATS traffic per agent per minute: /varz in_bytes and out_bytes over a steady window;
 *   - failover: the first swarm's agents leave, then hub 2 (about N/2 agents) is SIGKILLed; time until
 *     hub 1 holds every one of them (agents reconnect with the dialer's backoff and full jitter,
 *     0.25–0.5 s at the first failure). The survivor must hold the N/2 alone, hence the first step:
 *     one process cannot hold N = 20,000 sockets under this machine's file limit of 20,000.
 */
async function scale(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const total = Number(process.env.WIREKIT_BENCH_FLEET_AGENTS ?? (ctx.quick ? 2000 : 20_000));
  const half = Math.floor(total / 2);
  const windowMs = ctx.quick ? 10_000 : 30_000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-fleet-'));
  const nats = await NatsServer.start({ monitor: true });
  const kids: ChildProcess[] = [];
  try {
    const first = await Hub.open(path.join(dir, 's1'), { logger: quiet, scryptCost: { logN: 10, r: 8, p: 1 } });
    mkdirSync(path.join(dir, 's2'), { mode: 0o700 });
    copyFileSync(path.join(dir, 's1', 'hub.json'), path.join(dir, 's2', 'hub.json'));
    chmodSync(path.join(dir, 's2', 'hub.json'), 0o600);
    const token = first.enrollmentToken;
    const hubs = [1, 2].map((i) => fork(CHILD, ['fleet-hub', path.join(dir, `s${i}`), `f${i}`, nats.url, '30000'], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    kids.push(...hubs);
    const ready = await Promise.all(hubs.map((h) => ask(h, { type: '' }, 'ready', 30_000)));
    const addrs = ready.map((r) => r.agentAddress as { host: string; port: number });
    const base = await Promise.all(hubs.map((h) => ask(h, { type: 'mem' }, 'mem')));
    const swarms = [0, 1].map(() => fork(CHILD, ['swarm'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    kids.push(...swarms);
    await Promise.all(swarms.map((s) => ask(s, { type: '' }, 'ready', 30_000)));
    const counts = () => Promise.all(hubs.map((h) => ask(h, { type: 'count' }, 'count')));
    const t0 = performance.now();
    const started = swarms.map((s, k) =>
      ask(
        s,
        {
          type: 'start',
          hub: addrs[k],
          hubs: addrs,
          reconnect: { minMs: 500, maxMs: 30_000 },
          count: half,
          token,
          idPrefix: `f${k + 1}-`,
          concurrency: 64,
          localAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'],
        },
        'registered',
        300_000,
      ),
    );
    await Promise.all(started);
    const converged = await until(async () => (await counts()).every((c) => c.listed === 2 * half), 300_000, 200);
    if (!converged) throw new Error(`fleet: not converged: ${JSON.stringify(await counts())}`);
    const convergedMs = performance.now() - t0;
    const n = (2 * half).toLocaleString('en-US');
    reporter.add({ workload: `registry convergence, ${n} agents over two hub processes`, impl: 'wirekit NATS fleet', value: convergedMs, unit: 'ms', higherIsBetter: false, baseline: true, note: 'swarms start → both hubs list all' });
    const mem = await Promise.all(hubs.map((h) => ask(h, { type: 'mem' }, 'mem')));
    for (const [i, m] of mem.entries()) {
      const per = ((m.rss as number) - (base[i]!.rss as number)) / (m.agents as number);
      reporter.add({ workload: `hub RSS per agent, ${n} agents over two hubs (each holds ${half.toLocaleString('en-US')}, lists all)`, impl: `hub ${i + 1}`, value: per / 1024, unit: 'KiB', higherIsBetter: false, baseline: i === 0, note: `RSS ${Math.round((m.rss as number) / 2 ** 20)} MiB, baseline ${Math.round((base[i]!.rss as number) / 2 ** 20)} MiB` });
    }
    // NATS traffic in a steady state (every claim refreshed every TTL/3 = 10 s).
    const v0 = await nats.varz();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const v1 = await nats.varz();
    const perAgentMin = (bytes: number) => (bytes / (2 * half)) * (60_000 / (performance.now() - w0));
    reporter.add({ workload: `NATS traffic per agent per minute, steady (${n} agents, TTL 30 s)`, impl: 'into nats-server (in_bytes)', value: perAgentMin(v1.in_bytes - v0.in_bytes), unit: 'B', higherIsBetter: false, baseline: true, note: `${((v1.in_msgs - v0.in_msgs) / (2 * half) * (60_000 / windowMs)).toFixed(1)} msgs` });
    reporter.add({ workload: `NATS traffic per agent per minute, steady (${n} agents, TTL 30 s)`, impl: 'out of nats-server (out_bytes)', value: perAgentMin(v1.out_bytes - v0.out_bytes), unit: 'B', higherIsBetter: false, baseline: false, note: `${((v1.out_msgs - v0.out_msgs) / (2 * half) * (60_000 / windowMs)).toFixed(1)} msgs` });
    // Failover: hub 1 is emptied (its own swarm leaves), then hub 2 and its half are killed.
    await ask(swarms[0]!, { type: 'exit' }, 'none', 2000).catch(() => undefined);
    // Left: the second swarm's agents only (a few may sit on hub 1 already, after a refused first try).
    if (!(await until(async () => (await counts()).reduce((n, c) => n + (c.local as number), 0) === half, 60_000, 200))) throw new Error(`fleet: hubs kept the first swarm's agents: ${JSON.stringify(await counts())}`);
    const onKilled = (await counts())[1]!.local as number;
    const tk = performance.now();
    hubs[1]!.kill('SIGKILL');
    const failed = await until(async () => ((await ask(hubs[0]!, { type: 'count' }, 'count')).local as number) === half, 120_000, 50);
    const failoverMs = performance.now() - tk;
    const st = await ask(swarms[1]!, { type: 'status' }, 'status');
    if (!failed) {
      const held = (await ask(hubs[0]!, { type: 'count' }, 'count')).local as number;
      console.log(`  (failover incomplete: ${held} of ${half} agents on the surviving hub after 120 s)`);
      reporter.add({ workload: `failover: hub with ${onKilled.toLocaleString('en-US')} agents SIGKILLed → held by the other hub after 120 s`, impl: 'wirekit NATS fleet', value: held, unit: 'agents', higherIsBetter: true, baseline: true, note: 'incomplete' });
      return;
    }
    reporter.add({ workload: `failover: hub with ${onKilled.toLocaleString('en-US')} agents SIGKILLed → all held by the other hub`, impl: 'wirekit NATS fleet', value: failoverMs, unit: 'ms', higherIsBetter: false, baseline: true, note: `first retry 0.25–0.5 s, full jitter; ${st.reconnected as number} reconnects in all` });
  } finally {
    for (const k of kids) k.kill('SIGKILL');
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function inProcess(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const agents = ctx.quick ? 1000 : 8000;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-nats-'));
  const nats = await NatsServer.start();
  const hubs: RunningHub[] = [];
  const daemon = new AgentDaemon({ logger: quiet });
  let swarms: AgentSwarm[] = [];
  let dialer: HubDialer | undefined;
  try {
    const first = await Hub.open(path.join(dir, 's1'), { logger: quiet, scryptCost: { logN: 10, r: 8, p: 1 } });
    await first.addUser('root', 'rootpass', true);
    mkdirSync(path.join(dir, 's2'), { mode: 0o700 });
    for (const f of ['hub.json', 'users.json']) {
      copyFileSync(path.join(dir, 's1', f), path.join(dir, 's2', f));
      chmodSync(path.join(dir, 's2', f), 0o600);
    }
    for (const i of [1, 2]) {
      hubs.push(
        await startHub({
          stateDir: path.join(dir, `s${i}`),
          logger: quiet,
          name: `b${i}`,
          agents: { host: '127.0.0.1', port: 0 },
          users: { host: '127.0.0.1', port: 0 },
          http: false,
          maxAgents: 50_000,
          agentPort: { maxHandshakesPerAddress: 1024 },
          fleet: new NatsFleet({ servers: [nats.url], hubId: `b${i}`, ttlMs: 30_000 }),
        }),
      );
    }
    const [h1, h2] = hubs as [RunningHub, RunningHub];
    const token = h1.hub.enrollmentToken;
    const t0 = performance.now();
    swarms = await Promise.all(
      [h1, h2].map((h, k) =>
        AgentSwarm.start({ hub: h.agentAddress, count: agents / 2, enrollmentToken: token, idPrefix: `sim${k}-`, concurrency: 128, localAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'] }),
      ),
    );
    const root = { username: 'root', isAdmin: true, groups: ['admin'] };
    while (h1.hub.listAgents(root).length < agents || h2.hub.listAgents(root).length < agents) await new Promise((r) => setTimeout(r, 20));
    const converged = performance.now() - t0;
    reporter.add({ workload: `registry convergence, ${agents.toLocaleString('en-US')} agents over two hubs`, impl: 'wirekit NATS fleet', value: converged, unit: 'ms', higherIsBetter: false, baseline: true, note: 'first connect to both hubs listing all' });

    // One real agent on hub 1; sessions from a user on hub 1 (same hub) and on hub 2 (cross-hub).
    dialer = new HubDialer({
      hub: h1.agentAddress,
      register: { id: 'real', hostname: 'real', version: 'bench', capabilities: ['exec'], properties: {} },
      enrollmentToken: token,
      tokenFile: path.join(dir, 'real.token'),
      logger: quiet,
      serve: (stream, leftover) => daemon.serveConnection(stream, { peer: 'bench', leftover }),
    });
    await dialer.start();
    while (h2.hub.fleet.getRemote('real') === undefined || h1.hub.registry.get('real') === undefined) await new Promise((r) => setTimeout(r, 10));
    const { token: userToken } = await h1.hub.login('root', 'rootpass', 'bench');
    const setup = async (h: RunningHub) => {
      const client = new AgentClient({
        address: { kind: 'tcp', host: h.userAddress.host, port: h.userAddress.port, tls: false },
        timeoutMs: 10_000,
        dial: async () => (await connectHub(h.userAddress, { token: userToken }, { timeoutMs: 10_000 })).route('real'),
      });
      const t = performance.now();
      const conn = await client.connect();
      await conn.call('ping', {});
      const ms = performance.now() - t;
      conn.close();
      return ms;
    };
    const runs = ctx.quick ? 50 : 300;
    for (const [label, h] of [['same hub', h1], ['cross-hub', h2]] as const) {
      await setup(h);
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await setup(h));
      reporter.add({ workload: 'session setup p50 (connect → first ping reply)', impl: label, value: pct(times, 50), unit: 'ms', higherIsBetter: false, baseline: label === 'same hub' });
      reporter.add({ workload: 'session setup p99 (connect → first ping reply)', impl: label, value: pct(times, 99), unit: 'ms', higherIsBetter: false, baseline: label === 'same hub' });
    }
  } finally {
    dialer?.stop();
    for (const s of swarms) s.close();
    for (const h of hubs) await h.close();
    await daemon.close();
    await nats.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Fleet hubs on NATS: a real nats-server (skipped without it), two hubs in this process joined by
 * NatsFleet, simulated agents (test/helpers/agent-swarm.ts) split over them, one real agent daemon.
 *   - registry convergence: from the first agent connecting until both hubs list every agent;
 *   - session setup (connect through the user's hub to the first `ping` reply), agent on the same
 *     hub against agent on the other hub, p50 and p99.
 * In-process, so the agent count is bounded by this process's file limit (two sockets per agent).
 */
import { spawnSync } from 'node:child_process';
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

const quiet = createLogger('silent');
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  if (spawnSync('nats-server', ['--version']).status !== 0) {
    console.log('  (skipped: needs nats-server, apt-get install nats-server)');
    return;
  }
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

/**
 * The processes of the hub benchmark (bench/hub.bench.ts), forked with an IPC channel so each is
 * measured alone and each stays under the per-process file limit:
 *   `node hub-child.js hub STATEDIR [http]`: a hub (startHub) with an admin `bench`; answers `mem`
 *     with its memory after a full collection (run it with --expose-gc). With `http`, the HTTP API
 *     and console too, on a loopback port of its own (bench/console.bench.ts).
 *   `node hub-child.js fleet-hub STATEDIR NAME NATSURL TTLMS`: a hub of a NATS fleet (bench/nats.bench.ts);
 *     answers `mem` as above and `count` with its own agents and all it lists.
 *   `node hub-child.js swarm`: an AgentSwarm; `start` connects agents and answers with the time
 *     (with `hubs` and `reconnect`, its agents move to the next hub when theirs dies).
 */
import { startHub } from '../src/hub/server.js';
import { NatsFleet } from '../src/hub/nats-fleet.js';
import { createLogger } from '../src/agent/log.js';
import { AgentSwarm } from '../test/helpers/agent-swarm.js';

type Msg = { type: string; [k: string]: unknown };
const send = (m: Msg) => process.send!(m);
const gc = (globalThis as { gc?: () => void }).gc;

async function hub(stateDir: string, withHttp: boolean, fleet?: { name: string; nats: string; ttlMs: number }): Promise<void> {
  const running = await startHub({
    ...(fleet ? { name: fleet.name, fleet: new NatsFleet({ servers: [fleet.nats], hubId: fleet.name, ttlMs: fleet.ttlMs }), maxAgents: 50_000, agentPort: { maxHandshakes: 4096, maxHandshakesPerAddress: 4096 } } : {}),
    stateDir,
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: withHttp ? { host: '127.0.0.1', port: 0 } : false,
    logger: createLogger('silent'),
    scryptCost: { logN: 10, r: 8, p: 1 },
  });
  await running.hub.addUser('bench', 'benchpass', true);
  process.on('message', (m: Msg) => {
    if (m.type === 'mem') {
      // Several passes: the first frees what the registration bursts left, later ones what finalizers released.
      for (let i = 0; i < 4; i++) gc?.();
      const u = process.memoryUsage();
      send({ type: 'mem', rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, agents: running.hub.registry.size });
    } else if (m.type === 'count') {
      const root = { username: 'bench', isAdmin: true, groups: ['admin'] };
      send({ type: 'count', local: running.hub.registry.size, listed: running.hub.listAgents(root).length });
    } else if (m.type === 'exit') {
      void running.close().then(() => process.exit(0));
    }
  });
  send({ type: 'ready', agentAddress: running.agentAddress, userAddress: running.userAddress, httpAddress: running.httpAddress, enrollmentToken: running.hub.enrollmentToken });
}

function swarm(): void {
  let current: AgentSwarm | undefined;
  process.on('message', (m: Msg) => {
    if (m.type === 'start') {
      const t0 = performance.now();
      AgentSwarm.start({
        hub: m.hub as { host: string; port: number },
        count: m.count as number,
        enrollmentToken: m.token as string,
        localAddresses: m.localAddresses as string[],
        concurrency: m.concurrency as number,
        ...(m.idPrefix ? { idPrefix: m.idPrefix as string } : {}),
        ...(m.hubs ? { hubs: m.hubs as { host: string; port: number }[], reconnect: m.reconnect as { minMs: number; maxMs: number } } : {}),
      }).then(
        (s) => {
          current = s;
          send({ type: 'registered', ms: performance.now() - t0, count: s.registered });
        },
        (err: Error) => send({ type: 'failed', message: err.message }),
      );
    } else if (m.type === 'status') {
      send({ type: 'status', registered: current?.registered ?? 0, lost: current?.lost ?? 0, reconnected: current?.reconnected ?? 0 });
    } else if (m.type === 'exit') {
      current?.close();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

const [role, arg, opt] = process.argv.slice(2);
if (role === 'hub') await hub(arg!, opt === 'http');
else if (role === 'fleet-hub') {
  const [, dir, name, nats, ttl] = process.argv.slice(2);
  await hub(dir!, false, { name: name!, nats: nats!, ttlMs: Number(ttl) });
}
else if (role === 'swarm') swarm();
else throw new Error(`hub-child: unknown role ${role}`);

import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { startHub } from '../../src/hub/server.js';
import { Hub } from '../../src/hub/hub.js';
import { connectHub } from '../../src/hub/hub-client.js';
import { createLogger } from '../../src/agent/log.js';
import { AgentSwarm } from '../helpers/agent-swarm.js';

const COUNT = 1000;

test(`${COUNT} simulated agents in one process register, are all listed through the user port, and one serves a routed session with typed-ahead bytes`, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-many-'));
  const running = await startHub({ stateDir: path.join(dir, 'state'), agents: { host: '127.0.0.1', port: 0 }, users: { host: '127.0.0.1', port: 0 }, http: false, logger: createLogger('silent'), scryptCost: { logN: 10, r: 8, p: 1 } });
  let swarm: AgentSwarm | undefined;
  try {
    await running.hub.addUser('ann', 'annpass', false);
    swarm = await AgentSwarm.start({
      hub: running.agentAddress,
      count: COUNT,
      enrollmentToken: running.hub.enrollmentToken,
      // Only the even agents let ann in.
      properties: (i) => ({ n: String(i), allowlist: i % 2 === 0 ? ['u/ann'] : [] }),
      // 16 source addresses, as a fleet comes from many hosts (the hub caps handshakes per address).
      localAddresses: Array.from({ length: 16 }, (_, k) => `127.0.0.${k + 1}`),
      serve(stream, leftover, info) {
        stream.write(`${info.id} greets ${info.user}\n`);
        if (leftover.length) stream.write(leftover);
        stream.pipe(stream);
      },
    });
    assert.equal(swarm.registered, COUNT);
    assert.equal(running.hub.registry.size, COUNT);
    assert.equal(new Set(running.hub.registry.list().map((a) => a.address)).size, 16);
    // Every agent got its own token, and the hub stored all of them (one write carried many).
    assert.equal(new Set(swarm.tokens).size, COUNT);
    const stored = JSON.parse(readFileSync(path.join(dir, 'state', 'agents.json'), 'utf8')) as { agents: Record<string, string> };
    assert.equal(Object.keys(stored.agents).length, COUNT);

    const s1 = await connectHub(running.userAddress, { username: 'ann', password: 'annpass' });
    const { token } = await s1.token();
    const listed = await s1.agents();
    const even = Array.from({ length: COUNT / 2 }, (_, k) => `sim-${2 * k}`).sort();
    assert.deepEqual(listed.map((a) => a.id), even);
    assert.deepEqual((await s1.agents(['n=^742$'])).map((a) => a.id), ['sim-742']);
    s1.close();

    const s2 = await connectHub(running.userAddress, { token });
    await assert.rejects(s2.route('sim-743'), { code: 'WK_PERMISSION' });
    s2.close();

    const s3 = await connectHub(running.userAddress, { token });
    const stream = await s3.route('sim-742');
    // Written before the agent's greeting arrived: it must come back after it, in order.
    stream.write('typed ahead');
    let got = '';
    for await (const chunk of stream) {
      got += String(chunk);
      if (got.includes('typed ahead')) break;
    }
    assert.equal(got, 'sim-742 greets ann\ntyped ahead');
    stream.destroy();
    assert.equal(swarm.dialBacks, 1);
    assert.equal(swarm.lost, 0);
  } finally {
    swarm?.close();
    await running.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tokens issued to agents enrolling at once are all stored, in fewer writes than agents, and let them back in after a restart', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-tokens-'));
  try {
    const hub = await Hub.open(path.join(dir, 'state'), { logger: createLogger('silent') });
    let writes = 0;
    const write = hub.state.write.bind(hub.state);
    hub.state.write = (name: string, value: unknown) => {
      if (name === 'agents.json') writes++;
      return write(name, value);
    };
    const link = { dial() {}, close() {} };
    const register = (id: string, token: string) => hub.registerAgent({ type: 'register', id, hostname: id, version: 't', capabilities: [], properties: {}, token }, '127.0.0.1', link);
    const n = 50;
    const issued = await Promise.all(Array.from({ length: n }, (_, i) => register(`a${i}`, hub.enrollmentToken)));
    assert.ok(issued.every((t) => typeof t === 'string'));
    assert.ok(writes < n, `${writes} writes for ${n} agents`);
    // One more after the burst still gets its own write.
    const late = await register('late', hub.enrollmentToken);
    const stored = JSON.parse(readFileSync(path.join(dir, 'state', 'agents.json'), 'utf8')) as { agents: Record<string, string> };
    assert.equal(Object.keys(stored.agents).length, n + 1);
    hub.close();

    const again = await Hub.open(path.join(dir, 'state'), { logger: createLogger('silent') });
    for (let i = 0; i < n; i++) assert.equal(await again.registerAgent({ type: 'register', id: `a${i}`, hostname: 'h', version: 't', capabilities: [], properties: {}, token: issued[i]! }, '127.0.0.1', link), undefined);
    assert.equal(await again.registerAgent({ type: 'register', id: 'late', hostname: 'h', version: 't', capabilities: [], properties: {}, token: late! }, '127.0.0.1', link), undefined);
    await assert.rejects(again.registerAgent({ type: 'register', id: 'x', hostname: 'h', version: 't', capabilities: [], properties: {}, token: 'wrong' }, '127.0.0.1', link), { code: 'WK_AUTH' });
    assert.equal(again.registry.size, n + 1);
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

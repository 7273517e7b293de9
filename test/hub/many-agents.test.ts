import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { startHub } from '../../src/hub/server.js';
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

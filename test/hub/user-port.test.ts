import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { startHub } from '../../src/hub/server.js';
import { connectHub } from '../../src/hub/hub-client.js';
import { HubDialer } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';

const quiet = createLogger('silent');

test('the user port: password login issues a token; agents by allowlist; route splices to the agent with typed-ahead bytes first', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-user-'));
  const running = await startHub({ stateDir: path.join(dir, 'state'), agents: { host: '127.0.0.1', port: 0 }, users: { host: '127.0.0.1', port: 0 }, http: false, logger: quiet, scryptCost: { logN: 10, r: 8, p: 1 } });
  await running.hub.addUser('ann', 'annpass', false);
  const agent = new HubDialer({
    hub: running.agentAddress,
    register: { id: 'dev1', hostname: 'dev1', version: 't', capabilities: [], properties: { allowlist: ['u/ann'] } },
    enrollmentToken: running.hub.enrollmentToken,
    tokenFile: path.join(dir, 'dev1.token'),
    logger: quiet,
    serve(stream, leftover, info) {
      stream.write(`agent greets ${info.user}\n`);
      if (leftover.length) stream.write(leftover);
      stream.pipe(stream);
    },
  });
  const other = new HubDialer({
    hub: running.agentAddress,
    register: { id: 'secret', hostname: 'secret', version: 't', capabilities: [], properties: {} },
    enrollmentToken: running.hub.enrollmentToken,
    tokenFile: path.join(dir, 'secret.token'),
    logger: quiet,
    serve: (s) => s.destroy(),
  });
  const both = new Promise<void>((resolve) => running.hub.on('joined', () => running.hub.registry.size === 2 && resolve()));
  await agent.start();
  await other.start();
  await both;

  await assert.rejects(connectHub(running.userAddress, { username: 'ann', password: 'wrong' }), { code: 'WK_AUTH' });
  const s1 = await connectHub(running.userAddress, { username: 'ann', password: 'annpass' });
  const { token } = await s1.token();
  assert.deepEqual((await s1.whoami()).username, 'ann');
  s1.close();

  const s2 = await connectHub(running.userAddress, { token });
  assert.deepEqual((await s2.agents()).map((a) => a.id), ['dev1']);
  assert.deepEqual((await s2.agents(['hostname=^nomatch$'])).map((a) => a.id), []);
  s2.close();
  const s3 = await connectHub(running.userAddress, { token });
  await assert.rejects(s3.route('secret'), { code: 'WK_PERMISSION' });
  s3.close();
  const s4 = await connectHub(running.userAddress, { token });
  await assert.rejects(s4.route('nope'), { code: 'WK_NOT_FOUND' });
  s4.close();
  const s5 = await connectHub(running.userAddress, { token });
  const stream = await s5.route('dev1');
  stream.write('echo me');
  let got = '';
  for await (const chunk of stream) {
    got += String(chunk);
    if (got.includes('echo me')) break;
  }
  assert.equal(got, 'agent greets ann\necho me');
  stream.destroy();
  await assert.rejects(connectHub(running.userAddress, { token: 'forged' }), { code: 'WK_AUTH' });
  agent.stop();
  other.stop();
  await running.close();
});

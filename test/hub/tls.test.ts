import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHub } from '../../src/hub/server.js';
import { connectHub } from '../../src/hub/hub-client.js';
import { HubDialer, type DialOutState } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';
import { repoRoot } from '../helpers/paths.js';

const quiet = createLogger('silent');
const fixtures = path.join(repoRoot(), 'test/fixtures/tls');
const cert = readFileSync(path.join(fixtures, 'cert.pem'));
const key = readFileSync(path.join(fixtures, 'key.pem'));
const fingerprint = createHash('sha256').update(new X509Certificate(cert).raw).digest('hex');

function waitState(d: HubDialer, want: DialOutState): Promise<string | undefined> {
  return new Promise((resolve) => {
    const off = d.onState((s, detail) => {
      if (s === want) {
        off();
        resolve(detail);
      }
    });
  });
}

test('TLS hub: an agent verifies it by CA or by pinned fingerprint; a wrong pin or an unverifiable certificate never registers', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-tls-'));
  const running = await startHub({ stateDir: path.join(dir, 'state'), agents: { host: '127.0.0.1', port: 0 }, users: { host: '127.0.0.1', port: 0 }, http: false, logger: quiet, tls: { cert, key }, scryptCost: { logN: 10, r: 8, p: 1 } });
  await running.hub.addUser('root', 'pw', true);
  const dialer = (id: string, tls: ConstructorParameters<typeof HubDialer>[0]['tls']) =>
    new HubDialer({
      hub: { host: '127.0.0.1', port: running.agentAddress.port },
      tls,
      register: { id, hostname: id, version: 't', capabilities: [], properties: {} },
      enrollmentToken: running.hub.enrollmentToken,
      tokenFile: path.join(dir, `${id}.token`),
      logger: quiet,
      backoffMinMs: 20,
      backoffMaxMs: 50,
      serve: (s) => s.end('hi\n'),
    });
  const byCa = dialer('by-ca', { ca: cert });
  const byPin = dialer('by-pin', { fingerprint: fingerprint.match(/../g)!.join(':').toUpperCase() });
  const wrongPin = dialer('wrong-pin', { fingerprint: '00'.repeat(32) });
  const noCa = dialer('no-ca', {});
  const registered = Promise.all([waitState(byCa, 'registered'), waitState(byPin, 'registered')]);
  const refused = Promise.all([waitState(wrongPin, 'waiting'), waitState(noCa, 'waiting')]);
  for (const d of [byCa, byPin, wrongPin, noCa]) await d.start();
  await registered;
  const [pinWhy, caWhy] = await refused;
  assert.match(pinWhy ?? '', /fingerprint .* is not the pinned one/);
  assert.match(caWhy ?? '', /self.signed|unable to verify|certificate/i);
  assert.deepEqual(running.hub.registry.list().map((a) => a.id), ['by-ca', 'by-pin']);
  // Users over TLS too.
  const s = await connectHub(running.userAddress, { username: 'root', password: 'pw' }, { tls: { ca: cert } });
  const stream = await s.route('by-pin');
  let got = '';
  for await (const c of stream) got += String(c);
  assert.equal(got, 'hi\n');
  for (const d of [byCa, byPin, wrongPin, noCa]) d.stop();
  await running.close();
});

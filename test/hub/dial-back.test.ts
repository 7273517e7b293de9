import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { Hub } from '../../src/hub/hub.js';
import { AgentPort } from '../../src/hub/agent-port.js';
import { HubDialer, type DialOutState } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';

const quiet = createLogger('silent');
const admin = { username: 'root', isAdmin: true, groups: ['admin'] };

async function startHub(options: ConstructorParameters<typeof AgentPort>[1] = {}, keepaliveMs = 10_000) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-'));
  const hub = await Hub.open(path.join(dir, 'state'), { logger: quiet, keepaliveMs, scryptCost: { logN: 10, r: 8, p: 1 } });
  const port = new AgentPort(hub, options);
  const server = net.createServer({ allowHalfOpen: true }, (s) => port.accept(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port };
  return { dir, hub, port, server, address, close: () => { hub.close(); server.close(); } };
}

/** An agent whose sessions echo what they get, after a greeting. */
function echoAgent(hubAddress: { host: string; port: number }, dir: string, id: string, token: string) {
  const dialer = new HubDialer({
    hub: hubAddress,
    register: { id, hostname: `${id}.test`, version: 'test', capabilities: ['exec'], properties: { allowlist: ['u/ann'] } },
    enrollmentToken: token,
    tokenFile: path.join(dir, `${id}.token`),
    logger: quiet,
    backoffMinMs: 20,
    backoffMaxMs: 100,
    serve(stream, leftover, info) {
      stream.write(`hello ${info.user}\n`);
      if (leftover.length) stream.write(leftover);
      stream.pipe(stream);
    },
  });
  return dialer;
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

async function readUntil(stream: Duplex, text: string): Promise<string> {
  let got = '';
  for await (const chunk of stream) {
    got += String(chunk);
    if (got.includes(text)) return got;
  }
  return got;
}

test('an agent enrolls, gets its own token (0600), and serves a session dialed back through the hub; typed-ahead bytes arrive first', async () => {
  const h = await startHub();
  const agent = echoAgent(h.address, h.dir, 'dev1', h.hub.enrollmentToken);
  await agent.start();
  await waitState(agent, 'registered');
  assert.deepEqual(h.hub.registry.list().map((a) => [a.id, a.hostname, a.address]), [['dev1', 'dev1.test', '127.0.0.1']]);
  const tokenFile = path.join(h.dir, 'dev1.token');
  await waitFor(() => statSafe(tokenFile));
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.notEqual(readFileSync(tokenFile, 'utf8').trim(), h.hub.enrollmentToken);

  const { stream, leftover, release } = await h.hub.openSession(admin, 'dev1');
  stream.write('typed ahead ');
  const got = await readUntil(stream, 'typed ahead');
  assert.equal(Buffer.from(leftover).toString() + got, 'hello root\ntyped ahead ');
  stream.destroy();
  release();
  agent.stop();
  h.close();
});

test('a duplicate id and a wrong token are refused; the hub keeps serving the first agent', async () => {
  const h = await startHub();
  const first = echoAgent(h.address, h.dir, 'dev1', h.hub.enrollmentToken);
  await first.start();
  await waitState(first, 'registered');
  const dup = echoAgent(h.address, h.dir, 'dev1', h.hub.enrollmentToken);
  await dup.start();
  assert.match((await waitState(dup, 'waiting')) ?? '', /WK_BUSY: duplicate agent id: dev1/);
  dup.stop();
  const wrong = echoAgent(h.address, h.dir, 'dev2', 'not-the-token');
  await wrong.start();
  assert.match((await waitState(wrong, 'waiting')) ?? '', /WK_AUTH/);
  wrong.stop();
  assert.deepEqual(h.hub.registry.list().map((a) => a.id), ['dev1']);
  const s = await h.hub.openSession(admin, 'dev1');
  assert.equal(Buffer.from(s.leftover).toString() + (await readUntil(s.stream, '\n')), 'hello root\n');
  s.stream.destroy();
  first.stop();
  h.close();
});

test('an agent killed leaves the registry; restarted, it rejoins under its id with its own token', async () => {
  const h = await startHub();
  const left = new Promise((resolve) => h.hub.once('left', resolve));
  const agent = echoAgent(h.address, h.dir, 'dev1', h.hub.enrollmentToken);
  await agent.start();
  await waitState(agent, 'registered');
  await waitFor(() => statSafe(path.join(h.dir, 'dev1.token')));
  agent.stop();
  await left;
  assert.equal(h.hub.registry.size, 0);
  // The enrollment token is no longer needed: the stored agent token is used.
  const again = echoAgent(h.address, h.dir, 'dev1', 'stale-enrollment-token');
  await again.start();
  await waitState(again, 'registered');
  assert.equal(h.hub.registry.get('dev1')?.id, 'dev1');
  again.stop();
  h.close();
});

test('the hub restarted: the agent reconnects within its backoff', async () => {
  const h = await startHub();
  const agent = echoAgent(h.address, h.dir, 'dev1', h.hub.enrollmentToken);
  await agent.start();
  await waitState(agent, 'registered');
  // Drop every link, as a hub restart does.
  for (const a of h.hub.registry.list()) a.owner.close('restart');
  await waitState(agent, 'waiting');
  await waitState(agent, 'registered');
  assert.equal(h.hub.registry.size, 1);
  agent.stop();
  h.close();
});

test('silent, garbage and oversized first lines are closed; a dial-back for a sid nobody waits for is refused', async () => {
  const h = await startHub({ handshakeTimeoutMs: 200 });
  const silent = net.connect(h.address);
  await once(silent, 'close');
  const garbage = net.connect(h.address);
  garbage.end('GET / HTTP/1.1\r\n\r\n');
  const [reply] = (await once(garbage, 'data')) as [Buffer];
  assert.match(String(reply), /"type":"refused","code":"WK_PROTOCOL"/);
  const big = net.connect(h.address);
  big.on('error', () => {});
  big.resume();
  big.write(Buffer.alloc(200 * 1024, 0x61));
  await once(big, 'close');
  const stray = net.connect(h.address);
  stray.write(JSON.stringify({ type: 'attach', sid: 'nope', id: 'dev1', token: 'x' }) + '\n');
  const [r2] = (await once(stray, 'data')) as [Buffer];
  assert.match(String(r2), /"refused","code":"WK_AUTH"/);
  stray.destroy();
  h.close();
});

function statSafe(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

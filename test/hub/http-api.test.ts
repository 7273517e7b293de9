import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { WebSocket } from 'ws';
import { startHub } from '../../src/hub/server.js';
import { HubDialer } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';

const quiet = createLogger('silent');

async function hubWithUsers() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-http-'));
  const running = await startHub({
    stateDir: path.join(dir, 'state'),
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    logger: quiet,
    scryptCost: { logN: 10, r: 8, p: 1 },
  });
  await running.hub.addUser('root', 'rootpass', true);
  await running.hub.addUser('ann', 'annpass', false);
  const base = `http://127.0.0.1:${running.httpAddress!.port}`;
  return { dir, running, base };
}

const login = async (base: string, username: string, password: string) => {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username, password }) });
  return { status: r.status, body: (await r.json()) as { status: string; data: any }, cookie: r.headers.get('set-cookie') };
};

function agent(h: Awaited<ReturnType<typeof hubWithUsers>>, id: string, properties: Record<string, unknown>) {
  return new HubDialer({
    hub: h.running.agentAddress,
    register: { id, hostname: `${id}.test`, version: 't', capabilities: [], properties },
    enrollmentToken: h.running.hub.enrollmentToken,
    tokenFile: path.join(h.dir, `${id}.token`),
    logger: quiet,
    serve: (s) => s.destroy(),
  });
}

test('login returns a token and an HttpOnly SameSite=Strict cookie; wrong passwords get 401 and a lock-out', async () => {
  const h = await hubWithUsers();
  const good = await login(h.base, 'root', 'rootpass');
  assert.equal(good.status, 200);
  assert.equal(good.body.status, 'success');
  assert.equal(typeof good.body.data.token, 'string');
  assert.match(good.cookie ?? '', /^wirekit_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  const bad = await login(h.base, 'root', 'nope');
  assert.deepEqual([bad.status, bad.body], [401, { status: 'error', data: 'Authentication error' }]);
  for (let i = 0; i < 4; i++) await login(h.base, 'ann', 'wrong');
  const locked = await login(h.base, 'ann', 'annpass');
  assert.deepEqual([locked.status, locked.body.data], [401, 'Too many failed attempts']);
  const noToken = await fetch(`${h.base}/api/agents`);
  assert.deepEqual([noToken.status, await noToken.json()], [401, { status: 'error', data: 'JWT token required' }]);
  const badToken = await fetch(`${h.base}/api/agents`, { headers: { authorization: 'Bearer abc.def.ghi' } });
  assert.deepEqual([badToken.status, await badToken.json()], [401, { status: 'error', data: 'invalid token' }]);
  await h.running.close();
});

test('agents are listed by allowlist and filter; properties; the monitor sees joins and leaves; a foreign Origin is refused', async () => {
  const h = await hubWithUsers();
  const root = (await login(h.base, 'root', 'rootpass')).body.data.token as string;
  // Log ann in through the user port's sibling API before the throttle test above matters.
  const ann = (await login(h.base, 'ann', 'annpass')).body.data.token as string;
  const auth = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

  const wsUrl = `ws://127.0.0.1:${h.running.httpAddress!.port}/api/monitor?token=${ann}`;
  const foreign = new WebSocket(wsUrl, { origin: 'http://evil.example' });
  const [, res] = (await once(foreign, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.equal(res.statusCode, 403);
  const monitor = new WebSocket(wsUrl, { origin: `http://127.0.0.1:${h.running.httpAddress!.port}` });
  await once(monitor, 'open');
  const events: string[] = [];
  monitor.on('message', (m) => events.push(JSON.parse(String(m)).event + ' ' + JSON.parse(JSON.parse(String(m)).data[0]).mid));

  const a = agent(h, 'lab1', { site: 'lab', allowlist: ['u/ann'] });
  const b = agent(h, 'fab1', { site: 'factory', label: '<img src=x onerror=alert(1)>' });
  const joined = new Promise<void>((resolve) => h.running.hub.on('joined', () => h.running.hub.registry.size === 2 && resolve()));
  await a.start();
  await b.start();
  await joined;

  const all = (await (await fetch(`${h.base}/api/agents`, auth(root))).json()) as { data: { mid: string }[] };
  assert.deepEqual(all.data.map((x) => x.mid), ['fab1', 'lab1']);
  const mine = (await (await fetch(`${h.base}/api/agents`, auth(ann))).json()) as { data: { mid: string }[] };
  assert.deepEqual(mine.data.map((x) => x.mid), ['lab1'], 'ann sees only agents whose allowlist names her');
  const filtered = (await (await fetch(`${h.base}/api/agents?filter=site%3Dfact`, auth(root))).json()) as { data: { mid: string }[] };
  assert.deepEqual(filtered.data.map((x) => x.mid), ['fab1']);
  const props = (await (await fetch(`${h.base}/api/agents/fab1/properties`, auth(root))).json()) as { data: Record<string, unknown> };
  assert.equal(props.data.label, '<img src=x onerror=alert(1)>', 'properties are data, returned as JSON');
  const denied = await fetch(`${h.base}/api/agents/fab1/properties`, auth(ann));
  assert.deepEqual([denied.status, await denied.json()], [401, { status: 'error', data: 'Unauthorized' }]);
  const missing = await fetch(`${h.base}/api/agents/nope/properties`, auth(root));
  assert.deepEqual([missing.status, await missing.json()], [404, { status: 'error', data: 'No client with mid nope' }]);
  const apps = await (await fetch(`${h.base}/api/apps`, auth(root))).json();
  assert.deepEqual(apps, { status: 'success', data: [] });

  const leftSeen = new Promise<void>((resolve) => monitor.on('message', (m) => String(m).includes('agent left') && resolve()));
  a.stop();
  b.stop();
  await leftSeen;
  assert.deepEqual(events.filter((e) => e.endsWith('lab1')), ['agent joined lab1', 'agent left lab1'], 'ann is told only of agents she may open');
  assert.ok(!events.some((e) => e.endsWith('fab1')));
  monitor.close();
  await h.running.close();
});

test('a request that changes something from a foreign Origin is refused (cross-site form POST with the cookie)', async () => {
  const h = await hubWithUsers();
  const { cookie } = await login(h.base, 'root', 'rootpass');
  const token = /wirekit_token=([^;]+)/.exec(cookie ?? '')![1]!;
  const form = new FormData();
  form.append('file', new Blob(['evil']), 'x.sh');
  // Another port of the same host: the same "site" for SameSite, another origin.
  const forged = await fetch(`${h.base}/api/agents/any/file?dest=/tmp/x`, { method: 'POST', body: form, headers: { cookie: `wirekit_token=${token}`, origin: 'http://127.0.0.1:1' } });
  assert.deepEqual([forged.status, await forged.json()], [403, { status: 'error', data: 'origin not allowed' }]);
  const loginForged = await fetch(`${h.base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username: 'root', password: 'rootpass' }), headers: { origin: 'http://evil.example' } });
  assert.equal(loginForged.status, 403);
  // The hub's own origin and clients without Origin (CLI, scripts) still work.
  const own = await fetch(`${h.base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username: 'root', password: 'rootpass' }), headers: { origin: h.base } });
  assert.equal(own.status, 200);
  await h.running.close();
});

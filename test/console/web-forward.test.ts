/**
 * Forwarded web services in a real browser (Debian's Chromium through playwright-core): an HTTP
 * server on the agent's side (a tiny node:http server in this process, reached by the agent's
 * forward session) opened from the console in a new tab, on an origin of its own
 * (`wk-<label>.localhost:PORT`); its pages see neither the console's cookie nor its API.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startHub, type RunningHub } from '../../src/hub/server.js';
import { HubDialer } from '../../src/agent/dial-out.js';
import { AgentDaemon } from '../../src/agent/daemon.js';
import { createLogger } from '../../src/agent/log.js';
import { FORWARD_COOKIE } from '../../src/hub/web-forward.js';
import { PEERS, skipWithout } from '../helpers/peers.js';

const skip = skipWithout(PEERS.chromium);
const quiet = createLogger('silent');

let dir: string;
let hub: RunningHub;
let base: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let dialer: HubDialer;
let daemon: AgentDaemon;
let service: http.Server;
let servicePort: number;
/** What the service saw: the Host and Cookie headers of each request. */
const seen: { url: string; host?: string; cookie?: string; origin?: string }[] = [];

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'wk-console-fwd-'));
  // The service on the agent's side: a page, a redirect to its own absolute URL, a cookie echo,
  // and a WebSocket echo (what noVNC needs).
  service = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', host: req.headers.host, cookie: req.headers.cookie, origin: req.headers.origin });
    if (req.url === '/go') {
      res.writeHead(302, { location: `http://${req.headers.host}/landed` });
      return res.end();
    }
    if (req.url === '/cookies') {
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': 'svc=1; Path=/' });
      return res.end(`cookies: ${req.headers.cookie ?? '(none)'}`);
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>device</title><h1>device admin page</h1><p id="where">you asked for ${req.url?.replace(/[<>&]/g, '')}</p>`);
  });
  service.on('upgrade', (req: http.IncomingMessage) => seen.push({ url: req.url ?? '', host: req.headers.host, cookie: req.headers.cookie, origin: req.headers.origin }));
  const wss = new WebSocketServer({ server: service });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo ${String(d)}`)));
  service.listen(0, '127.0.0.1');
  await once(service, 'listening');
  servicePort = (service.address() as { port: number }).port;

  hub = await startHub({
    stateDir: path.join(dir, 'state'),
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    logger: quiet,
    scryptCost: { logN: 10, r: 8, p: 1 },
  });
  await hub.hub.addUser('root', 'rootpass', true);
  base = `http://127.0.0.1:${hub.httpAddress!.port}`;
  daemon = new AgentDaemon({ logger: quiet });
  const joined = once(hub.hub, 'joined');
  dialer = new HubDialer({
    hub: hub.agentAddress,
    register: { id: 'dev1', hostname: 'dev1.test', version: 't', capabilities: ['exec', 'terminal', 'forward'], properties: {} },
    enrollmentToken: hub.hub.enrollmentToken,
    tokenFile: path.join(dir, 'dev1.token'),
    logger: quiet,
    serve: (stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user}`, leftover }),
  });
  await dialer.start();
  await joined;
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
});

after(async () => {
  if (skip) return;
  await browser?.close();
  dialer?.stop();
  await daemon?.close();
  await hub?.close();
  service?.closeAllConnections();
  service?.close();
});

/** A raw request to the hub's HTTP port with a Host header of our choosing. */
function hubRequest(host: string, pathname: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: hub.httpAddress!.port, path: pathname, headers: { host, ...headers }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

let tab: Page;
let forwardOrigin: string;

test('a web service on the agent opens from the console in a new tab, on an origin of its own', { skip }, async () => {
  await page.goto(base);
  await page.locator('#login-user').fill('root');
  await page.locator('#login-pass').fill('rootpass');
  await page.keyboard.press('Enter');
  await page.locator('#fleet-body tr[data-id="dev1"] button', { hasText: 'Web' }).click();
  const pane = page.locator('.pane.web');
  await pane.locator('input[name=host]').fill('127.0.0.1');
  await pane.locator('input[name=port]').fill(String(servicePort));
  await pane.locator('input[name=path]').fill('/status?x=1');
  const opened = context.waitForEvent('page', { timeout: 20_000 });
  await pane.locator('button[type=submit]').click();
  tab = await opened;
  await tab.locator('h1', { hasText: 'device admin page' }).waitFor({ timeout: 20_000 });
  assert.equal(await tab.locator('#where').textContent(), 'you asked for /status?x=1');
  const url = new URL(tab.url());
  forwardOrigin = url.origin;
  assert.match(url.host, new RegExp(`^wk-[0-9a-f]{32}\\.localhost:${hub.httpAddress!.port}$`), `the tab is on a forward origin: ${tab.url()}`);
  assert.notEqual(url.origin, new URL(base).origin);
  assert.equal(url.pathname, '/status', 'the capability URL was left behind');
  assert.equal(await pane.getAttribute('data-state'), 'opened');
  // The service saw its own host name, and no cookie of the hub's.
  const last = seen.at(-1)!;
  assert.equal(last.host, `127.0.0.1:${servicePort}`);
  assert.equal(last.cookie, undefined);
  // No opener: the service's page cannot reach back into the console's tab.
  assert.equal(await tab.evaluate(() => window.opener), null);
});

test("the forwarded page has its own cookies, never the hub's, and cannot use the console's API", { skip }, async () => {
  const text = await tab.evaluate(async () => {
    await fetch('/cookies');
    return (await fetch('/cookies')).text();
  });
  assert.equal(text, 'cookies: svc=1', 'the service gets its own cookie and neither the console token nor the forward cookie');
  assert.equal(await tab.evaluate(() => document.cookie), 'svc=1', 'the forward cookie is HttpOnly');
  const cookies = await context.cookies(forwardOrigin);
  assert.ok(cookies.some((c) => c.name === FORWARD_COOKIE && c.httpOnly && c.sameSite === 'Strict'), JSON.stringify(cookies));
  assert.ok(!cookies.some((c) => c.name === 'wirekit_token'), 'the console cookie is not sent to the forward origin');
  // The console's API from the forwarded page: a read is blocked (no CORS), a WebSocket refused.
  const api = await tab.evaluate(async (b) => {
    let read: string;
    try {
      const r = await fetch(`${b}/api/agents`, { credentials: 'include' });
      read = `status ${r.status}`;
    } catch {
      read = 'blocked';
    }
    const ws = await new Promise<string>((resolve) => {
      const s = new WebSocket(`${b.replace('http', 'ws')}/api/monitor`);
      s.onopen = () => resolve('open');
      s.onerror = () => resolve('refused');
    });
    return { read, ws };
  }, base);
  assert.deepEqual(api, { read: 'blocked', ws: 'refused' });
});

test('a WebSocket to the forwarded service (as noVNC opens) goes through', { skip }, async () => {
  const reply = await tab.evaluate(
    () =>
      new Promise<string>((resolve, reject) => {
        const s = new WebSocket(`${location.origin.replace('http', 'ws')}/ws`);
        const t = setTimeout(() => reject(new Error('no echo within 10 s')), 10_000);
        s.onopen = () => s.send('hello');
        s.onmessage = (e) => {
          clearTimeout(t);
          resolve(String(e.data));
          s.close();
        };
        s.onerror = () => reject(new Error('WebSocket refused'));
      }),
  );
  assert.equal(reply, 'echo hello');
  const upgrade = [...seen].reverse().find((s) => s.url === '/ws');
  assert.equal(upgrade?.origin, `http://127.0.0.1:${servicePort}`, "the Origin is rewritten to the service's own");
  assert.equal(upgrade?.cookie, 'svc=1', "the service's own cookie only");
});

test("a redirect to the service's own absolute URL stays on the forward origin", { skip }, async () => {
  await tab.goto(`${forwardOrigin}/go`);
  await tab.locator('#where', { hasText: 'you asked for /landed' }).waitFor({ timeout: 20_000 });
  assert.equal(new URL(tab.url()).origin, forwardOrigin);
});

test('without the cookie, with a used capability, or from another site, a forward origin refuses', { skip }, async () => {
  const host = new URL(forwardOrigin).host;
  const bare = await hubRequest(host, '/');
  assert.equal(bare.status, 401);
  assert.doesNotMatch(bare.body, /device admin/);
  // Another label: nothing there, and nothing of the API either.
  assert.equal((await hubRequest(`wk-${'0'.repeat(32)}.localhost:${hub.httpAddress!.port}`, '/api/agents')).status, 401);
  const cookie = (await context.cookies(forwardOrigin)).find((c) => c.name === FORWARD_COOKIE)!;
  const withCookie = { cookie: `${FORWARD_COOKIE}=${cookie.value}` };
  assert.equal((await hubRequest(host, '/', withCookie)).status, 200);
  assert.equal((await hubRequest(host, '/', { ...withCookie, 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await hubRequest(host, '/', { ...withCookie, 'sec-fetch-site': 'same-site' })).status, 403, 'a sibling forward cannot use it');
  assert.equal((await hubRequest(host, '/', { ...withCookie, origin: 'http://evil.localhost' })).status, 403);
  // A capability works once.
  const login = await fetch(`${base}/api/agents/dev1/web-forward`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${(await hub.hub.login('root', 'rootpass', '127.0.0.1')).token}` },
    body: JSON.stringify({ port: servicePort, host: '127.0.0.1' }),
  });
  const { data } = (await login.json()) as { data: { url: string } };
  const u = new URL(data.url);
  const first = await hubRequest(u.host, u.pathname + u.search);
  assert.equal(first.status, 200);
  assert.match(String(first.headers['set-cookie']), new RegExp(`^${FORWARD_COOKIE}=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict`));
  assert.equal(first.headers['referrer-policy'], 'no-referrer');
  assert.equal((await hubRequest(u.host, u.pathname + u.search)).status, 401, 'used up');
  // Bad requests for a forward.
  const bad = await fetch(`${base}/api/agents/dev1/web-forward`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: `wirekit_token=${(await hub.hub.login('root', 'rootpass', '127.0.0.1')).token}` }, body: JSON.stringify({ port: servicePort, path: '//evil.example/' }) });
  assert.equal(bad.status, 400);
});

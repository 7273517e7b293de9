import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitLine } from '../helpers/cli.js';
import { webrootSegments } from '../../src/hub/webroot.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

/** A web root laid out as Overlord's Makefile builds it: the page at the top, the app under apps/. */
function dummyWebroot(): { dir: string; outside: string } {
  const top = mkdtempSync(path.join(os.tmpdir(), 'wk-webroot-'));
  const dir = path.join(top, 'webroot');
  mkdirSync(path.join(dir, 'apps/dashboard/assets'), { recursive: true });
  mkdirSync(path.join(dir, 'apps/other'), { recursive: true });
  mkdirSync(path.join(dir, 'empty'), { recursive: true });
  mkdirSync(path.join(dir, '.git'), { recursive: true });
  writeFileSync(path.join(dir, 'index.html'), '<!doctype html><script type="module" src="/apps/dashboard/assets/index-AbCdEf12.js"></script>\n');
  writeFileSync(path.join(dir, 'apps/dashboard/index.html'), '<p>app page</p>\n');
  writeFileSync(path.join(dir, 'apps/dashboard/assets/index-AbCdEf12.js'), 'console.log("dashboard");\n');
  writeFileSync(path.join(dir, 'apps/dashboard/manifest.json'), '{"name":"x"}\n');
  writeFileSync(path.join(dir, '.git/config'), 'secret\n');
  writeFileSync(path.join(dir, 'apps/.hidden-file'), 'hidden\n');
  const outside = path.join(top, 'outside.txt');
  writeFileSync(outside, 'not in the web root\n');
  symlinkSync(outside, path.join(dir, 'link-out.txt'));
  symlinkSync(path.join(dir, 'apps/dashboard/manifest.json'), path.join(dir, 'link-in.json'));
  return { dir, outside };
}

/** A GET with the path exactly as given (fetch would normalise `..` and `%2e%2e` away). */
function rawGet(port: number, p: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function startHub(webroot: string): Promise<{ hub: ChildProcess; port: number; token: string }> {
  const state = path.join(path.dirname(webroot), 'state');
  const init = spawn(process.execPath, [MAIN, 'hub', '--init', '--admin-user', 'root', '--state', state], { env: { ...process.env, WIREKIT_ADMIN_PASS: 'rootpass' }, stdio: 'ignore' });
  await new Promise((r) => init.once('exit', r));
  const hub = spawn(process.execPath, [MAIN, 'hub', '--state', state, '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', '127.0.0.1:0', '--overlord-webroot', webroot], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const m = await waitLine(hub.stderr!, /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(m[1]);
    const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username: 'root', password: 'rootpass' }) });
    const token = ((await login.json()) as { data: { token: string } }).data.token;
    return { hub, port, token };
  } catch (err) {
    hub.kill('SIGKILL');
    throw err;
  }
}

test('wirekit hub --overlord-webroot DIR: the page at /, files at their paths, hashed assets cached, others revalidated', async () => {
  const { dir } = dummyWebroot();
  const { hub, port } = await startHub(dir);
  try {
    const top = await rawGet(port, '/');
    assert.equal(top.status, 200);
    assert.match(top.body, /index-AbCdEf12\.js/);
    assert.equal(top.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(top.headers['cache-control'], 'no-cache');
    assert.equal(top.headers['x-content-type-options'], 'nosniff');
    assert.equal(Number(top.headers['content-length']), Buffer.byteLength(top.body));
    // Revalidation: the same ETag gives 304 and no body.
    const again = await rawGet(port, '/', { 'if-none-match': String(top.headers.etag) });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');

    const js = await rawGet(port, '/apps/dashboard/assets/index-AbCdEf12.js');
    assert.equal(js.status, 200);
    assert.equal(js.body, 'console.log("dashboard");\n');
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');

    const manifest = await rawGet(port, '/apps/dashboard/manifest.json');
    assert.equal(manifest.status, 200);
    assert.equal(manifest.headers['cache-control'], 'no-cache');
    assert.equal(manifest.headers['content-type'], 'application/json; charset=utf-8');

    // A directory: redirected to its final slash (as overlordd), then its index.html; none: 404.
    const bare = await rawGet(port, '/apps/dashboard?x=1');
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, '/apps/dashboard/?x=1');
    assert.equal((await rawGet(port, '/apps/dashboard/')).body, '<p>app page</p>\n');
    assert.equal((await rawGet(port, '/empty/')).status, 404);

    // A symlink that stays inside the web root is served.
    assert.equal((await rawGet(port, '/link-in.json')).body, '{"name":"x"}\n');

    // API routes still come first; POST is not served from the web root.
    assert.equal((await rawGet(port, '/api/agents')).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${port}/index.html`, { method: 'POST' })).status, 404);
    // HEAD: the headers, no body.
    const head = await fetch(`http://127.0.0.1:${port}/apps/dashboard/manifest.json`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '13');
  } finally {
    hub.kill('SIGKILL');
  }
});

test('--overlord-webroot: no directory traversal, no hidden files, no symlink out of the web root', async () => {
  const { dir } = dummyWebroot();
  const { hub, port } = await startHub(dir);
  try {
    for (const p of [
      '/../outside.txt',
      '/apps/../../outside.txt',
      '/%2e%2e/outside.txt',
      '/apps/%2e%2e/%2e%2e/outside.txt',
      '/apps%2f..%2f..%2foutside.txt',
      '/..%5coutside.txt',
      '/link-out.txt',
      '/.git/config',
      '/apps/.hidden-file',
      '/%2egit/config',
      '/index.html%00.js',
      '/apps//dashboard/manifest.json',
      '/%E0%A4%A',
    ]) {
      const r = await rawGet(port, p);
      assert.equal(r.status, 404, p);
      assert.doesNotMatch(r.body, /not in the web root|secret|hidden/, p);
    }
  } finally {
    hub.kill('SIGKILL');
  }
});

test('--overlord-webroot: GET /api/apps lists the directories of DIR/apps, as overlordd', async () => {
  const { dir } = dummyWebroot();
  const { hub, port, token } = await startHub(dir);
  try {
    const r = await fetch(`http://127.0.0.1:${port}/api/apps`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual(await r.json(), { status: 'success', data: ['dashboard', 'other'] });
  } finally {
    hub.kill('SIGKILL');
  }
});

test('--overlord-webroot refuses a path that is not a directory', async () => {
  const { dir } = dummyWebroot();
  const hub = spawn(process.execPath, [MAIN, 'hub', '--state', path.join(path.dirname(dir), 'state2'), '--overlord-webroot', path.join(dir, 'index.html')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitLine(hub.stderr!, /--overlord-webroot .*not a directory/);
    const code = await new Promise((r) => hub.once('exit', r));
    assert.notEqual(code, 0);
  } finally {
    hub.kill('SIGKILL');
  }
});

test('webrootSegments: the decoded path as segments, or undefined for anything that could leave the root', () => {
  assert.deepEqual(webrootSegments('/'), []);
  assert.deepEqual(webrootSegments('/apps/dashboard/'), ['apps', 'dashboard']);
  assert.deepEqual(webrootSegments('/a%20b.txt'), ['a b.txt']);
  for (const p of ['/..', '/a/../b', '/./a', '/a//b', '/.env', '/a%2F..%2F..', '/a\\b', '/a%00', '/%zz']) assert.equal(webrootSegments(p), undefined, p);
});

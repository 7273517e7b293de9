import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHub } from '../../src/hub/server.js';
import { CONSOLE_CSP, loadConsoleAssets } from '../../src/hub/console-assets.js';
import { createLogger } from '../../src/agent/log.js';

test('the console assets: the browser modules, xterm and its fit addon, the stylesheet; no server-side module, no source maps', () => {
  const { hash, files, page } = loadConsoleAssets();
  assert.match(hash, /^[0-9a-f]{16}$/);
  for (const name of ['app.js', 'net.js', 'terminal.js', 'files.js', 'exec.js', 'filter.js', 'dom.js', 'console.css', 'vendor/xterm.mjs', 'vendor/xterm.css', 'vendor/addon-fit.mjs']) assert.ok(files.has(name), name);
  assert.ok(!files.has('page.js'));
  for (const [name, a] of files) assert.doesNotMatch(a.body.toString('utf8'), /sourceMappingURL=\S+\s*$/, name);
  const html = page.body.toString('utf8');
  assert.ok(html.includes(`src="/assets/${hash}/app.js"`));
  assert.doesNotMatch(html, /<script>|<style>|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
  assert.doesNotMatch(CONSOLE_CSP, /script-src[^;]*(unsafe|\*)/);
});

test('served at / with the CSP on every reply; HEAD; an old hash is served but not pinned; unknown names and methods are 404', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-console-assets-'));
  const h = await startHub({ stateDir: path.join(dir, 'state'), agents: { host: '127.0.0.1', port: 0 }, users: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 }, logger: createLogger('silent') });
  const base = `http://127.0.0.1:${h.httpAddress!.port}`;
  const { hash } = loadConsoleAssets();
  const index = await fetch(`${base}/index.html`);
  assert.equal(index.status, 200);
  assert.equal(index.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.equal(index.headers.get('x-frame-options'), 'DENY');
  assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
  const etag = index.headers.get('etag')!;
  for (const inm of [etag, `"x", W/${etag}`, '*']) assert.equal((await fetch(`${base}/`, { headers: { 'if-none-match': inm } })).status, 304, inm);
  assert.equal((await fetch(`${base}/`, { headers: { 'if-none-match': '"other"' } })).status, 200);
  const css = await fetch(`${base}/assets/${hash}/console.css`, { method: 'HEAD' });
  assert.equal(css.status, 200);
  assert.equal(css.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.equal(await css.text(), '');
  assert.ok(Number(css.headers.get('content-length')) > 100);
  const old = await fetch(`${base}/assets/0000000000000000/app.js`);
  assert.equal(old.status, 200);
  assert.equal(old.headers.get('cache-control'), 'no-cache');
  for (const p of [`/assets/${hash}/page.js`, `/assets/${hash}/../package.json`, `/assets/${hash}/app.js.map`, '/assets/x/app.js', '/app.js']) assert.equal((await fetch(`${base}${p}`)).status, 404, p);
  assert.equal((await fetch(`${base}/`, { method: 'POST' })).status, 404);
  assert.equal((await fetch(`${base}/api/whoami`)).status, 401, 'the API is untouched');
  await h.close();
});

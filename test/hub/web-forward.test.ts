/**
 * Forward origins (src/hub/web-forward.ts) under Node alone: which Host headers are a forward's,
 * and which origin patterns are accepted. The browser side is test/console/web-forward.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseForwardOrigin, WebForwards } from '../../src/hub/web-forward.js';
import type { HubHttpApi } from '../../src/hub/http-api.js';

const label = `wk-${'ab12'.repeat(8)}`;

test('a forward origin is wk-<32 hex>, then exactly the pattern suffix and port', () => {
  const f = new WebForwards({} as HubHttpApi, { origin: 'http://*.localhost:7780' });
  assert.equal(f.origin, 'http://*.localhost:7780');
  assert.equal(f.labelOf(`${label}.localhost:7780`), label);
  assert.equal(f.labelOf(`${label.toUpperCase().replace('WK', 'wk')}.LOCALHOST:7780`), label);
  for (const host of ['localhost:7780', '127.0.0.1:7780', `${label}.localhost:7781`, `${label}.localhost`, `${label}.evil.localhost:7780`, `x.${label}.localhost:7780`, `wk-123.localhost:7780`, `hub.localhost:7780`, undefined]) {
    assert.equal(f.labelOf(host), undefined, String(host));
  }
});

test('a default port may be left out of Host either way', () => {
  const f = new WebForwards({} as HubHttpApi, { origin: 'https://*.fwd.example.net' });
  assert.equal(f.labelOf(`${label}.fwd.example.net`), label);
  assert.equal(f.labelOf(`${label}.fwd.example.net:443`), label);
  assert.equal(f.labelOf(`${label}.fwd.example.net:80`), undefined);
  assert.equal(f.labelOf('hub.fwd.example.net'), undefined, 'the console may live under the same suffix');
});

test('off, and set later', () => {
  const f = new WebForwards({} as HubHttpApi, { origin: false });
  assert.equal(f.enabled, false);
  assert.equal(f.labelOf(`${label}.localhost:7780`), undefined);
  f.setOrigin('http://*.localhost:9');
  assert.equal(f.labelOf(`${label}.localhost:9`), label);
});

test('origin patterns: a scheme, a * label, a suffix, an optional port', () => {
  assert.deepEqual(parseForwardOrigin('http://*.localhost:7780'), { scheme: 'http', suffix: '.localhost', port: ':7780' });
  assert.deepEqual(parseForwardOrigin('HTTPS://*.Fwd.Example.net/'), { scheme: 'https', suffix: '.fwd.example.net', port: '' });
  for (const bad of ['http://localhost:7780', 'http://x*.localhost', 'ftp://*.localhost', 'http://*.localhost/path', '*.localhost', 'http://*', 'http://*.-bad.net']) {
    assert.throws(() => parseForwardOrigin(bad), { code: 'WK_USAGE' }, bad);
  }
});

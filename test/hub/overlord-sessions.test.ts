import { test } from 'node:test';
import assert from 'node:assert/strict';
import { __test } from '../../src/hub/overlord/sessions.js';

const enc = (s: string) => new TextEncoder().encode(s);

test('ghost exec trailer: found wherever it is in the output and taken out, split across chunks', () => {
  const { ExitTrailer } = __test;
  const nonce = 'abc123';
  const all = enc(`out\n\x1eWKX${nonce}:7\x1elate\n`);
  for (let step = 1; step <= all.length; step++) {
    const t = new ExitTrailer(nonce);
    const got: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += step) got.push(t.push(all.subarray(i, i + step)));
    const end = t.end();
    got.push(end.data);
    assert.equal(Buffer.concat(got).toString(), 'out\nlate\n');
    assert.equal(end.code, 7);
  }
  const none = new ExitTrailer(nonce);
  const data = Buffer.concat([none.push(enc('no trailer \x1eWKX')), none.end().data]);
  assert.equal(data.toString(), 'no trailer \x1eWKX');
});

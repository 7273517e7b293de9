import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { TokenSigner, newTokenSecret, sameSecret } from '../../src/hub/tokens.js';
import { HubAuthError } from '../../src/hub/errors.js';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

test('a signed token verifies with Overlord-shaped claims and expires after its lifetime', () => {
  const signer = new TokenSigner(newTokenSecret(), 3600);
  const now = 1_700_000_000_000;
  const { token, expire } = signer.sign('alice', true, now);
  assert.equal(expire, now / 1000 + 3600);
  const claims = signer.verify(token, now + 1000);
  assert.deepEqual({ ...claims }, { username: 'alice', is_admin: true, exp: expire, iat: now / 1000, iss: 'overlord' });
  assert.throws(() => signer.verify(token, now + 3600_000), (e: unknown) => e instanceof HubAuthError && /expired/.test(e.message));
});

test('tampered, foreign, alg=none and oversized tokens are refused with WK_AUTH', () => {
  const secret = newTokenSecret();
  const signer = new TokenSigner(secret);
  const { token } = signer.sign('bob', false);
  const [h, p, s] = token.split('.') as [string, string, string];
  const forged = `${h}.${b64({ username: 'bob', is_admin: true, exp: 9e9, iat: 0, iss: 'overlord' })}.${s}`;
  const none = `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`;
  const other = new TokenSigner(newTokenSecret()).sign('bob', false).token;
  // Signed with the right key but naming another algorithm.
  const hs512Head = b64({ alg: 'HS512', typ: 'JWT' });
  const wrongAlg = `${hs512Head}.${p}.${createHmac('sha256', secret).update(`${hs512Head}.${p}`).digest('base64url')}`;
  for (const bad of [forged, none, other, wrongAlg, 'a.b', '', 'x'.repeat(5000), `${h}.${p}.${s}x`]) {
    assert.throws(() => signer.verify(bad), (e: unknown) => e instanceof HubAuthError && e.code === 'WK_AUTH', bad.slice(0, 40));
  }
});

test('sameSecret compares whole secrets of any length', () => {
  assert.equal(sameSecret('abc', 'abc'), true);
  assert.equal(sameSecret('abc', 'abd'), false);
  assert.equal(sameSecret('abc', 'abcd'), false);
  assert.equal(sameSecret('', ''), true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../src/hub/passwords.js';

const cheap = { logN: 10, r: 8, p: 1 };

test('scrypt hashes verify the right password only, and never store it', async () => {
  const stored = await hashPassword('correct horse', cheap);
  assert.match(stored, /^scrypt\$10\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.ok(!stored.includes('correct'));
  assert.equal(await verifyPassword('correct horse', stored), true);
  assert.equal(await verifyPassword('correct horsf', stored), false);
  assert.notEqual(await hashPassword('correct horse', cheap), stored, 'a fresh salt each time');
});

test('malformed or hostile stored hashes never match and never run an unbounded scrypt', async () => {
  for (const bad of ['', 'plain', 'scrypt$99$8$1$AA==$AA==', 'scrypt$10$8$1$AA==$short', 'bcrypt$10$8$1$AA==$AA==']) {
    assert.equal(await verifyPassword('x', bad), false, bad);
  }
  await assert.rejects(hashPassword('', cheap), { code: 'WK_USAGE' });
});

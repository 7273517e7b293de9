import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, readdirSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Users } from '../../src/hub/users.js';
import { mayOpen } from '../../src/hub/allowlist.js';
import { StateDir } from '../../src/hub/state-dir.js';
import { LoginThrottle } from '../../src/hub/login-throttle.js';

test('users and groups: admin in the admin group, group membership, removal cascades', () => {
  const users = new Users();
  users.add('root', 'scrypt$h1', true);
  users.add('ann', 'scrypt$h2', false);
  assert.throws(() => users.add('ann', 'x', false), { code: 'WK_USAGE' });
  assert.throws(() => users.add('bad name', 'x', false), { code: 'WK_USAGE' });
  users.addGroup('lab');
  users.addToGroup('lab', 'ann');
  assert.deepEqual(users.groupMembers('lab'), ['ann']);
  assert.deepEqual(users.list(), [
    { username: 'ann', is_admin: false, groups: ['lab'] },
    { username: 'root', is_admin: true, groups: ['admin'] },
  ]);
  assert.deepEqual(users.listGroups(), [{ name: 'admin', user_count: 1 }, { name: 'lab', user_count: 1 }]);
  users.removeGroup('lab');
  assert.deepEqual(users.get('ann')?.groups, []);
  assert.throws(() => users.removeGroup('admin'), { code: 'WK_USAGE' });
  assert.throws(() => users.remove('nobody'), { code: 'WK_NOT_FOUND' });
  const copy = new Users(users.toDocument());
  assert.deepEqual(copy.list(), users.list());
});

test("allowlist: Overlord's semantics (anyone, u/NAME, g/GROUP; missing or malformed denies)", () => {
  const ann = { username: 'ann', isAdmin: false, groups: ['lab'] };
  const admin = { username: 'root', isAdmin: true, groups: ['admin'] };
  assert.equal(mayOpen(admin, {}), true);
  assert.equal(mayOpen(ann, {}), false);
  assert.equal(mayOpen(ann, { allowlist: 'anyone' }), false, 'not an array');
  assert.equal(mayOpen(ann, { allowlist: ['anyone'] }), true);
  assert.equal(mayOpen(ann, { allowlist: ['u/bob', 'u/ann'] }), true);
  assert.equal(mayOpen(ann, { allowlist: ['g/lab'] }), true);
  assert.equal(mayOpen(ann, { allowlist: ['g/ops'] }), false);
  assert.equal(mayOpen(ann, { allowlist: ['bogus', 'u/ann'] }), false, 'a malformed entry ends the scan denied');
  assert.equal(mayOpen(ann, { allowlist: [7, 'u/ann'] }), false);
});

test('state directory: created 0700, files 0600 written atomically, other-readable directory refused', async () => {
  const base = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-state-'));
  const dir = path.join(base, 'state');
  const state = await StateDir.open(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(await state.read('users.json'), undefined);
  await state.write('users.json', { a: 1 });
  await state.write('users.json', { a: 2 });
  assert.deepEqual(await state.read('users.json'), { a: 2 });
  assert.equal(statSync(path.join(dir, 'users.json')).mode & 0o777, 0o600);
  writeFileSync(path.join(dir, '.tmp-users.json-dead'), 'half');
  writeFileSync(path.join(dir, 'broken.json'), '{');
  await StateDir.open(dir);
  assert.deepEqual(readdirSync(dir).sort(), ['broken.json', 'users.json'], 'a crashed write is swept at start');
  await assert.rejects(state.read('broken.json'), { code: 'WK_USAGE' });
  chmodSync(dir, 0o755);
  await assert.rejects(StateDir.open(dir), /open to other users/);
});

test('login throttle: five failures lock an address for a while; success clears; the table is bounded', () => {
  const t = new LoginThrottle({ maxFailures: 5, windowMs: 1000, lockMs: 500, maxAddresses: 3 });
  for (let i = 0; i < 4; i++) t.fail('10.0.0.1', i);
  assert.equal(t.lockedUntil('10.0.0.1', 4), 0);
  t.fail('10.0.0.1', 5);
  assert.equal(t.lockedUntil('10.0.0.1', 6), 505);
  assert.equal(t.lockedUntil('10.0.0.1', 506), 0, 'the lock ends');
  t.fail('10.0.0.2', 0);
  t.succeed('10.0.0.2');
  for (let i = 0; i < 4; i++) t.fail('10.0.0.2', i);
  assert.equal(t.lockedUntil('10.0.0.2', 10), 0, 'success cleared the count');
  for (const a of ['a', 'b', 'c', 'd']) t.fail(a, 20);
  for (let i = 0; i < 5; i++) t.fail('e', 30);
  assert.equal(t.lockedUntil('e', 31), 530);
});

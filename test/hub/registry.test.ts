import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentRegistry, RegistryFullError, isValidAgentId, type AgentInfo } from '../../src/hub/registry.js';
import { DuplicateAgentError } from '../../src/hub/errors.js';
import { parseFilter } from '../../src/hub/filter.js';

const info = (id: string, properties: Record<string, unknown> = {}): AgentInfo => ({
  id,
  hostname: `${id}.lab`,
  properties,
  address: '127.0.0.1',
  version: '0.1.0',
  capabilities: ['exec'],
  authenticated: true,
});

test('a connected id cannot be taken by a second agent; after it leaves, it can', () => {
  const reg = new AgentRegistry<object>();
  const a = {};
  const b = {};
  assert.equal(reg.register(info('dev1'), a, 0).type, 'joined');
  assert.throws(() => reg.register(info('dev1'), b, 1), DuplicateAgentError);
  assert.equal(reg.remove('dev1', b), undefined, 'another connection cannot remove it');
  assert.equal(reg.remove('dev1', a)?.type, 'left');
  assert.equal(reg.register(info('dev1'), b, 2).type, 'joined');
});

test('agents silent past the keepalive timeout expire; a keepalive from the owner keeps one', () => {
  const reg = new AgentRegistry<string>({ keepaliveTimeoutMs: 100 });
  reg.register(info('a'), 'ca', 0);
  reg.register(info('b'), 'cb', 0);
  assert.equal(reg.seen('a', 'ca', 90), true);
  assert.equal(reg.seen('b', 'not-owner', 90), false);
  const left = reg.expire(150);
  assert.deepEqual(left.map((e) => [e.agent.id, e.type, e.type === 'left' && e.reason]), [['b', 'left', 'timeout']]);
  assert.deepEqual(reg.list().map((x) => x.id), ['a']);
});

test('list filters by id, hostname and properties (all must match), sorted by id', () => {
  const reg = new AgentRegistry<number>();
  reg.register(info('c', { site: 'lab', tags: ['x', 'gpu'] }), 1, 0);
  reg.register(info('a', { site: 'lab' }), 2, 0);
  reg.register(info('b', { site: 'factory', rack: 3 }), 3, 0);
  assert.deepEqual(reg.list().map((x) => x.id), ['a', 'b', 'c']);
  assert.deepEqual(reg.list([parseFilter('site=^lab$')]).map((x) => x.id), ['a', 'c']);
  assert.deepEqual(reg.list([parseFilter('site=lab'), parseFilter('tags=gpu')]).map((x) => x.id), ['c']);
  assert.deepEqual(reg.list([parseFilter('rack=3')]).map((x) => x.id), ['b']);
  assert.deepEqual(reg.list([parseFilter('hostname=^a\\.')]).map((x) => x.id), ['a']);
  assert.throws(() => parseFilter('novalue'), { code: 'WK_USAGE' });
  assert.throws(() => parseFilter('k=('), { code: 'WK_USAGE' });
});

test('the registry refuses agents past its limit; ids are bounded and printable', () => {
  const reg = new AgentRegistry<number>({ maxAgents: 2 });
  reg.register(info('a'), 1, 0);
  reg.register(info('b'), 2, 0);
  assert.throws(() => reg.register(info('c'), 3, 0), RegistryFullError);
  for (const bad of ['', 'a b', 'a/b', 'x'.repeat(257), 'a\u0000', 'tab\t']) assert.equal(isValidAgentId(bad), false, JSON.stringify(bad));
  for (const good of ['dev-1', '4c4c4544-0035-3010-8051-b4c04f4d4d32', 'a;b;c', 'héllo']) assert.equal(isValidAgentId(good), true, good);
});

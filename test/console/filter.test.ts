import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesFilterBox, parseFilterBox, propertyText, type AgentRecord } from '../../src/console/filter.js';
import { argvOf } from '../../src/console/exec.js';

const agent = (id: string, properties: Record<string, unknown>, hostname = `${id}.test`): AgentRecord => ({
  mid: id,
  id,
  hostname,
  address: '127.0.0.1',
  version: 't',
  capabilities: [],
  properties,
  since: '2026-01-01T00:00:00.000Z',
  authenticated: true,
});

const fleet = [agent('lab1', { site: 'lab', rack: 3, tags: ['gpu', 'big'] }), agent('fab1', { site: 'factory' }, 'line7.example'), agent('Lab2', {})];
const ids = (text: string) => fleet.filter((a) => matchesFilterBox(a, parseFilterBox(text))).map((a) => a.id);

test('filter box: plain words match id or hostname (case-insensitive), key=regex a property or a built-in field', () => {
  assert.deepEqual(ids(''), ['lab1', 'fab1', 'Lab2']);
  assert.deepEqual(ids('lab'), ['lab1', 'Lab2']);
  assert.deepEqual(ids('line7'), ['fab1']);
  assert.deepEqual(ids('site=fact'), ['fab1']);
  assert.deepEqual(ids('site=^lab$'), ['lab1']);
  assert.deepEqual(ids('rack=3'), ['lab1'], 'numbers compare as JSON');
  assert.deepEqual(ids('tags=gpu'), ['lab1'], 'arrays element by element');
  assert.deepEqual(ids('id=^fab'), ['fab1']);
  assert.deepEqual(ids('hostname=example$'), ['fab1']);
  assert.deepEqual(ids('lab site=lab'), ['lab1'], 'every term must match');
  assert.deepEqual(ids('nothere=x'), []);
  assert.deepEqual(ids('site=('), [], 'an invalid regular expression is taken literally');
  assert.deepEqual(ids('constructor=.'), [], 'only own properties');
});

test('property values as one line of text; exec lines as sh -c unless a JSON argv', () => {
  assert.equal(propertyText('<img src=x onerror=alert(1)>'), '<img src=x onerror=alert(1)>');
  assert.equal(propertyText({ a: [1, 'x'] }), '{"a":[1,"x"]}');
  assert.equal(propertyText(null), 'null');
  assert.deepEqual(argvOf('echo hi >&2'), ['sh', '-c', 'echo hi >&2']);
  assert.deepEqual(argvOf('["ls","-l"]'), ['ls', '-l']);
  assert.deepEqual(argvOf('[not json'), ['sh', '-c', '[not json']);
  assert.deepEqual(argvOf('[]'), ['sh', '-c', '[]']);
});

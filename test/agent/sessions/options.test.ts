import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionProtocolError } from '../../../src/agent/errors.js';
import { parseExecOptions } from '../../../src/agent/sessions/exec.js';
import { parseForwardOptions } from '../../../src/agent/sessions/forward.js';
import { parseTerminalOptions } from '../../../src/agent/sessions/terminal.js';

test('exec options: argv is a non-empty array of strings without NUL, env an object of strings', () => {
  assert.deepEqual(parseExecOptions({ argv: ['ls', '-l'], cwd: '/tmp', env: { A: '1' } }), { argv: ['ls', '-l'], cwd: '/tmp', env: { A: '1' } });
  for (const bad of [{}, { argv: [] }, { argv: 'ls' }, { argv: ['a\0b'] }, { argv: ['ls'], cwd: 1 }, { argv: ['ls'], env: [] }, { argv: ['ls'], env: { 'A=B': 'x' } }, { argv: ['ls'], env: { A: 1 } }]) {
    assert.throws(() => parseExecOptions(bad), (err: unknown) => err instanceof SessionProtocolError && err.origin === 'remote', JSON.stringify(bad));
  }
});

test('terminal options: sizes default to 80x24 and out-of-range sizes are ignored', () => {
  assert.deepEqual(parseTerminalOptions({}), { argv: undefined, cols: 80, rows: 24, cwd: undefined, env: undefined, term: undefined });
  assert.deepEqual(parseTerminalOptions({ cols: 132, rows: 0x10000, term: 'vt100' }), { argv: undefined, cols: 132, rows: 24, cwd: undefined, env: undefined, term: 'vt100' });
  assert.throws(() => parseTerminalOptions({ argv: [] }), SessionProtocolError);
});

test('forward options: host defaults to localhost, port is 1..65535', () => {
  assert.deepEqual(parseForwardOptions({ port: 22 }), { host: 'localhost', port: 22 });
  for (const bad of [{}, { port: 0 }, { port: 65536 }, { port: 1.5 }, { host: 3, port: 22 }]) assert.throws(() => parseForwardOptions(bad), SessionProtocolError);
});

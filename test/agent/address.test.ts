import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../src/agent/address.js';

test('addresses parse', () => {
  assert.deepEqual(parseAddress('tcp://127.0.0.1:7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000, tls: false });
  assert.deepEqual(parseAddress('tls://[::1]:7000'), { kind: 'tcp', host: '::1', port: 7000, tls: true });
  assert.deepEqual(parseAddress('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
  assert.throws(() => parseAddress('http://x:1'));
});

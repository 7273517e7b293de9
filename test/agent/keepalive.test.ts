import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Keepalive } from '../../src/agent/keepalive.js';

test('keepalive: pings at the interval, dead after the timeout, alive when anything arrives', () => {
  const k = new Keepalive(0, { intervalMs: 10, timeoutMs: 35 });
  assert.equal(k.poll(5), undefined);
  assert.equal(k.poll(10), 'ping');
  assert.equal(k.poll(15), undefined);
  assert.equal(k.nextDelay(15), 5);
  k.received(18);
  assert.equal(k.poll(20), 'ping');
  assert.equal(k.poll(52), 'ping');
  assert.equal(k.poll(53), 'dead');
});

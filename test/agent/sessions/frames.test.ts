import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { writeOut } from '../../../src/agent/sessions/frames.js';

test('writeOut: a long output with many waits for drain leaves no listener behind (issue 12 item 3)', async () => {
  const out = new PassThrough({ highWaterMark: 16 });
  const chunk = new Uint8Array(64);
  for (let i = 0; i < 50; i++) {
    const wait = writeOut(out, chunk);
    assert.ok(wait instanceof Promise, 'the buffer is full after each write');
    out.resume();
    await wait;
    out.pause();
  }
  assert.equal(out.listenerCount('close'), 0);
  assert.equal(out.listenerCount('drain'), 0);
  assert.equal(out.listenerCount('error'), 0);
});

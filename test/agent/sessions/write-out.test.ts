/**
 * writeOut (src/agent/sessions/frames.ts): waiting for a full local stream leaves no listener
 * behind, however many times the buffer fills (a terminal's output to a slow reader).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { writeOut } from '../../../src/agent/sessions/frames.js';

test('a thousand waits for drain leave no drain or close listeners', async () => {
  const s = new PassThrough({ highWaterMark: 16 });
  const before = { drain: s.listenerCount('drain'), close: s.listenerCount('close') };
  let read = 0;
  s.on('data', (d: Buffer) => {
    read += d.length;
    s.pause();
    setImmediate(() => s.resume());
  });
  let waits = 0;
  for (let i = 0; i < 1000; i++) {
    const p = writeOut(s, new Uint8Array(64));
    if (p) {
      waits++;
      await p;
    }
  }
  assert.ok(waits > 100, `the buffer filled ${waits} times`);
  assert.deepEqual({ drain: s.listenerCount('drain'), close: s.listenerCount('close') }, before);
  s.end();
  await new Promise((r) => s.once('end', r));
  assert.equal(read, 64_000);
});

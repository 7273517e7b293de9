import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { TruncatedFrameError } from '../../src/codecs/errors.js';
import { TransferReceiver, DIGEST_SIZE } from '../../src/agent/transfer.js';
import { ChecksumError } from '../../src/agent/errors.js';
import { splitAt } from '../helpers/chunks.js';

test('transfer receiver: any chunking, digest checked, trailing bytes handed back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 8 }), fc.uint8Array({ maxLength: 5 }), (data, cuts, extra) => {
      const digest = createHash('sha256').update(data).digest();
      const stream = Buffer.concat([data, digest, extra]);
      const rx = new TransferReceiver(data.length, createHash('sha256'));
      const parts: Uint8Array[] = [];
      const extras: Uint8Array[] = [];
      for (const c of splitAt(stream, cuts)) {
        const s = rx.push(c);
        if (s.data) parts.push(s.data);
        if (s.extra) extras.push(s.extra);
      }
      rx.end();
      assert.ok(rx.done);
      assert.deepEqual(Buffer.concat(parts), Buffer.from(data));
      assert.deepEqual(Buffer.concat(extras), Buffer.from(extra));
      assert.equal(rx.sha256, digest.toString('hex'));
    }),
  );
});

test('transfer receiver: wrong digest and truncation are errors', () => {
  const data = Buffer.from('hello');
  const bad = Buffer.concat([data, Buffer.alloc(DIGEST_SIZE)]);
  assert.throws(() => new TransferReceiver(5, createHash('sha256')).push(bad), ChecksumError);
  const rx = new TransferReceiver(5, createHash('sha256'));
  rx.push(Buffer.from('hel'));
  assert.throws(() => rx.end(), TruncatedFrameError);
  const rx2 = new TransferReceiver(5, createHash('sha256'));
  rx2.push(Buffer.concat([data, Buffer.alloc(10)]));
  assert.throws(() => rx2.end(), TruncatedFrameError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteQueue } from '../../src/bytes/index.js';
import { enc, splitAt } from '../helpers/chunks.js';

test('read exact N across chunks, zero-copy inside one chunk', () => {
  const q = new ByteQueue();
  const a = enc('hello');
  q.push(a);
  q.push(enc(' world'));
  assert.equal(q.length, 11);
  const h = q.read(3)!;
  assert.equal(h.buffer, a.buffer, 'read inside one chunk is a view, not a copy');
  assert.deepEqual(h, enc('hel'));
  assert.deepEqual(q.read(5), enc('lo wo'));
  assert.equal(q.read(4), undefined, 'short read consumes nothing');
  assert.equal(q.length, 3);
  assert.deepEqual(q.drain(), enc('rld'));
  assert.equal(q.length, 0);
});

test('unread puts bytes back in front (UnRecv) and drain takes everything (RecvBuf)', () => {
  const q = new ByteQueue();
  q.push(enc('abcdef'));
  const first = q.read(4)!;
  q.unread(first.subarray(2));
  assert.equal(q.length, 4);
  q.unread(enc('XY'));
  assert.deepEqual(q.drain(), enc('XYcdef'));
});

test('peek does not consume; byteAt indexes across chunks', () => {
  const q = new ByteQueue();
  q.push(enc('ab'));
  q.push(enc('cd'));
  assert.deepEqual(q.peek(3), enc('abc'));
  assert.deepEqual(q.peek(2, 1), enc('bc'));
  assert.equal(q.byteAt(3), 'd'.charCodeAt(0));
  assert.equal(q.byteAt(4), -1);
  assert.equal(q.peek(5), undefined);
  assert.equal(q.length, 4);
});

test('readUntil with a maximum: undefined = need more, null = over the maximum', () => {
  const q = new ByteQueue();
  q.push(enc('abc'));
  assert.equal(q.readUntil(0x0a, 5), undefined);
  q.push(enc('def'));
  assert.equal(q.readUntil(0x0a, 5), null);
  q.push(enc('\nrest'));
  assert.deepEqual(q.readUntil(0x0a, 10), enc('abcdef'));
  assert.deepEqual(q.drain(), enc('rest'));
});

test('a multi-byte delimiter split across chunks is found', () => {
  const q = new ByteQueue();
  for (const c of ['xx', 'EN', 'xEND', 'yy']) q.push(enc(c));
  assert.deepEqual(q.readUntil(enc('END')), enc('xxENx'));
  assert.deepEqual(q.drain(), enc('yy'));
  const q2 = new ByteQueue();
  q2.push(enc('aaE'));
  assert.equal(q2.indexOf(enc('END')), -1);
  q2.push(enc('N'));
  assert.equal(q2.indexOf(enc('END')), -1);
  q2.push(enc('D'));
  assert.equal(q2.indexOf(enc('END')), 2);
});

test('a scan resumes where it stopped: a long line in 1-byte chunks is examined once', () => {
  // Count the bytes that Uint8Array#indexOf examines while the queue scans.
  const original = Uint8Array.prototype.indexOf;
  let examined = 0;
  Uint8Array.prototype.indexOf = function (this: Uint8Array, value: number, from = 0) {
    examined += this.length - from;
    return original.call(this, value, from);
  };
  try {
    const q = new ByteQueue();
    const n = 20000;
    for (let i = 0; i < n; i++) {
      q.push(new Uint8Array([0x61]));
      assert.equal(q.indexOf(0x0a), -1);
    }
    q.push(new Uint8Array([0x0a]));
    assert.equal(q.indexOf(0x0a), n);
    assert.equal(examined, n + 1, 'every byte examined exactly once');
  } finally {
    Uint8Array.prototype.indexOf = original;
  }
});

test('property: any chunking and any sequence of reads gives the same bytes', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }),
      fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 10 }),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 40 }).map((n) => ({ op: 'read' as const, n })), fc.constant({ op: 'until' as const, n: 0 })), { maxLength: 30 }),
      (data, cuts, ops) => {
        const q = new ByteQueue();
        for (const c of splitAt(data, cuts)) q.push(c);
        let model = Array.from(data);
        for (const { op, n } of ops) {
          if (op === 'read') {
            const r = q.read(n);
            if (n > model.length) assert.equal(r, undefined);
            else {
              assert.deepEqual(Array.from(r!), model.slice(0, n));
              model = model.slice(n);
            }
          } else {
            const at = model.indexOf(0);
            const r = q.readUntil(0);
            if (at < 0) assert.equal(r, undefined);
            else {
              assert.deepEqual(Array.from(r!), model.slice(0, at));
              model = model.slice(at + 1);
            }
          }
          assert.equal(q.length, model.length);
        }
        assert.deepEqual(Array.from(q.drain()), model);
      },
    ),
  );
});

test('property: indexOf of a sequence equals a naive search, however the bytes are chunked and consumed', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(0x61, 0x62), { maxLength: 60 }),
      fc.array(fc.constantFrom(0x61, 0x62), { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 12 }),
      (bytes, needleArr, cuts) => {
        const data = Uint8Array.from(bytes);
        const needle = Uint8Array.from(needleArr);
        const q = new ByteQueue();
        // Feed chunk by chunk and scan after each push, as a decoder would.
        let fed = 0;
        for (const c of splitAt(data, cuts)) {
          q.push(c);
          fed += c.length;
          const got = q.indexOf(needle);
          const hay = Array.from(data.subarray(0, fed));
          let want = -1;
          for (let i = 0; i + needle.length <= hay.length; i++) {
            if (needleArr.every((b, k) => hay[i + k] === b)) {
              want = i;
              break;
            }
          }
          assert.equal(got, want);
        }
      },
    ),
  );
});

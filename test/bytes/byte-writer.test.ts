import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ByteWriter } from '../../src/bytes/index.js';

test('ByteWriter: integers in both byte orders, copied bytes, one contiguous result', () => {
  const w = new ByteWriter({ initialSize: 16 });
  w.u8(0xab);
  w.u16(0x0102);
  w.u16(0x0102, true);
  w.u32(0x01020304);
  w.u32(0x01020304, true);
  w.u64(0x0102030405060708n);
  w.u64(5, true);
  w.f64(1.5);
  w.bytes(new Uint8Array([9, 9]));
  assert.equal(w.length, 1 + 2 + 2 + 4 + 4 + 8 + 8 + 8 + 2);
  const out = w.finish();
  assert.deepEqual(
    [...out],
    [0xab, 1, 2, 2, 1, 1, 2, 3, 4, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 5, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 9, 9],
  );
  assert.equal(w.length, 0);
});

test('ByteWriter: a large part is kept by reference between the scratch parts around it', () => {
  const w = new ByteWriter({ copyThreshold: 64 });
  const payload = new Uint8Array(1000).fill(7);
  w.u32(payload.length);
  w.append(payload);
  w.u8(1);
  const parts = w.parts();
  assert.equal(parts.length, 3);
  assert.deepEqual([...parts[0]!], [0, 0, 3, 232]);
  assert.equal(parts[1], payload, 'the payload is not copied');
  assert.deepEqual([...parts[2]!], [1]);
});

test('ByteWriter: any sequence of writes gives the bytes in order; sealed parts survive growth', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (chunks, threshold) => {
      const w = new ByteWriter({ initialSize: 16, copyThreshold: threshold });
      const expected: number[] = [];
      for (const c of chunks) {
        w.append(c);
        expected.push(...c);
      }
      const parts = w.parts();
      assert.deepEqual(parts.flatMap((p) => [...p]), expected);
    }),
  );
});

test('ByteWriter: reserve gives zeroed bytes to fill in place; unwrite and discard take writes back', () => {
  const w = new ByteWriter({ initialSize: 16 });
  w.u8(1);
  const hdr = w.reserve(3);
  assert.deepEqual([...hdr], [0, 0, 0]);
  hdr[2] = 7;
  w.u8(2);
  const r = w.reserve(4);
  w.unwrite(r.length);
  assert.deepEqual([...w.finish()], [1, 0, 0, 7, 2]);
  w.u8(5);
  w.append(new Uint8Array(5000));
  assert.throws(() => w.unwrite(1), { code: 'WK_USAGE' });
  w.discard();
  assert.equal(w.length, 0);
  w.u8(6);
  assert.deepEqual([...w.finish()], [6]);
});

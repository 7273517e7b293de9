import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, ndjson, percentDollar, u32be } from '../../src/codecs/index.js';

test('smoke: ndjson, %$ and u32be decode', () => {
  const r = new FrameReader(ndjson());
  assert.deepEqual(r.push(new TextEncoder().encode('{"a":1}\n[2]\r\n')), [{ a: 1 }, [2]]);
  const pd = percentDollar();
  const p = new FrameReader(pd);
  assert.deepEqual(p.push(pd.encode('héllo')), ['héllo']);
  assert.deepEqual(p.push(new TextEncoder().encode('%$')), ['']);
  const u = new FrameReader(u32be());
  assert.deepEqual(u.push(new Uint8Array([0, 0, 0, 2, 7, 8])), [new Uint8Array([7, 8])]);
});

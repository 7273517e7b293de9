import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { ZlibInflater, availableEncodings, createStreamDecoder, createStreamEncoder } from '../../../src/protocols/mux-frames/index.js';
import { nodeEncodings } from '../../../src/protocols/mux-frames/node.js';
import { splitAt } from '../../helpers/chunks.js';

const te = new TextEncoder();

describe('zlib stream encoding', () => {
  it('the inflater decodes a zlib stream cut anywhere, and detects corruption', () => {
    const text = te.encode('the quick brown fox jumps over the lazy dog '.repeat(2000) + 'x'.repeat(70_000));
    const compressed = new Uint8Array(zlib.deflateSync(text));
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 10 }), (cuts) => {
        const inf = new ZlibInflater();
        const parts = splitAt(compressed, cuts).map((p) => inf.push(p));
        assert.ok(inf.finished);
        assert.deepEqual(Buffer.concat(parts), Buffer.from(text));
      }),
      { numRuns: 30 },
    );
    const broken = compressed.slice();
    broken[broken.length - 1] ^= 1;
    assert.throws(() => new ZlibInflater().push(broken), { code: 'WK_MUX_ENCODING' });
    assert.throws(() => new ZlibInflater().push(Uint8Array.of(0x78, 0x9c, 0xff, 0xff)), { code: 'WK_MUX_ENCODING' });
  });

  it('limits output per push (compression bombs)', () => {
    const bomb = new Uint8Array(zlib.deflateSync(new Uint8Array(10_000_000)));
    assert.throws(() => new ZlibInflater({ maxOutputPerPush: 1_000_000 }).push(bomb), /over the limit/);
  });

  it('encoder output is one zlib stream that Node and our decoder read, flush by flush', () => {
    const enc = createStreamEncoder('zlib', nodeEncodings);
    const dec = createStreamDecoder('zlib');
    const all: Uint8Array[] = [];
    for (let i = 0; i < 5; i++) {
      const chunk = te.encode(`message ${i} `.repeat(100 * (i + 1)));
      const out = Buffer.concat([enc.encode(chunk), enc.flush()]);
      all.push(out);
      assert.deepEqual(Buffer.from(dec.decode(out)), Buffer.from(chunk));
    }
    all.push(enc.finish());
    assert.equal(zlib.inflateSync(Buffer.concat(all)).length, [1, 2, 3, 4, 5].reduce((n, k) => n + `message ${k - 1} `.length * 100 * k, 0));
  });

  it('zstd is reported unavailable on this runtime', () => {
    assert.throws(() => createStreamEncoder('zstd-8mb'), { code: 'WK_MUX_ENCODING' });
  });
});

describe('the sans-I/O entry without a compressor', () => {
  it('offers identity only and refuses a zlib encoder without deflateRaw', () => {
    assert.deepEqual(availableEncodings(), ['identity']);
    assert.deepEqual(availableEncodings(nodeEncodings), ['zlib', 'identity']);
    assert.throws(() => createStreamEncoder('zlib'), { code: 'WK_MUX_ENCODING' });
  });

  it('a zlib decoder may take another inflater', () => {
    const seen: number[] = [];
    const dec = createStreamDecoder('zlib', [], { createInflater: () => ({ push: (c) => (seen.push(c.length), c) }) });
    assert.deepEqual(dec.decode(Uint8Array.of(1, 2, 3)), Uint8Array.of(1, 2, 3));
    assert.deepEqual(seen, [3]);
  });
});

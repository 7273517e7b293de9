import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CborDecoder, CborError, decodeCbor, encodeCbor, mapGet, type CborValue } from '../../../src/protocols/mux-frames/index.js';
import { splitAt } from '../../helpers/chunks.js';

const te = new TextEncoder();
const cborArb: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer({ min: -1_000_000, max: 1_000_000 }),
    fc.bigInt({ min: -(1n << 64n), max: (1n << 64n) - 1n }).filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < -BigInt(Number.MAX_SAFE_INTEGER) - 1n),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), tie('v'), { maxKeys: 5 }),
  ),
})).v;

describe('CBOR subset', () => {
  it('encodes as Mercurial does (sorted keys, shortest heads)', () => {
    assert.deepEqual(encodeCbor({ name: 'x', args: { b: 1, a: 2 } }), Uint8Array.from(Buffer.from('a24461726773a24161024162014' + '46e616d654178', 'hex')));
    assert.deepEqual(encodeCbor(-1), Uint8Array.of(0x20));
    assert.deepEqual(encodeCbor(65536), Uint8Array.of(0x1a, 0, 1, 0, 0));
    assert.deepEqual(encodeCbor(new Set([3, 1, 2])), Uint8Array.of(0xd9, 0x01, 0x02, 0x83, 1, 2, 3));
    assert.deepEqual(encodeCbor((1n << 64n) - 1n), Uint8Array.of(0x1b, 255, 255, 255, 255, 255, 255, 255, 255));
  });

  it('round-trips arbitrary values, whole and in any chunking', () => {
    fc.assert(
      fc.property(fc.array(cborArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (values, cuts) => {
        const bytes = Buffer.concat(values.map((v) => encodeCbor(v)));
        const d = new CborDecoder();
        const out: CborValue[] = [];
        for (const part of splitAt(new Uint8Array(bytes), cuts)) out.push(...d.push(part));
        d.end();
        const norm = (v: CborValue): CborValue => decodeCbor(encodeCbor(v));
        assert.deepEqual(out, values.map(norm));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses what is outside the subset and what is over the limits, before allocating', () => {
    const bad: [string, Uint8Array, object?][] = [
      ['text string', Uint8Array.of(0x61, 0x61)],
      ['float', Uint8Array.of(0xf9, 0, 0)],
      ['indefinite array', Uint8Array.of(0x9f, 0xff)],
      ['other tag', Uint8Array.of(0xc1, 0)],
      ['huge byte string', Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)],
      ['huge array', Uint8Array.of(0x9b, 0, 0, 0, 1, 0, 0, 0, 0)],
      ['deep nesting', new Uint8Array(100).fill(0x81)],
      ['bytes over limit', Uint8Array.of(0x59, 0x10, 0x00), { maxBytesLength: 100 }],
      ['stray break', Uint8Array.of(0xff)],
      ['map key is a list', Uint8Array.of(0xa1, 0x80, 0x01)],
    ];
    for (const [name, bytes, limits] of bad) {
      assert.throws(() => new CborDecoder(limits as never).push(bytes), CborError, name);
    }
    assert.throws(() => decodeCbor(Uint8Array.of(0x82, 0x01)), /ended inside/);
  });

  it('joins indefinite-length byte strings', () => {
    assert.deepEqual(decodeCbor(Uint8Array.of(0x5f, 0x41, 0x61, 0x42, 0x62, 0x63, 0xff)), te.encode('abc'));
  });
});

describe('mapGet', () => {
  it('reads byte-string keys of plain-object and Map maps, nothing else', () => {
    assert.equal(mapGet({ name: 1 }, 'name'), 1);
    assert.equal(mapGet(new Map([[te.encode('name'), 2]]), 'name'), 2);
    assert.equal(mapGet([1], '0'), undefined);
    assert.equal(mapGet(null, 'x'), undefined);
  });
});

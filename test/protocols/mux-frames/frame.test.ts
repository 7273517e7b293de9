import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader } from '../../../src/codecs/codec.js';
import { MuxFrameCodec, encodeCbor, encodeFrame, formatCborNotation, formatFrameNotation, frameFromNotation, parseCborNotation, parseFrame, parseFrameNotation, type MuxFrame } from '../../../src/protocols/mux-frames/index.js';
import { splitAt } from '../../helpers/chunks.js';

describe('frame codec', () => {
  const frameArb = fc.record({
    requestId: fc.integer({ min: 0, max: 0xffff }),
    streamId: fc.integer({ min: 0, max: 0xff }),
    streamFlags: fc.integer({ min: 0, max: 0xff }),
    type: fc.integer({ min: 0, max: 15 }),
    flags: fc.integer({ min: 0, max: 15 }),
    payload: fc.uint8Array({ maxLength: 300 }),
  });

  it('decodes the same frames for every chunking', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (frames, cuts) => {
        const bytes = new Uint8Array(Buffer.concat(frames.map(encodeFrame)));
        const reader = new FrameReader(new MuxFrameCodec());
        const out: MuxFrame[] = [];
        for (const part of splitAt(bytes, cuts)) out.push(...reader.push(part));
        out.push(...reader.end());
        assert.deepEqual(
          out.map((f) => ({ ...f, payload: Buffer.from(f.payload) })),
          frames.map((f) => ({ ...f, payload: Buffer.from(f.payload) })),
        );
      }),
    );
  });

  it('reads the 24-bit length as b0 + 256*b1 + 65536*b2 and checks it before buffering', () => {
    const big = encodeFrame({ requestId: 1, streamId: 1, streamFlags: 0, type: 3, flags: 2, payload: new Uint8Array(70_000) });
    assert.deepEqual([...big.subarray(0, 3)], [70_000 & 0xff, (70_000 >> 8) & 0xff, 1]);
    assert.equal(new FrameReader(new MuxFrameCodec({ maxFrameLength: 100_000 })).push(big)[0]!.payload.length, 70_000);
    const r = new FrameReader(new MuxFrameCodec());
    assert.throws(() => r.push(big.subarray(0, 8)), { code: 'WK_FRAME_TOO_LARGE' });
    assert.throws(() => r.push(new Uint8Array(1)), { code: 'WK_FRAME_TOO_LARGE' });
  });

  it('reports a truncated frame at end of input', () => {
    const r = new FrameReader(new MuxFrameCodec());
    r.push(frameFromNotation('1 1 0 command-data eos hello').subarray(0, 10));
    assert.throws(() => r.end(), { code: 'WK_TRUNCATED' });
  });

  it('formats frames in the notation and parses them back', () => {
    for (const s of ["1 1 stream-begin command-request new cbor:{b'name': b'x'}", '3 2 stream-begin|encoded command-response continuation \\x01\\x02', '5 1 0 command-data eos data']) {
      const f = parseFrameNotation(s);
      assert.equal(formatFrameNotation(f), s);
      assert.deepEqual(parseFrame(frameFromNotation(formatFrameNotation(f))), { ...f, payload: f.payload });
    }
  });
});

describe('CBOR notation', () => {
  it('parses and formats the cbor: payload literals', () => {
    const v = parseCborNotation("{b'name': b'x', b'args': [1, -2, True, None, b'\\x00']}");
    assert.deepEqual(encodeCbor(v), encodeCbor({ name: 'x', args: [1, -2, true, null, Uint8Array.of(0)] }));
    assert.deepEqual(encodeCbor(parseCborNotation(formatCborNotation(v))), encodeCbor(v));
    assert.throws(() => parseCborNotation("'text'"), { code: 'WK_MUX_NOTATION' });
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { FrameReader } from '../../../src/codecs/codec.js';
import {
  CborDecoder,
  CborError,
  ClientReactor,
  MuxFrameCodec,
  ServerReactor,
  ZlibInflater,
  createStreamDecoder,
  createStreamEncoder,
  decodeCbor,
  encodeCbor,
  encodeFrame,
  formatFrameNotation,
  frameFromNotation,
  parseFrame,
  parseFrameNotation,
  type CborValue,
  type MuxFrame,
} from '../../../src/protocols/mux-frames/index.js';
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
    const enc = createStreamEncoder('zlib');
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

describe('reactors, wirekit to wirekit', () => {
  function pump(frames: Uint8Array[], to: { onFrame(f: MuxFrame): any }): any[] {
    return frames.map((b) => to.onFrame(parseFrame(b)));
  }

  it('interleaved streamed responses, progress and text output, zlib', () => {
    const client = new ClientReactor({ hasMultipleSend: true, contentEncodings: ['zlib', 'identity'] });
    const a = client.callCommand('a').request;
    const b = client.callCommand('b', { n: 1 }, { data: te.encode('payload') }).request;
    const server = new ServerReactor();
    const runs = pump((client.flushCommands() as { frames: Uint8Array[] }).frames, server).filter((x) => x.action === 'runCommand');
    assert.deepEqual(runs.map((r) => [r.requestId, r.command, r.data && Buffer.from(r.data).toString()]), [
      [a.requestId, 'a', null],
      [b.requestId, 'b', 'payload'],
    ]);
    const s = server.makeOutputStream();
    const wa = server.startResponse(s, a.requestId);
    const wb = server.startResponse(s, b.requestId);
    const frames: Uint8Array[] = [];
    const take = (x: any): void => {
      if (x.action === 'sendFrames') frames.push(...x.frames);
    };
    take(wa.write('a1'));
    take(wb.progress('files', 1, 2, { label: 'files' }));
    take(wb.write('b1'));
    take(wa.text([{ msg: 'note %s\n', args: ['here'] }]));
    take(wb.end());
    take(wa.write('a2'));
    take(wa.end());
    const events = pump(frames, client);
    assert.ok(events.every((e) => e.action !== 'error'), JSON.stringify(events));
    const objs = (r: { requestId: number }): string[] =>
      events.filter((e) => e.action === 'responseData' && e.request.requestId === r.requestId).flatMap((e) => e.objects.map((o: Uint8Array) => Buffer.from(o).toString()));
    assert.deepEqual(objs(a), ['a1', 'a2']);
    assert.deepEqual(objs(b), ['b1']);
    assert.deepEqual(
      events.filter((e) => e.action === 'progress').map((e) => [e.topic, e.pos, e.total, e.label]),
      [['files', 1, 2, 'files']],
    );
    assert.deepEqual(events.filter((e) => e.action === 'textOutput').map((e) => e.text), ['note here\n']);
    assert.equal(client.activeRequests.length, 0);
  });

  it('client request ids are odd, skip ids in use and wrap around', () => {
    const c = new ClientReactor({ hasMultipleSend: true });
    const ids = [0, 1, 2].map(() => c.callCommand('x').request.requestId);
    assert.deepEqual(ids, [1, 3, 5]);
  });

  it('server limits: concurrent partial requests and request size', () => {
    const server = new ServerReactor({ maxReceivingRequests: 2, maxRequestSize: 10 });
    assert.equal(server.onFrame(parseFrameNotation('1 1 stream-begin command-request new|more x')).action, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('3 1 0 command-request new|more x')).action, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('5 1 0 command-request new|more x')).action, 'error');
    const s2 = new ServerReactor({ maxRequestSize: 10 });
    s2.onFrame(parseFrameNotation('1 1 stream-begin command-request new|more 12345678'));
    const r = s2.onFrame(parseFrameNotation('1 1 0 command-request continuation|more 12345678'));
    assert.equal(r.action, 'error');
    assert.equal(s2.state, 'errored');
  });
});

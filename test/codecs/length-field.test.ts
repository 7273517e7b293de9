import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameReader,
  encodeToBytes,
  FrameTooLargeError,
  LengthFieldCodec,
  MalformedFrameError,
  TruncatedFrameError,
  packetFrame,
  typedFrame,
  u32be,
  varint,
  type Codec,
} from '../../src/codecs/index.js';
import { WirekitError } from '../../src/errors.js';
import { ByteWriter } from '../../src/bytes/index.js';
import { chunkings, concat } from '../helpers/chunks.js';

function roundTrip<F>(make: () => Codec<F>, frames: fc.Arbitrary<F[]>): void {
  fc.assert(
    fc.property(
      frames.chain((fs) => {
        const c = make();
        return fc.tuple(fc.constant(fs), chunkings(concat(fs.map((f) => encodeToBytes(c, f)))));
      }),
      ([fs, chunks]) => {
        const r = new FrameReader(make());
        const got = chunks.flatMap((ch) => r.push(ch));
        const plain = (f: F): F => (f instanceof Uint8Array ? f : ({ ...(f as object), fields: { ...(f as { fields: object }).fields } } as F));
        assert.deepEqual([...got, ...r.end()], fs.map(plain));
      },
    ),
  );
}

test('property: u32be and varint round-trip for every chunking', () => {
  roundTrip(() => u32be(), fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }));
  roundTrip(() => varint(), fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }));
});

test('property: seed 001 typed frames and seed 004 packets round-trip with their header fields', () => {
  roundTrip(
    () => typedFrame(),
    fc.array(
      fc.record({ payload: fc.uint8Array({ maxLength: 50 }), fields: fc.record({ type: fc.integer({ min: 0, max: 15 }), flags: fc.integer({ min: 0, max: 15 }) }, { noNullPrototype: true }) }),
      { maxLength: 8 },
    ),
  );
  roundTrip(
    () => packetFrame(),
    fc.array(
      fc.record({ payload: fc.uint8Array({ maxLength: 50 }), fields: fc.record({ type: fc.integer({ min: 0, max: 255 }), id: fc.maxSafeNat() }, { noNullPrototype: true }) }),
      { maxLength: 8 },
    ),
  );
});

test('property: every fixed length size and byte order, with lengthIncludesHeader and offsets', () => {
  for (const lengthSize of [1, 2, 3, 4, 8] as const) {
    for (const littleEndian of [false, true]) {
      for (const lengthIncludesHeader of [false, true]) {
        const make = () =>
          new LengthFieldCodec({ lengthOffset: 1, lengthSize, littleEndian, lengthIncludesHeader, headerSize: 1 + lengthSize + 2, fields: { tag: { offset: 0, size: 1 }, id: { offset: 1 + lengthSize, size: 2, littleEndian } } });
        roundTrip(make, fc.array(fc.record({ payload: fc.uint8Array({ maxLength: 200 }), fields: fc.record({ tag: fc.integer({ min: 0, max: 255 }), id: fc.integer({ min: 0, max: 65535 }) }, { noNullPrototype: true }) }), { maxLength: 5 }));
      }
    }
  }
});

test('seed 001 header byte for byte; the 24-bit length uses 65536 for the third byte', () => {
  const c = typedFrame();
  const wire = c.encodeHeader(0x030201, { type: 2, flags: 0xa });
  assert.deepEqual(wire, new Uint8Array([0x01, 0x02, 0x03, 0x2a]));
  const r = new FrameReader(typedFrame());
  const payload = new Uint8Array(0x030201);
  const frames = r.push(concat([wire, payload]));
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.payload.length, 0x030201, 'b0 + 256*b1 + 65536*b2, not 16384');
  assert.deepEqual(frames[0]!.fields, { type: 2, flags: 0xa });
});

test('seed 004 header byte for byte: 8-byte BE length, type, 8-byte BE id', () => {
  const bytes = encodeToBytes(packetFrame(), { payload: new Uint8Array([9, 9]), fields: { type: 3, id: 258 } });
  assert.deepEqual(bytes, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 1, 2, 9, 9]));
});

test('a header claiming 2^40 bytes is refused as soon as the header is read, before buffering', () => {
  const r = new FrameReader(u32be({ maxFrameLength: 1 << 20 }));
  assert.throws(() => r.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2])), (e: unknown) => e instanceof FrameTooLargeError && e.size === 0xffffffff && /limit of 1048576/.test(e.message));
  const p = new FrameReader(packetFrame());
  const hdr = new Uint8Array(17);
  hdr[2] = 1; // 2^40
  assert.throws(() => p.push(hdr), (e: unknown) => e instanceof FrameTooLargeError && e.size === 2 ** 40);
  const huge = new Uint8Array(17).fill(0xff);
  assert.throws(() => new FrameReader(packetFrame()).push(huge), (e: unknown) => e instanceof FrameTooLargeError && e.size === 2n ** 64n - 1n);
  // The stream is unusable after a framing error: every later call raises again.
  assert.throws(() => p.push(new Uint8Array(1)), FrameTooLargeError);
});

test('64-bit ids above 2^53 - 1: a clear error, or bigints by option', () => {
  const hdr = new Uint8Array(17);
  hdr[9] = 0x00;
  hdr[10] = 0x20; // 2^53
  assert.throws(() => new FrameReader(packetFrame()).push(hdr), (e: unknown) => e instanceof MalformedFrameError && /2\^53/.test(e.message));
  const frames = new FrameReader(packetFrame({ bigintIds: true })).push(hdr);
  assert.equal(frames[0]!.fields.id, 2n ** 53n);
  const back = encodeToBytes(packetFrame({ bigintIds: true }), { payload: new Uint8Array(0), fields: { type: 0, id: 2n ** 64n - 1n } });
  assert.deepEqual(back.subarray(9), new Uint8Array(8).fill(0xff));
});

test('varint: over-long varint is malformed; truncated frame reports bytes left', () => {
  assert.throws(() => new FrameReader(varint()).push(new Uint8Array(11).fill(0x80)), MalformedFrameError);
  const r = new FrameReader(varint());
  r.push(new Uint8Array([0x05, 1, 2]));
  assert.throws(() => r.end(), (e: unknown) => e instanceof TruncatedFrameError && e.remaining === 3 && /declares 5 payload bytes, 2 arrived/.test(e.message));
});

test('a frame inside one chunk is returned without copying', () => {
  const wire = encodeToBytes(u32be(), new Uint8Array([1, 2, 3]));
  const frames = new FrameReader(u32be()).push(wire);
  assert.equal(frames[0]!.buffer, wire.buffer);
});

test('property: random bytes give frames or typed errors with bounded memory, never a hang', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      const r = new FrameReader(packetFrame({ maxFrameLength: 1024 }));
      for (const c of chunks) {
        try {
          r.push(c);
        } catch (e) {
          assert.ok(e instanceof FrameTooLargeError || e instanceof MalformedFrameError, String(e));
          return;
        }
        assert.ok(r.bufferedBytes <= 17 + 1024 + 64);
      }
    }),
  );
});

test('FrameReader: a fatal error is reported once, then every call fails with it', () => {
  const reader = new FrameReader(varint());
  const good = [3, 0x61, 0x62, 0x63];
  const frames = reader.push(new Uint8Array([...good, ...new Array<number>(11).fill(0x80)]));
  assert.equal(frames.length, 1);
  let first: unknown;
  assert.throws(
    () => reader.next(),
    (e: unknown) => {
      first = e;
      return e instanceof MalformedFrameError && e.fatal && e.code === 'WK_MALFORMED';
    },
  );
  assert.equal(reader.failure, first);
  for (const call of [() => reader.next(), () => reader.push(new Uint8Array([1, 0x61])), () => reader.end(), () => reader.feed(new Uint8Array(1))]) {
    assert.throws(call, (e: unknown) => e === first);
  }
});

test('FrameReader: a declared length over the limit is fatal; truncation at the end is final', () => {
  const reader = new FrameReader(u32be({ maxFrameLength: 4 }));
  assert.throws(
    () => reader.push(new Uint8Array([0, 0, 0, 9])),
    (e: unknown) => e instanceof FrameTooLargeError && e.fatal,
  );
  assert.throws(() => reader.next(), FrameTooLargeError);
  const r2 = new FrameReader(u32be());
  r2.push(new Uint8Array([0, 0, 0, 3, 1]));
  assert.throws(
    () => r2.end(),
    (e: unknown) => e instanceof TruncatedFrameError && e.fatal,
  );
  assert.throws(() => r2.end(), TruncatedFrameError);
  assert.throws(() => r2.next(), TruncatedFrameError);
});

test('FrameReader: an error that is not a WirekitError is fatal; a protocol WirekitError is not', () => {
  let calls = 0;
  const buggy: Codec<Uint8Array> = {
    decode(queue) {
      calls++;
      if (queue.length > 0) throw new TypeError('a bug');
      return undefined;
    },
    encode: (f) => f,
  };
  const reader = new FrameReader(buggy);
  assert.throws(() => reader.push(new Uint8Array([1])), TypeError);
  assert.ok(reader.failure instanceof TypeError);
  assert.throws(() => reader.next(), TypeError);
  assert.equal(calls, 1);
  const lenient = new FrameReader<Uint8Array>({
    decode(queue) {
      if (queue.length === 0) return undefined;
      const b = queue.read(1)!;
      if (b[0] === 0) throw new WirekitError('WK_MALFORMED', 'a consumed bad frame', { origin: 'remote' });
      return b;
    },
  });
  assert.throws(() => lenient.push(new Uint8Array([0, 5])), WirekitError);
  assert.equal(lenient.failure, undefined);
  assert.deepEqual([...lenient.next()!], [5]);
});

test('encode: header and payload go into the caller\'s writer as separate parts; a large payload is not copied', () => {
  const payload = new Uint8Array(64 * 1024).fill(3);
  const out = new ByteWriter();
  u32be({ maxFrameLength: 1 << 20 }).encode(payload, out);
  const parts = out.parts();
  assert.equal(parts.length, 2);
  assert.deepEqual([...parts[0]!], [0, 1, 0, 0]);
  assert.equal(parts[1], payload);
  // Small frames are gathered into the writer's scratch, one part for several frames.
  const codec = packetFrame();
  codec.encode({ payload: new Uint8Array([1]), fields: { type: 2, id: 3 } }, out);
  codec.encode({ payload: new Uint8Array([4]), fields: { type: 5, id: 6 } }, out);
  const small = out.parts();
  assert.equal(small.length, 1);
  assert.equal(small[0]!.length, 2 * 18);
  assert.deepEqual(encodeToBytes(codec, { payload: new Uint8Array([1]), fields: { type: 2, id: 3 } }), small[0]!.subarray(0, 18));
});

test('encode: a header that cannot be written leaves the writer as it was', () => {
  const out = new ByteWriter();
  out.u8(9);
  assert.throws(() => typedFrame().encode({ payload: new Uint8Array(1), fields: { type: 16, flags: 0 } }, out), (e: unknown) => e instanceof WirekitError && e.code === 'WK_ENCODE' && e.origin === 'local');
  assert.throws(() => u32be({ maxFrameLength: 2 }).encode(new Uint8Array(3), out), (e: unknown) => e instanceof WirekitError && e.code === 'WK_FRAME_TOO_LARGE' && e.origin === 'local');
  assert.deepEqual([...out.finish()], [9]);
});

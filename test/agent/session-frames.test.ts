import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, encodeToBytes } from '../../src/codecs/codec.js';
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../../src/codecs/errors.js';
import { sessionCodec, FrameType, encodeResize, decodeResize, encodeExit, decodeExit, type SessionFrame } from '../../src/agent/session-frames.js';
import { splitAt } from '../helpers/chunks.js';

const types = Object.values(FrameType);
const frameArb = fc.record({
  type: fc.constantFrom(...types.filter((t) => t !== FrameType.RESIZE && t !== FrameType.PING && t !== FrameType.PONG)),
  payload: fc.uint8Array({ maxLength: 300 }),
});

test('session frames: same frames for every chunking, whole, byte by byte and with trailing bytes', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const codec = sessionCodec();
      const bytes = Buffer.concat(frames.map((f) => encodeToBytes(codec, f as SessionFrame)));
      const reader = new FrameReader(sessionCodec());
      const got: SessionFrame[] = [];
      for (const c of splitAt(bytes, cuts)) got.push(...reader.push(c));
      got.push(...reader.end());
      assert.deepEqual(got.map((f) => [f.type, Buffer.from(f.payload).toString('hex')]), frames.map((f) => [f.type, Buffer.from(f.payload).toString('hex')]));
    }),
  );
  const codec = sessionCodec();
  const bytes = Buffer.concat([encodeToBytes(codec, { type: FrameType.DATA, payload: Buffer.from('ab') }), encodeToBytes(codec, { type: FrameType.EOF, payload: new Uint8Array(0) })]);
  const r = new FrameReader(sessionCodec());
  const got: SessionFrame[] = [];
  for (const b of bytes) got.push(...r.push(Uint8Array.of(b)));
  assert.deepEqual(got.map((f) => f.type), [FrameType.DATA, FrameType.EOF]);
  const r2 = new FrameReader(sessionCodec());
  assert.equal(r2.push(Buffer.concat([bytes, Buffer.from([1, 0, 0])])).length, 2);
  assert.throws(() => r2.end(), TruncatedFrameError);
});

test('session frames: terminal data with byte 0x80 never reads as a resize', () => {
  const codec = sessionCodec();
  const text = Buffer.from('Ѐ€ \x80 ü', 'utf8'); // D0 80 ... contains 0x80 bytes
  assert.ok(text.includes(0x80));
  const bytes = Buffer.concat([
    encodeToBytes(codec, { type: FrameType.DATA, payload: text }),
    encodeToBytes(codec, { type: FrameType.RESIZE, payload: encodeResize(132, 43) }),
    encodeToBytes(codec, { type: FrameType.DATA, payload: Buffer.from([0x80, 0x80]) }),
  ]);
  const got = new FrameReader(sessionCodec()).push(bytes);
  assert.deepEqual(got.map((f) => f.type), [FrameType.DATA, FrameType.RESIZE, FrameType.DATA]);
  assert.deepEqual(Buffer.from(got[0]!.payload), text);
  assert.deepEqual(decodeResize(got[1]!.payload), { cols: 132, rows: 43 });
});

test('session frames: hostile input gets typed errors, limit checked from the header', () => {
  const huge = Buffer.from([FrameType.DATA, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => new FrameReader(sessionCodec({ maxFrameLength: 1024 })).push(huge), FrameTooLargeError);
  assert.throws(() => new FrameReader(sessionCodec()).push(Buffer.from([0x7f, 0, 0, 0, 0])), MalformedFrameError);
  assert.throws(() => new FrameReader(sessionCodec()).push(Buffer.from([FrameType.RESIZE, 0, 0, 0, 1, 9])), MalformedFrameError);
  // an unknown type is consumed; the next frame decodes
  const r = new FrameReader(sessionCodec());
  assert.throws(() => r.push(Buffer.from([0x7f, 0, 0, 0, 1, 0, FrameType.EOF, 0, 0, 0, 0])), MalformedFrameError);
  assert.deepEqual(r.push(new Uint8Array(0)).map((f) => f.type), [FrameType.EOF]);
  assert.deepEqual(decodeExit(encodeExit({ code: null, signal: 'SIGKILL' })), { code: null, signal: 'SIGKILL' });
  assert.throws(() => decodeExit(Buffer.from('{"code":"x","signal":null}')), MalformedFrameError);
  assert.throws(() => decodeExit(Buffer.from('nope')), MalformedFrameError);
});

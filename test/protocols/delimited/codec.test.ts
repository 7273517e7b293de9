/**
 * The seed 002 message format as used by this protocol: property tests over chunk splits and the
 * original codec's defects (empty messages, rescans, bad messages poisoning the stream, no limit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, encodeToBytes, type Decoder, FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../../../src/codecs/index.js';
import { messageCodec } from '../../../src/protocols/delimited/index.js';
import { concat, splitAt } from '../../helpers/chunks.js';

const enc = new TextEncoder();

/** Decodes chunks, collecting messages and error codes in order. */
function decodeAll<T>(codec: Decoder<unknown>, chunks: Uint8Array[]): Array<T | { error: string }> {
  const reader = new FrameReader(codec as never);
  const out: Array<T | { error: string }> = [];
  const drain = (fn: () => unknown[]) => {
    for (;;) {
      try {
        for (const m of fn()) out.push(m as T);
        return;
      } catch (err) {
        out.push({ error: (err as { code: string }).code });
        fn = () => collectNext(reader);
      }
    }
  };
  for (const c of chunks) drain(() => reader.push(c));
  drain(() => reader.end());
  return out;
}

function collectNext(reader: FrameReader<unknown>): unknown[] {
  const out: unknown[] = [];
  for (;;) {
    const m = reader.next();
    if (m === undefined) return out;
    out.push(m);
  }
}

test('text messages (including empty and non-ASCII) round-trip under every chunk split', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (texts, cuts) => {
      const codec = messageCodec();
      const wire = concat(texts.map((t) => encodeToBytes(codec, t)));
      assert.deepEqual(decodeAll<string>(messageCodec(), splitAt(wire, cuts)), texts);
    }),
    { numRuns: 300 },
  );
});

test('binary messages round-trip under every chunk split', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 12 }), (msgs, cuts) => {
      const codec = messageCodec({ binary: true });
      const wire = concat(msgs.map((m) => encodeToBytes(codec, m)));
      const got = decodeAll<Uint8Array>(messageCodec({ binary: true }), splitAt(wire, cuts));
      assert.deepEqual(got.map((m) => Array.from(m as Uint8Array)), msgs.map((m) => Array.from(m)));
    }),
    { numRuns: 300 },
  );
});

test('one byte at a time, whole, and with trailing bytes', () => {
  const codec = messageCodec();
  const wire = concat([encodeToBytes(codec, 'héllo wörld ✓ 🎉'), encodeToBytes(codec, ''), encodeToBytes(codec, 'QUIT')]);
  const expected = ['héllo wörld ✓ 🎉', '', 'QUIT'];
  assert.deepEqual(decodeAll(messageCodec(), [wire]), expected);
  assert.deepEqual(decodeAll(messageCodec(), Array.from(wire, (b) => new Uint8Array([b]))), expected);
  const r = new FrameReader(messageCodec());
  assert.deepEqual(r.push(concat([wire, enc.encode('%UVVJ')])), expected);
  assert.equal(r.bufferedBytes, 5, 'the partial next message stays buffered');
  assert.throws(() => r.end(), TruncatedFrameError);
});

test('an empty message is a message (the original drops %$ and merges it with the next one)', () => {
  assert.deepEqual(decodeAll(messageCodec(), [enc.encode('%$%QQ==$%$')]), ['', 'A', '']);
});

test('invalid base64 or UTF-8 in one message is a typed error; the next message still decodes', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 6 }), (cuts) => {
      // "%!!!!$": bad base64; "%/w==$": 0xff, not UTF-8; then good messages.
      const wire = enc.encode('%SGk=$%!!!!$%/w==$%SGk$%T0s=$');
      const got = decodeAll(messageCodec(), splitAt(wire, cuts));
      assert.deepEqual(got, ['Hi', { error: 'WK_MALFORMED' }, { error: 'WK_MALFORMED' }, { error: 'WK_MALFORMED' }, 'OK']);
    }),
  );
  const r = new FrameReader(messageCodec());
  assert.throws(() => r.push(enc.encode('%/w==$')), (e: unknown) => e instanceof MalformedFrameError && /UTF-8/.test(e.message));
  // Binary mode accepts any bytes.
  assert.deepEqual(decodeAll(messageCodec({ binary: true }), [enc.encode('%/w==$')]).map((m) => Array.from(m as Uint8Array)), [[0xff]]);
});

test('the maximum message size is enforced while scanning, before the end marker arrives', () => {
  const r = new FrameReader(messageCodec({ maxMessageLength: 16 }));
  r.push(enc.encode('%' + 'A'.repeat(12)));
  assert.throws(() => r.push(enc.encode('A'.repeat(12))), (e: unknown) => e instanceof FrameTooLargeError && e.limit === 16);
  assert.ok(r.bufferedBytes <= 25 - 17, 'the scanned part of the oversized body is not kept');
  // The rest of the oversized message is discarded; the stream continues with the next one.
  assert.deepEqual(r.push(enc.encode('A'.repeat(1000) + '$%T0s=$')), ['OK']);
  // Exactly at the limit is fine.
  const ok = new FrameReader(messageCodec({ maxMessageLength: 16 }));
  assert.deepEqual(ok.push(encodeToBytes(messageCodec(), '123456789012')), ['123456789012']);
});

test('an oversized message does not take the messages behind it down with it (same read)', () => {
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 6 }), fc.integer({ min: 1, max: 64 }), (cuts, max) => {
      const codec = messageCodec();
      const wire = concat([encodeToBytes(codec, 'a'.repeat(3 * max)), encodeToBytes(codec, ''), encodeToBytes(codec, 'after'.repeat(20).slice(0, Math.floor(max / 4) * 3))]);
      const got = decodeAll(messageCodec({ maxMessageLength: max }), splitAt(wire, cuts));
      assert.deepEqual(got, [{ error: 'WK_FRAME_TOO_LARGE' }, '', 'after'.repeat(20).slice(0, Math.floor(max / 4) * 3)]);
    }),
  );
});

test('junk between messages is skipped as the seed does', () => {
  assert.deepEqual(decodeAll(messageCodec(), [enc.encode('garbage%SGk=$\n\n%T0s=$')]), ['Hi', 'OK']);
});

test('a 4 MiB message in 256-byte reads is found in linear work (no rescans)', () => {
  // Counted, not timed: each byte is pushed once and the decoder is asked once per read.
  const text = 'x'.repeat(3 * 1024 * 1024);
  const wire = encodeToBytes(messageCodec(), text);
  const r = new FrameReader(messageCodec());
  let got: string[] = [];
  for (let i = 0; i < wire.length; i += 256) got = got.concat(r.push(wire.subarray(i, i + 256)));
  assert.equal(got.length, 1);
  assert.equal(got[0]!.length, text.length);
});

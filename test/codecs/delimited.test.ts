import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DelimitedCodec, FrameReader, encodeToBytes, FrameTooLargeError, MalformedFrameError, TruncatedFrameError, percentDollar } from '../../src/codecs/index.js';
import { chunkings, concat, dec, enc } from '../helpers/chunks.js';

test('seed 002 format byte for byte: %, base64 of UTF-8, $', () => {
  assert.equal(dec(encodeToBytes(percentDollar(), 'READY')), '%UkVBRFk=$');
  assert.equal(dec(encodeToBytes(percentDollar(), 'héllo ✓')), '%aMOpbGxvIOKckw==$');
  assert.equal(dec(encodeToBytes(percentDollar(), '')), '%$');
});

test('an empty message round-trips (the original drops %$)', () => {
  const r = new FrameReader(percentDollar());
  assert.deepEqual(r.push(enc('%$%$%T0s=$')), ['', '', 'OK']);
});

test('property: messages round-trip for every chunking, text and binary', () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ unit: 'binary' }), { maxLength: 8 }).chain((msgs) => {
        const c = percentDollar();
        return fc.tuple(fc.constant(msgs), chunkings(concat(msgs.map((m) => encodeToBytes(c, m)))));
      }),
      ([msgs, chunks]) => {
        const r = new FrameReader(percentDollar());
        const got = chunks.flatMap((c) => r.push(c));
        assert.deepEqual([...got, ...r.end()], msgs);
      },
    ),
  );
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }).chain((msgs) => {
        const c = percentDollar({ binary: true });
        return fc.tuple(fc.constant(msgs), chunkings(concat(msgs.map((m) => encodeToBytes(c, m)))));
      }),
      ([msgs, chunks]) => {
        const r = new FrameReader(percentDollar({ binary: true }));
        const got = chunks.flatMap((c) => r.push(c));
        assert.deepEqual([...got, ...r.end()], msgs);
      },
    ),
  );
});

test('bad base64 or bad UTF-8: typed error for that message, the next one decodes', () => {
  const r = new FrameReader(percentDollar());
  const frames = r.push(enc('%T0s=$%not*base64$%//79$%T0s=$'));
  assert.deepEqual(frames, ['OK']);
  assert.throws(() => r.next(), (e: unknown) => e instanceof MalformedFrameError && /base64/.test(e.message));
  assert.throws(() => r.next(), (e: unknown) => e instanceof MalformedFrameError && /UTF-8/.test(e.message));
  assert.equal(r.next(), 'OK');
});

test('junk before a start marker: skipped by default, an error naming the bytes by option', () => {
  assert.deepEqual(new FrameReader(percentDollar()).push(enc('junk%T0s=$')), ['OK']);
  const strict = new FrameReader(percentDollar({ junk: 'error' }));
  assert.throws(() => strict.push(enc('junk%T0s=$')), (e: unknown) => e instanceof MalformedFrameError && /"junk"/.test(e.message));
  assert.equal(strict.next(), 'OK');
});

test('maximum body length enforced while scanning; a start marker without an end is bounded', () => {
  const r = new FrameReader(percentDollar({ maxBodyLength: 8 }));
  assert.deepEqual(r.push(enc('%QUJD$%QUJDREVGR0hJ')), ['ABC']);
  assert.throws(() => r.push(enc('SktM')), (e: unknown) => e instanceof FrameTooLargeError && e.limit === 8);
  for (let i = 0; i < 100; i++) assert.deepEqual(r.push(enc('AAAAAAAA')), []);
  assert.ok(r.bufferedBytes < 16);
  assert.deepEqual(r.push(enc('$%T0s=$')), ['OK']);
});

test('end of input inside a message: TruncatedFrameError', () => {
  const r = new FrameReader(percentDollar());
  r.push(enc('%T0s='));
  assert.throws(() => r.end(), (e: unknown) => e instanceof TruncatedFrameError && e.remaining === 5);
});

test('multi-byte markers, equal start and end markers', () => {
  const body = { decode: (b: Uint8Array) => dec(b), encode: (s: string) => enc(s) };
  const c = new DelimitedCodec({ start: '<<', end: '>>', body });
  const r = new FrameReader(c);
  assert.deepEqual(r.push(enc('<<a>b>><<')), ['a>b']);
  assert.deepEqual(r.push(enc('>>')), ['']);
  const same = new FrameReader(new DelimitedCodec({ start: '~', end: '~', body }));
  assert.deepEqual(same.push(enc('~ab~~cd~')), ['ab', 'cd']);
});

test('10 MiB message in 256-byte chunks decodes (linear scan)', () => {
  const payload = new Uint8Array(10 * 1024 * 1024);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
  const c = percentDollar({ binary: true, maxBodyLength: 16 * 1024 * 1024 });
  const wire = encodeToBytes(c, payload);
  const r = new FrameReader(c);
  const got: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i += 256) got.push(...r.push(wire.subarray(i, i + 256)));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], payload);
});

test('messages after an oversize message in the same chunk are kept', () => {
  const r = new FrameReader(percentDollar({ maxBodyLength: 4 }));
  r.feed(enc('%QUJDREVGR0hJ$%T0s=$'));
  assert.throws(() => r.next(), FrameTooLargeError);
  assert.equal(r.next(), 'OK');
});

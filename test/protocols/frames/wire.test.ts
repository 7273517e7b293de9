import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader } from '../../../src/codecs/index.js';
import {
  ClientReactor,
  ServerReactor,
  commandFrames,
  commandFramesFrom,
  encodeFrame,
  encodeFrames,
  escapePayload,
  formatFrameNotation,
  frameCodec,
  parseFrame,
  parseFrameNotation,
  parseHeader,
  unescapePayload,
  type Frame,
} from '../../../src/protocols/frames/index.js';
import { splitAt } from '../../helpers/chunks.js';

const te = new TextEncoder();
const b = (s: string) => te.encode(s);
const hex = (u: Uint8Array) => Buffer.from(u).toString('hex');

test('header layout: 24-bit LE length, type high nibble, flags low nibble', () => {
  const f = encodeFrame({ type: 1, flags: 6, payload: b('mycommand') });
  assert.equal(hex(f.subarray(0, 4)), '09000016');
  assert.deepEqual(f.subarray(4), b('mycommand'));
});

test('length decoding is correct for every 24-bit value (the seed multiplies byte 2 by 16384)', () => {
  for (const n of [0, 1, 255, 256, 65535, 65536, 65537, 0x123456, 0xffffff]) {
    const hdr = new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, 0x42]);
    assert.deepEqual(parseHeader(hdr), { type: 4, flags: 2, length: n });
  }
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffff }), fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), (n, t, fl) => {
      const hdr = new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (t << 4) | fl]);
      assert.deepEqual(parseHeader(hdr), { type: t, flags: fl, length: n });
    }),
  );
  // The codec agrees, on a frame whose length has a non-zero third byte.
  const payload = new Uint8Array(70000).fill(7);
  const reader = new FrameReader(frameCodec());
  const [got] = reader.push(encodeFrame({ type: 3, flags: 2, payload }));
  assert.equal(got!.payload.length, 70000);
});

test('payloads over 2^24 - 1 bytes and out-of-range nibbles are refused', () => {
  assert.throws(() => encodeFrame({ type: 1, flags: 0, payload: new Uint8Array(0x1000000) }), { code: 'WK_FRAME_ENCODING' });
  assert.throws(() => encodeFrame({ type: 16, flags: 0, payload: new Uint8Array(0) }), { code: 'WK_FRAME_ENCODING' });
  assert.throws(() => encodeFrame({ type: 1, flags: -1, payload: new Uint8Array(0) }), { code: 'WK_FRAME_ENCODING' });
});

test('decoder size limit is checked from the header', () => {
  const reader = new FrameReader(frameCodec({ maxFrameLength: 10 }));
  assert.throws(() => reader.push(new Uint8Array([11, 0, 0, 0x12])), { code: 'WK_FRAME_TOO_LARGE' });
});

test('command frames are byte-identical to the seed', () => {
  // Hand-derived from createcommandframes: name frame, sorted args, data with exact-multiple rule.
  const frames = [...commandFrames('command', { foo: 'bar', baz: 'quux' }, b('data'))].map(encodeFrame);
  assert.deepEqual(frames.map(hex), [
    '07000016' + hex(b('command')),
    '0b000020' + '03000400' + hex(b('bazquux')),
    '0a000022' + '03000300' + hex(b('foobar')),
    '04000032' + hex(b('data')),
  ]);
  assert.deepEqual([...commandFrames('x')].map(formatFrameNotation), ['command-name eos x']);
  assert.deepEqual([...commandFrames('x', {}, new Uint8Array(0))].map(formatFrameNotation), ['command-name have-data x', 'command-data eos ']);
  const exact = [...commandFrames('x', undefined, new Uint8Array(32768))];
  assert.deepEqual(exact.map((f) => [f.flags, f.payload.length]), [[4, 1], [1, 32768], [2, 0]]);
  // Sorted as Python sorts bytes: by byte value, not by locale.
  assert.deepEqual([...commandFrames('x', { b: '', B: '', a: '', é: '' })].slice(1).map((f) => escapePayload(f.payload.subarray(4))), ['B', 'a', 'b', '\\xc3\\xa9']);
});

test('notation: names or numbers, flags joined with |, escapes', () => {
  assert.deepEqual(parseFrameNotation('1 2|4 cmd'), { type: 1, flags: 6, payload: b('cmd') });
  assert.deepEqual(parseFrameNotation('command-name have-args|4 a b c'), { type: 1, flags: 6, payload: b('a b c') });
  assert.deepEqual(parseFrameNotation('bytes-response eos'), { type: 4, flags: 2, payload: new Uint8Array(0) });
  assert.deepEqual(unescapePayload('\\x00\\n\\t\\r\\\\\\0\\101é'), new Uint8Array([0, 10, 9, 13, 0x5c, 0, 0x41, 0xc3, 0xa9]));
  assert.throws(() => parseFrameNotation('nonsense 0 x'), { code: 'WK_FRAME_ENCODING' });
  assert.throws(() => parseFrameNotation('command-name bogus x'), { code: 'WK_FRAME_ENCODING' });
  // As Python's codecs.escape_decode (Mercurial's unescapestr): \a \b \f \v, an unknown escape keeps
  // its backslash, a backslash before a line feed vanishes, octal wraps at a byte, a trailing backslash
  // is an error. Expected bytes are what escape_decode returns for the same text.
  assert.deepEqual(unescapePayload('\\a\\b\\f\\v\\q\\\nx\\777'), new Uint8Array([7, 8, 0x0c, 0x0b, 0x5c, 0x71, 0x78, 0xff]));
  assert.deepEqual(unescapePayload('\\\\q \\é \\\\'), new Uint8Array([0x5c, 0x71, 0x20, 0x5c, 0xc3, 0xa9, 0x20, 0x5c]));
  assert.deepEqual(parseFrameNotation('command-name eos \\q').payload, b('\\q'));
  assert.throws(() => parseFrameNotation('command-name eos x\\'), { code: 'WK_FRAME_ENCODING' });
  assert.throws(() => parseFrameNotation('command-name eos \\x4'), { code: 'WK_FRAME_ENCODING' });
  assert.equal(formatFrameNotation(parseFrameNotation('error-response protocol|application bad\\x00')), 'error-response protocol|application bad\\x00');
  assert.equal(formatFrameNotation({ type: 9, flags: 3, payload: b('\\') }), '9 3 \\\\');
  assert.equal(formatFrameNotation({ type: 1, flags: 0, payload: b('') }), 'command-name 0 ');
  assert.equal(formatFrameNotation({ type: 1, flags: 9, payload: b('') }), 'command-name eos|8 ');
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.uint8Array({ maxLength: 40 }), (type, flags, payload) => {
      assert.deepEqual(parseFrameNotation(formatFrameNotation({ type, flags, payload })), { type, flags, payload });
    }),
  );
});

const argsArb = fc.dictionary(fc.string({ maxLength: 6 }), fc.uint8Array({ maxLength: 60 }), { maxKeys: 4 });
const requestArb = fc.record({ name: fc.string({ minLength: 1, maxLength: 10 }), args: argsArb, data: fc.option(fc.uint8Array({ maxLength: 100 }), { nil: undefined }) });

test('property: any chunk split of a request stream gives the same commands', () => {
  fc.assert(
    fc.property(fc.array(requestArb, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 34, max: 60 }), (reqs, cuts, max) => {
      const frames: Frame[] = [];
      for (const r of reqs) frames.push(...commandFrames(r.name, r.args, r.data, { maxFrameSize: max }));
      const bytes = encodeFrames(frames);
      const reader = new FrameReader(frameCodec());
      const reactor = new ServerReactor();
      const commands: { name: string; args: Record<string, Uint8Array>; data: Uint8Array | null }[] = [];
      for (const chunk of splitAt(bytes, cuts)) {
        for (const f of reader.push(chunk)) {
          const a = reactor.onFrame(f);
          assert.notEqual(a.type, 'error');
          if (a.type === 'runCommand') commands.push({ name: a.command.name, args: { ...a.command.args }, data: a.command.data });
        }
      }
      reader.end();
      assert.deepEqual(
        commands,
        reqs.map((r) => ({ name: r.name, args: { ...r.args }, data: r.data ?? null })),
      );
    }),
    { numRuns: 200 },
  );
});

test('property: streamed data gives the same frames as whole data, for any chunking', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), fc.integer({ min: 5, max: 64 }), async (data, cuts, max) => {
      const expected = [...commandFrames('c', { a: 'b' }, data, { maxFrameSize: max })].map(encodeFrame);
      const got: Uint8Array[] = [];
      for await (const f of commandFramesFrom('c', { a: 'b' }, splitAt(data, cuts), { maxFrameSize: max })) got.push(encodeFrame(f));
      assert.deepEqual(got, expected);
    }),
    { numRuns: 200 },
  );
});

test('property: any chunk split of a response stream gives the same bodies', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 90 }), fc.string({ maxLength: 20 })), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 20 }), (bodies, cuts) => {
      const server = new ServerReactor({ maxFrameSize: 16 });
      const client = new ClientReactor();
      const out: Frame[] = [];
      const ids: number[] = [];
      for (const body of bodies) {
        ids.push(client.beginRequest());
        const a = typeof body === 'string' ? server.onApplicationError(body) : server.onBytesResponseReady(body);
        if (a.type === 'sendFrames') out.push(...a.frames);
      }
      const reader = new FrameReader(frameCodec());
      const got = new Map<number, Uint8Array[] | string>();
      for (const chunk of splitAt(encodeFrames(out), cuts)) {
        for (const f of reader.push(chunk)) {
          const ev = client.onFrame(f);
          if (ev.type === 'responseData') {
            const list = (got.get(ev.id) as Uint8Array[] | undefined) ?? [];
            list.push(ev.chunk);
            got.set(ev.id, list);
          } else if (ev.type === 'error') {
            assert.equal(ev.error.kind, 'application');
            got.set(ev.id, ev.error.serverMessage);
          } else assert.fail(ev.error.message);
        }
      }
      assert.equal(client.pending.length, 0);
      bodies.forEach((body, i) => {
        const g = got.get(ids[i]!);
        if (typeof body === 'string') assert.equal(g, body);
        else assert.deepEqual(Buffer.concat(g as Uint8Array[]), Buffer.from(body));
      });
    }),
    { numRuns: 200 },
  );
});

test('client reactor: protocol errors and error kinds', () => {
  const c = new ClientReactor();
  assert.equal(c.onFrame(parseFrameNotation('bytes-response eos x')).type, 'protocolError');
  const c2 = new ClientReactor();
  const id = c2.beginRequest();
  const ev = c2.onFrame(parseFrameNotation('error-response protocol bad frame'));
  assert.equal(ev.type, 'error');
  if (ev.type === 'error') {
    assert.equal(ev.id, id);
    assert.equal(ev.error.kind, 'protocol');
    assert.equal(ev.error.code, 'WK_COMMAND_REJECTED');
    assert.equal(ev.error.serverMessage, 'bad frame');
  }
  c2.beginRequest();
  const bad = c2.onFrame(parseFrameNotation('command-name eos x'));
  assert.equal(bad.type, 'protocolError');
  if (bad.type === 'protocolError') assert.deepEqual(bad.pending, [2]);
  assert.throws(() => c2.beginRequest(), { code: 'WK_FRAME_PROTOCOL' });
  const c3 = new ClientReactor();
  c3.beginRequest();
  assert.equal(c3.onFrame(parseFrameNotation('bytes-response 0 x')).type, 'protocolError');
  const c4 = new ClientReactor();
  c4.beginRequest();
  c4.beginRequest();
  assert.deepEqual(c4.onInputEof(), [1, 2]);
});

test('decode whole, byte by byte, and with trailing bytes', () => {
  const bytes = encodeFrames([...commandFrames('cmd', { k: 'v' }, b('data'))]);
  const whole = new FrameReader(frameCodec()).push(bytes);
  const r = new FrameReader(frameCodec());
  const bytewise: Frame[] = [];
  for (const x of bytes) bytewise.push(...r.push(new Uint8Array([x])));
  assert.deepEqual(bytewise, whole);
  const t = new FrameReader(frameCodec());
  assert.deepEqual(t.push(Buffer.concat([bytes, new Uint8Array([1, 0])])).length, whole.length);
  assert.throws(() => t.end(), { code: 'WK_TRUNCATED' });
});

test('parseFrame reads one serialized frame (bytes); the notation has parseFrameNotation', () => {
  const f = parseFrameNotation('command-argument eoa \\x03\\x00\\x03\\x00keyval');
  const bytes = encodeFrame(f);
  assert.deepEqual(parseFrame(bytes), f);
  assert.throws(() => parseFrame(bytes.subarray(0, 3)), { code: 'WK_TRUNCATED' });
  assert.throws(() => parseFrame(bytes.subarray(0, bytes.length - 1)), { code: 'WK_TRUNCATED' });
  assert.throws(() => parseFrame(new Uint8Array([...bytes, 0])), { code: 'WK_MALFORMED' });
});

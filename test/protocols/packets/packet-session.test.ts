import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader } from '../../../src/codecs/codec.js';
import { concatBytes } from '../../../src/bytes/text.js';
import { splitAt } from '../../helpers/chunks.js';
import {
  encodePacketHeader,
  PacketErrorStateError,
  PacketProtocolError,
  PacketSession,
  PacketTypes,
  PacketUsageError,
  pickleSerializer,
  rawSerializer,
  msgpackSerializer,
  ARMCHAIR_FILE_END_MARKER,
  UnknownPacketIdError,
  UnknownPacketTypeError,
  UnsafeFileNameError,
  MarkerScanner,
  type PacketEvent,
} from '../../../src/protocols/packets/index.js';

const enc = new TextEncoder();

/** Decodes `chunks`; protocol errors are recorded in place as { error: code }. */
function decodeAll(session: PacketSession, chunks: Uint8Array[]): unknown[] {
  const reader = new FrameReader(session.decoder);
  const out: unknown[] = [];
  const drain = () => {
    for (;;) {
      let ev: PacketEvent | undefined;
      try {
        ev = reader.next();
      } catch (err) {
        out.push({ error: (err as { code: string }).code });
        if (err instanceof PacketProtocolError && !session.broken) continue;
        return false;
      }
      if (ev === undefined) return true;
      out.push(ev.kind === 'file-data' ? { kind: 'file-data', data: Array.from(ev.data) } : ev);
    }
  };
  for (const c of chunks) {
    reader.feed(c);
    if (!drain()) return out;
  }
  reader.end();
  return out;
}

/** Merges consecutive file-data events (their boundaries depend on the chunking). */
function mergeData(events: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const e of events) {
    const last = out[out.length - 1] as { kind?: string; data?: number[] } | undefined;
    const cur = e as { kind?: string; data?: number[] };
    if (cur.kind === 'file-data' && last?.kind === 'file-data') last.data = [...last.data!, ...cur.data!];
    else out.push(cur.kind === 'file-data' ? { kind: 'file-data', data: [...cur.data!] } : e);
  }
  return out;
}

test('header is byte for byte as in Armchair: 8-byte BE length, type byte, 8-byte BE id', () => {
  const s = new PacketSession();
  const out = s.encode('init', ['a']);
  assert.equal(out.id, 1);
  const body = enc.encode('["a"]');
  assert.deepEqual(Array.from(out.bytes[0]!), [0, 0, 0, 0, 0, 0, 0, body.length, 0x00, 0, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(out.bytes[1], body);
  const empty = s.encode('home');
  assert.equal(empty.bytes.length, 1);
  assert.deepEqual(Array.from(empty.bytes[0]!), [0, 0, 0, 0, 0, 0, 0, 0, 0x0d, 0, 0, 0, 0, 0, 0, 0, 2]);
});

test('ids: increase before every non-urgent packet (ready included); urgent packets carry the current id', () => {
  const s = new PacketSession({ window: 10 });
  assert.equal(s.encode('init').id, 1);
  assert.equal(s.encode('loc_req').id, 1); // urgent
  assert.equal(s.encode('error', ['boom']).id, 1); // urgent
  assert.equal(s.encodeAck(7).id, 2); // ready
  assert.equal(s.encode('make').id, 3);
  assert.deepEqual(s.inFlight, [1, 3]); // neither urgent nor ready packets occupy the window
});

test('window: exactly N packets in flight, then canSend is false until a ready for one of them', () => {
  for (const n of [1, 2, 4, 7]) {
    const a = new PacketSession({ window: n });
    const b = new PacketSession({ window: n });
    const wire: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      assert.equal(a.canSend('make'), true);
      wire.push(...a.encode('make', i).bytes);
    }
    assert.equal(a.canSend('make'), false);
    assert.throws(() => a.encode('make'), (e: unknown) => e instanceof PacketUsageError && e.code === 'WK_PACKET_WINDOW_FULL');
    assert.equal(a.canSend('save'), true); // urgent
    assert.equal(a.canSend('ready'), true);
    const got = decodeAll(b, wire) as { packet: { id: number } }[];
    assert.equal(got.length, n);
    // b acknowledges the second one (or the only one).
    const ackId = got[Math.min(1, n - 1)]!.packet.id;
    const ev = decodeAll(a, b.encodeAck(ackId).bytes) as PacketEvent[];
    assert.deepEqual(ev.map((e) => e.kind), ['ack']);
    assert.equal(a.inFlight.length, n - 1);
    assert.equal(a.canSend('make'), true);
  }
});

test('a ready for an unknown id and an unknown type byte are protocol errors; decoding continues', () => {
  const a = new PacketSession();
  const b = new PacketSession();
  const bad = concatBytes([
    ...b.encodeAck(99).bytes,
    encodePacketHeader(3, 0xee, 5),
    enc.encode('[1]'),
    ...b.encode('mix', { rpm: 3 }).bytes,
  ]);
  const events = decodeAll(a, [bad]);
  assert.deepEqual(events[0], { error: 'WK_PACKET_UNKNOWN_ID' });
  assert.deepEqual(events[1], { error: 'WK_PACKET_UNKNOWN_TYPE' });
  assert.equal((events[2] as { packet: { payload: object } }).packet.payload.constructor, Object);
  assert.deepEqual((events[2] as { packet: { type: string; payload: unknown } }).packet, { type: 'mix', typeByte: 0x0f, id: 2, payload: { rpm: 3 }, urgent: false });
  const err = new UnknownPacketTypeError(0xee, 5);
  assert.match(err.message, /0xee/);
  assert.equal(new UnknownPacketIdError(99).origin, 'remote');
});

test('error packet: error state with payload; sends fail until resetError, which clears the window', () => {
  const a = new PacketSession();
  const b = new PacketSession();
  a.encode('init');
  a.encode('make');
  const ev = decodeAll(a, b.encode('error', ['disk full', 28]).bytes) as PacketEvent[];
  assert.equal(ev[0]!.kind, 'error');
  assert.equal(a.inError, true);
  assert.deepEqual(a.errorPayload, ['disk full', 28]);
  assert.throws(() => a.encode('make'), (e: unknown) => e instanceof PacketErrorStateError && (e.payload as unknown[])[0] === 'disk full');
  a.resetError();
  assert.equal(a.inError, false);
  assert.deepEqual(a.inFlight, []);
  // A late ready for a cleared id is ignored, not an error.
  const late = decodeAll(a, b.encodeAck(2).bytes) as PacketEvent[];
  assert.equal(late[0]!.kind, 'ack');
  assert.equal(a.encode('make').id, 3);
});

test('registry: application types, urgent configuration, clashes refused', () => {
  const types = new PacketTypes().register('telemetry', 0x40, { urgent: true });
  const s = new PacketSession({ types });
  assert.equal(s.encode('telemetry', 1).id, 0);
  types.setUrgent('save', false);
  assert.equal(s.encode('save').id, 1);
  assert.throws(() => types.register('dup', 0x03), PacketUsageError);
  assert.throws(() => types.register('init', 0x41), PacketUsageError);
  assert.throws(() => types.setUrgent('ready', true), PacketUsageError);
  assert.throws(() => s.encode('nope'), PacketUsageError);
  assert.throws(() => new PacketTypes({ types: { init: 0 } }), PacketUsageError);
});

function transcript(session: PacketSession, fileMode: 'chunked' | 'compat'): Uint8Array {
  const parts: Uint8Array[] = [];
  parts.push(...session.encode('init', ['robot', 1]).bytes);
  parts.push(...session.encode('loc_req').bytes);
  parts.push(...session.encodeAck(4).bytes);
  parts.push(...session.encodeFileNames(['a.bin', 'empty', 'c']).bytes);
  const files = [new Uint8Array([1, 2, 3, 0, 255]), new Uint8Array(0), enc.encode('AFKJ almost a marker AFKJldkjva')];
  for (const f of files) {
    if (fileMode === 'chunked') {
      if (f.length > 0) parts.push(session.fileChunkHeader(2), f.subarray(0, 2), session.fileChunkHeader(f.length - 2), f.subarray(2));
      parts.push(session.fileChunkHeader(0));
    } else {
      parts.push(f, ARMCHAIR_FILE_END_MARKER);
    }
  }
  parts.push(...session.encode('stopped', { t: 1.5 }).bytes);
  return concatBytes(parts);
}

for (const fileMode of ['chunked', 'compat'] as const) {
  for (const [name, make] of [
    ['json', () => undefined],
    ['pickle', () => pickleSerializer()],
    ['msgpack', () => msgpackSerializer()],
  ] as const) {
    test(`property: same events for every chunk split (${fileMode} files, ${name})`, () => {
      const opts = { fileMode, serializer: make() };
      const sender = new PacketSession({ ...opts, window: 10 });
      const bytes = transcript(sender, fileMode);
      const expected = mergeData(decodeAll(primed(opts), [bytes]));
      assert.deepEqual(
        (expected as { kind: string }[]).map((e) => e.kind),
        ['packet', 'packet', 'ack', 'files', 'file-start', 'file-data', 'file-end', 'file-start', 'file-end', 'file-start', 'file-data', 'file-end', 'files-end', 'packet'],
      );
      fc.assert(
        fc.property(fc.array(fc.nat(), { maxLength: 40 }), (cuts) => {
          assert.deepEqual(mergeData(decodeAll(primed(opts), splitAt(bytes, cuts))), expected);
        }),
        { numRuns: 200 },
      );
      // Byte by byte.
      assert.deepEqual(mergeData(decodeAll(primed(opts), Array.from(bytes, (b) => Uint8Array.of(b)))), expected);
    });
  }
}

/** A receiver with packet 4 in flight, so the transcript's ready is valid. */
function primed(opts: ConstructorParameters<typeof PacketSession>[0]): PacketSession {
  const s = new PacketSession({ ...opts, window: 10 });
  for (let i = 0; i < 4; i++) s.encode('make');
  return s;
}

test('file names: path separators, . and .. are refused and the files skipped; the stream continues', () => {
  for (const bad of ['../etc/passwd', 'a/b', 'a\\b', '..', '.', '', 'x\0y']) {
    const payload = enc.encode(JSON.stringify([['ok', bad]]));
    const bytes = concatBytes([
      encodePacketHeader(payload.length, 0x06, 1),
      payload,
      Uint8Array.of(0, 0, 0, 2, 9, 9, 0, 0, 0, 0),
      Uint8Array.of(0, 0, 0, 1, 7, 0, 0, 0, 0),
      ...new PacketSession().encode('home').bytes,
    ]);
    const events = decodeAll(new PacketSession(), [bytes]) as { kind?: string; error?: string }[];
    assert.deepEqual(events[0], { error: 'WK_PACKET_FILE_NAME' }, bad);
    assert.deepEqual(events.slice(1).map((e) => e.kind), ['packet']);
  }
  assert.throws(() => new PacketSession().encodeFileNames(['a/b']), PacketUsageError);
  const e = new UnsafeFileNameError('..', 'x');
  assert.equal(e.code, 'WK_PACKET_FILE_NAME');
});

test('compat mode: a file containing the marker splits there (why the sender refuses it); chunked mode carries any bytes', () => {
  const content = concatBytes([enc.encode('before'), ARMCHAIR_FILE_END_MARKER, enc.encode('after')]);
  const s = new PacketSession({ fileMode: 'chunked' });
  const bytes = concatBytes([...s.encodeFileNames(['f']).bytes, s.fileChunkHeader(content.length), content, s.fileChunkHeader(0)]);
  const ev = mergeData(decodeAll(new PacketSession(), [bytes])) as { kind: string; data?: number[] }[];
  assert.deepEqual(ev.find((e) => e.kind === 'file-data')!.data, Array.from(content));
  const scanner = new MarkerScanner(ARMCHAIR_FILE_END_MARKER);
  const pieces = splitAt(content, [3, 10, 11, 30]);
  assert.equal(pieces.some((p) => scanner.push(p)), true);
  const clean = new MarkerScanner(ARMCHAIR_FILE_END_MARKER);
  assert.equal(clean.push(ARMCHAIR_FILE_END_MARKER.subarray(0, 20)), false);
  assert.equal(clean.push(enc.encode('x')), false);
  assert.equal(clean.push(ARMCHAIR_FILE_END_MARKER.subarray(20)), false);
});

test('limits: a header declaring a huge payload or chunk fails before allocation', () => {
  const huge = encodePacketHeader(2 ** 40, 0x00, 1);
  assert.deepEqual(decodeAll(new PacketSession({ maxPayload: 1024 }), [huge]), [{ error: 'WK_FRAME_TOO_LARGE' }]);
  const s = new PacketSession({ maxFileChunk: 100 });
  const bytes = concatBytes([...new PacketSession().encodeFileNames(['f']).bytes, Uint8Array.of(0xff, 0xff, 0xff, 0xff)]);
  const r = new FrameReader(s.decoder);
  r.feed(bytes);
  assert.equal(r.next()?.kind, 'files');
  assert.equal(r.next()?.kind, 'file-start');
  assert.throws(() => r.next(), (e: unknown) => (e as { code: string }).code === 'WK_FRAME_TOO_LARGE');
  assert.throws(() => r.next(), (e: unknown) => (e as { code: string }).code === 'WK_FRAME_TOO_LARGE');
  assert.equal(s.broken, true);
});

test('raw serializer: bytes payloads; ready carries the id as 8 bytes', () => {
  const a = new PacketSession({ serializer: rawSerializer() });
  const b = new PacketSession({ serializer: rawSerializer() });
  const out = a.encode('transfer', Uint8Array.of(1, 2, 3));
  const ev = decodeAll(b, out.bytes) as { packet: { payload: Uint8Array } }[];
  assert.deepEqual(ev[0]!.packet.payload, Uint8Array.of(1, 2, 3));
  assert.deepEqual(Array.from(b.encodeAck(out.id).bytes[1]!), [0, 0, 0, 0, 0, 0, 0, 1]);
  assert.equal((decodeAll(a, b.encodeAck(out.id).bytes)[0] as PacketEvent).kind, 'ack');
  assert.throws(() => a.encode('transfer', 'text'), PacketUsageError);
});

test('pickle serializer: arguments go out as a tuple, as dill.dumps(args) in Armchair', () => {
  const s = new PacketSession({ serializer: pickleSerializer() });
  const out = s.encodeAck(5);
  // dill.dumps((5,)) == b'\x80\x04K\x05\x85\x94.' up to framing and memo; ours: PROTO 4, BININT1 5, TUPLE1, STOP
  assert.deepEqual(Array.from(out.bytes[1]!), [0x80, 4, 0x4b, 5, 0x85, 0x2e]);
});

test('deprecated names stay importable from the packets entry and are the same values', async () => {
  const packets = await import('../../../src/protocols/packets/index.js');
  const formats = await import('../../../src/formats/pickle/index.js');
  assert.equal(packets.SEED_PACKET_TYPES, packets.ARMCHAIR_PACKET_TYPES);
  assert.equal(packets.SEED_URGENT_TYPES, packets.ARMCHAIR_URGENT_TYPES);
  assert.equal(packets.SEED_FILE_END_MARKER, packets.ARMCHAIR_FILE_END_MARKER);
  assert.equal(packets.PickleError, formats.PickleError);
  assert.equal(packets.pickle, formats.pickle);
  assert.equal(packets.unpickle, formats.unpickle);
  assert.ok(packets.isTuple(formats.tuple(1, 2)));
  assert.ok(formats.isTuple(packets.asTuple([1])));
});

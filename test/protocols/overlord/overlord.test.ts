import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ClassicInputFilter,
  ClassicTerminalEncoder,
  ClassicTerminalParser,
  CurrentTerminalParser,
  LineSplitter,
  RpcTracker,
  StdinClosedScanner,
  checkRegister,
  decodeMessage,
  encodeClassicResize,
  encodeCurrentResize,
  encodeFailure,
  encodeRequest,
  encodeStdinClosed,
  encodeSuccess,
  type TerminalEvent,
} from '../../../src/protocols/overlord/index.js';
import { chunkings, concat, dec, enc } from '../../helpers/chunks.js';

const lineOf = (b: Uint8Array) => dec(b).replace(/\r\n$/, '');

test('requests and responses of both generations round-trip with their own key names', () => {
  const c = lineOf(encodeRequest('classic', 'r1', 'terminal', { sid: 's', tty_device: null }));
  assert.deepEqual(JSON.parse(c), { rid: 'r1', timeout: 60, name: 'terminal', params: { sid: 's', tty_device: null } });
  const n = lineOf(encodeRequest('current', 'r1', 'upgrade', null, -1));
  assert.deepEqual(JSON.parse(n), { rid: 'r1', timeout: -1, name: 'upgrade', payload: null });
  assert.deepEqual(decodeMessage('classic', c), { kind: 'request', rid: 'r1', timeout: 60, name: 'terminal', payload: { sid: 's', tty_device: null } });
  assert.deepEqual(JSON.parse(lineOf(encodeSuccess('classic', 'r2', 'pong'))), { rid: 'r2', response: 'success', params: 'pong' });
  assert.deepEqual(JSON.parse(lineOf(encodeFailure('classic', 'r2', 'bad'))), { rid: 'r2', response: 'bad', params: null });
  assert.deepEqual(JSON.parse(lineOf(encodeFailure('current', 'r2', 'bad'))), { rid: 'r2', status: 'failed', payload: { error: 'bad' } });
  assert.deepEqual(decodeMessage('current', lineOf(encodeFailure('current', 'r2', 'bad'))), { kind: 'response', rid: 'r2', ok: false, error: 'bad', payload: { error: 'bad' } });
  assert.deepEqual(decodeMessage('classic', lineOf(encodeFailure('classic', 'r2', 'bad'))), { kind: 'response', rid: 'r2', ok: false, error: 'bad', payload: null });
  assert.equal(decodeMessage('current', '{"rid":"x","status":"success","payload":{"a":1}}').kind, 'response');
  for (const bad of ['nope', '[1]', '{"rid":"x"}', '{"name":""}']) assert.throws(() => decodeMessage('current', bad), { code: 'WK_MALFORMED' });
});

test('register checks: no mid or sid is silent, unknown modes and non-object payloads are refused, properties default to {}', () => {
  const req = (payload: unknown) => decodeMessage('classic', JSON.stringify({ rid: 'r', timeout: 60, name: 'register', params: payload })) as Parameters<typeof checkRegister>[0];
  assert.deepEqual(checkRegister(req({ mode: 1, mid: 'm', sid: 's', properties: null })), { ok: true, registration: { mode: 1, mid: 'm', sid: 's', properties: {} } });
  assert.deepEqual(checkRegister(req({ mode: 1, sid: 's' })), { ok: false, reply: false, error: 'register without mid or sid' });
  assert.equal((checkRegister(req({ mode: 9, mid: 'm', sid: 's' })) as { error: string }).error, 'unknown client mode');
  assert.equal((checkRegister(req({ mode: 4, mid: 'm', sid: 's' })) as { reply: boolean }).reply, true);
  assert.equal((checkRegister(req('x')) as { reply: boolean }).reply, true);
});

test('rpc tracker: replies matched by rid, timeouts below 0 never tracked, expiry by deadline', () => {
  const t = new RpcTracker<string>();
  assert.equal(t.track('a', 'terminal', 60, 0, 'A'), true);
  assert.equal(t.track('b', 'upgrade', -1, 0, 'B'), false);
  assert.equal(t.track('c', 'shell', 1, 0, 'C'), true);
  assert.equal(t.nextDeadline(), 1000);
  assert.deepEqual(t.expire(1000), []);
  assert.deepEqual(t.expire(1001).map((p) => p.data), ['C']);
  assert.equal(t.settle('b'), undefined);
  assert.equal(t.settle('a')?.data, 'A');
  assert.equal(t.settle('a'), undefined);
});

function splitAll(s: LineSplitter, chunks: Uint8Array[]): (string | 'TOO_LONG')[] {
  const out: (string | 'TOO_LONG')[] = [];
  for (const c of chunks) {
    s.push(c);
    for (let e = s.next(); e; e = s.next()) out.push('line' in e ? dec(e.line) : 'TOO_LONG');
  }
  return out;
}

test('line framing: any chunking gives the same lines; CR dropped; what follows the last line is kept', () => {
  const line = fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ''));
  fc.assert(
    fc.property(fc.array(line, { maxLength: 8 }), fc.string({ maxLength: 10 }).map((s) => s.replace(/\n/g, '')), fc.boolean(), (lines, tail, crlf) => {
      const data = enc(lines.map((l) => l + (crlf ? '\r\n' : '\n')).join('') + tail);
      return fc.assert(
        fc.property(chunkings(data), (chunks) => {
          const s = new LineSplitter(1024);
          assert.deepEqual(splitAll(s, chunks), lines);
          assert.equal(dec(s.take()), tail);
        }),
        { numRuns: 5 },
      ) ?? true;
    }),
    { numRuns: 60 },
  );
});

test('line framing: an over-long line is reported once and skipped, never buffered; the next line comes through', () => {
  const data = enc('a'.repeat(5000) + '\r\nok\r\n' + 'b'.repeat(40) + '\n' + 'x\n');
  fc.assert(
    fc.property(chunkings(data), (chunks) => {
      const s = new LineSplitter(32);
      const got = splitAll(s, chunks);
      assert.deepEqual(got, ['TOO_LONG', 'ok', 'TOO_LONG', 'x']);
      assert.ok(s.length <= 64);
    }),
  );
});

function collapse(events: TerminalEvent[]): unknown[] {
  const out: unknown[] = [];
  let data: Uint8Array[] = [];
  const flush = () => {
    if (data.length) out.push({ data: dec(concat(data)) });
    data = [];
  };
  for (const e of events) {
    if (e.type === 'data') {
      if (e.data.length) data.push(e.data);
    }
    else {
      flush();
      out.push(e.type === 'resize' ? { resize: [e.rows, e.cols] } : { control: e.text });
    }
  }
  flush();
  return out;
}

const piece = fc.oneof(
  fc.string({ maxLength: 12, unit: 'grapheme' }).map((s) => ({ data: s })),
  fc.tuple(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 1, max: 999 })).map(([r, c]) => ({ resize: [r, c] as [number, number] })),
);

test('classic terminal: 0x80 {json} 0x81 found across any chunking, UTF-8 input (with 0x80 continuation bytes) untouched', () => {
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
      const enc2 = new ClassicTerminalEncoder();
      const bytes = concat(pieces.map((p) => ('data' in p ? enc2.data(enc(p.data)) : enc2.resize(p.resize[0], p.resize[1]))));
      const expected = collapse(pieces.map((p) => ('data' in p ? { type: 'data', data: enc(p.data) } : { type: 'resize', rows: p.resize[0], cols: p.resize[1] })) as TerminalEvent[]);
      return fc.assert(
        fc.property(chunkings(bytes), (chunks) => {
          const parser = new ClassicTerminalParser();
          assert.deepEqual(collapse(chunks.flatMap((c) => parser.push(c))), expected);
        }),
        { numRuns: 5 },
      ) ?? true;
    }),
    { numRuns: 100 },
  );
  // U+0400 is D0 80: the 0x80 is data.
  assert.deepEqual(collapse(new ClassicTerminalParser().push(enc('Ѐ{"x":1}'))), [{ data: 'Ѐ{"x":1}' }]);
});

test('classic terminal encoder: a resize while a character is split across writes follows that character', () => {
  const e = new ClassicTerminalEncoder();
  const ch = enc('Ѐ');
  const a = e.data(ch.subarray(0, 1));
  const r = e.resize(24, 80);
  const b = e.data(ch.subarray(1));
  assert.equal(r.length, 0);
  assert.deepEqual(collapse(new ClassicTerminalParser().push(concat([a, r, b]))), [{ data: 'Ѐ' }, { resize: [24, 80] }]);
  assert.deepEqual([...encodeClassicResize(2, 3)], [0x80, ...enc('{"command":"resize","params":[2,3]}'), 0x81]);
});

test('classic terminal: an unterminated control longer than the limit is data after all', () => {
  const p = new ClassicTerminalParser();
  const events = p.push(concat([Uint8Array.of(0x80), enc('y'.repeat(2000))]));
  const bytes = concat(events.map((e) => (e as { data: Uint8Array }).data));
  assert.equal(bytes.length, 2001);
  assert.equal(bytes[0], 0x80);
  assert.deepEqual(collapse(p.push(enc('z'))), [{ data: 'z' }]);
});

test('current terminal: ESC [ 8 ; rows ; cols t found across any chunking; other escapes are data', () => {
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
      const bytes = concat(pieces.map((p) => ('data' in p ? enc(p.data) : encodeCurrentResize(p.resize[0], p.resize[1]))));
      const expected = collapse(pieces.map((p) => ('data' in p ? { type: 'data', data: enc(p.data) } : { type: 'resize', rows: p.resize[0], cols: p.resize[1] })) as TerminalEvent[]);
      return fc.assert(
        fc.property(chunkings(bytes), (chunks) => {
          const parser = new CurrentTerminalParser();
          const events = chunks.flatMap((c) => parser.push(c));
          const rest = parser.end();
          if (rest.length) events.push({ type: 'data', data: rest });
          assert.deepEqual(collapse(events), expected);
        }),
        { numRuns: 5 },
      ) ?? true;
    }),
    { numRuns: 100 },
  );
  assert.deepEqual(collapse(new CurrentTerminalParser().push(enc('\x1b[8;0;5t\x1b[2J'))), [{ data: '\x1b[8;0;5t\x1b[2J' }]);
});

test('classic stdin end marker: found across any chunking, what follows dropped, near-misses kept', () => {
  const data = enc('echo ##STDIN_CLOSE## #x\n') ;
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), chunkings(concat([data, encodeStdinClosed(), enc('late')])), (_s, chunks) => {
      const sc = new StdinClosedScanner();
      const parts: Uint8Array[] = [];
      let closed = false;
      for (const c of chunks) {
        const r = sc.push(c);
        parts.push(r.data);
        closed ||= r.closed;
      }
      assert.equal(closed, true);
      assert.equal(dec(concat(parts)), dec(data));
    }),
  );
  const sc = new StdinClosedScanner();
  const r = sc.push(enc('ab##STDIN_'));
  assert.deepEqual([dec(r.data), r.closed, dec(sc.end())], ['ab', false, '##STDIN_']);
});

test('classic terminal input filter: a character holding the byte 0x80 becomes U+FFFD, whole or split across writes; others pass', () => {
  const f = new ClassicInputFilter();
  assert.equal(Buffer.from(f.push(enc('aЀд一b'))).toString('utf8'), 'a\uFFFDд\uFFFDb');
  const split = enc('x一y');
  const parts = [split.subarray(0, 2), split.subarray(2, 3), split.subarray(3)].map((p) => f.push(p));
  assert.equal(Buffer.concat(parts).toString('utf8'), 'x\uFFFDy');
  // A split character without 0x80 is held until complete, then passed on as it was.
  const g = new ClassicInputFilter();
  const d = enc('д');
  assert.equal(g.push(d.subarray(0, 1)).length, 0);
  assert.deepEqual([...g.push(d.subarray(1))], [...d]);
  // A stray 0x80 never reaches the ghost.
  assert.ok(!new ClassicInputFilter().push(Uint8Array.of(0x41, 0x80, 0x42)).includes(0x80));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 8 }), (bytes, step) => {
      const h = new ClassicInputFilter();
      for (let i = 0; i < bytes.length; i += step) assert.ok(!h.push(bytes.subarray(i, i + step)).includes(0x80));
    }),
  );
});

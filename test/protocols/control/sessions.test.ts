import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ServerSession, ClientSession, ControlStateError, ControlProtocolError, SYNTAX_ERROR_MESSAGE } from '../../../src/protocols/control/index.js';
import { chunkings, dec, enc } from './helpers.js';

/** Runs a server session over chunks, answering each command with {echo: opts} and two progress lines. */
function runServer(chunks: Uint8Array[], maxLineLength = 64): { events: unknown[]; out: string } {
  const s = new ServerSession({ version: '1.0', maxLineLength });
  const events: unknown[] = [];
  let out = dec(s.dataToSend());
  const drive = () => {
    for (;;) {
      const ev = s.nextEvent();
      if (ev === undefined) return;
      events.push(ev);
      if (ev.type === 'command') {
        s.progress(`p1 ${ev.cmd}`);
        s.progress(`p2 ${ev.cmd}`);
        s.respond({ echo: ev.opts });
        s.finish();
      }
      if (ev.type === 'eof') return;
    }
  };
  for (const c of chunks) {
    s.receive(c);
    drive();
    out += dec(s.dataToSend());
  }
  s.receiveEof();
  drive();
  out += dec(s.dataToSend());
  return { events, out };
}

const serverInput = enc(
  [
    '{"cmd":"a","opts":{"x":1}}',
    'not json',
    '{"cmd":"b"}\r',
    'x'.repeat(100),
    '[1,2]',
    '{"cmd":"ü","opts":"é€"}',
    '',
    '{"cmd":"c","opts":null}',
  ].join('\n') + '\n{"cmd":"last"}',
);

test('server session: same events and replies for every chunking', () => {
  const whole = runServer([serverInput]);
  assert.deepEqual(
    whole.events.map((e) => (e as { type: string; cmd?: string; reason?: string }).cmd ?? (e as { reason?: string }).reason ?? (e as { type: string }).type),
    // The last request has no newline: it is served at end of input, as osctld does.
    ['a', 'syntax', 'b', 'too-large', 'invalid', 'ü', 'c', 'last', 'eof'],
  );
  const lines = whole.out.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines[0], { version: '1.0' });
  assert.deepEqual(lines.slice(1, 4), [
    { status: true, progress: 'p1 a' },
    { status: true, progress: 'p2 a' },
    { status: true, response: { echo: { x: 1 } } },
  ]);
  assert.deepEqual(lines[4], { status: false, message: SYNTAX_ERROR_MESSAGE });
  assert.equal((whole.events.at(-1) as { truncated: number }).truncated, 0);
  fc.assert(
    fc.property(chunkings(serverInput), (chunks) => {
      assert.deepEqual(runServer(chunks), whole);
    }),
    { numRuns: 300 },
  );
});

test('server session: one command at a time, later bytes kept for a hijack', () => {
  const s = new ServerSession();
  s.receive(enc('{"cmd":"console"}\nRAW{"cmd":"not-decoded"}\n'));
  const ev = s.nextEvent();
  assert.deepEqual(ev, { type: 'command', cmd: 'console', opts: undefined });
  assert.equal(s.nextEvent(), undefined, 'paused while busy');
  s.respond('continue');
  assert.equal(s.nextEvent(), undefined, 'paused until finish');
  const rest = s.hijack();
  assert.equal(dec(Buffer.concat(rest)), 'RAW{"cmd":"not-decoded"}\n');
  assert.equal(dec(s.dataToSend()), '{"status":true,"response":"continue"}\n');
  assert.throws(() => s.progress('x'), ControlStateError);
});

test('server session: state table refuses out-of-order actions', () => {
  const s = new ServerSession();
  assert.throws(() => s.respond(1), ControlStateError);
  assert.throws(() => s.finish(), ControlStateError);
  s.receive(enc('{"cmd":"x"}\n'));
  s.nextEvent();
  assert.throws(() => s.event(1), ControlStateError, 'events only after the reply');
  assert.throws(() => s.finish(), ControlStateError, 'finish needs a reply');
  s.respond(1);
  s.event(2);
  s.event(3);
  assert.throws(() => s.progress('late'), ControlStateError);
  s.finish();
  assert.equal(dec(s.dataToSend()), '{"status":true,"response":1}\n{"status":true,"response":2}\n{"status":true,"response":3}\n');
  // Unserializable values are refused before anything is queued.
  s.receive(enc('{"cmd":"y"}\n'));
  s.nextEvent();
  assert.throws(() => s.respond(10n));
  s.fail('bad');
  assert.equal(dec(s.dataToSend()), '{"status":false,"message":"bad"}\n');
});

/** Runs a client session with three calls (call, call, hijack) over the given server bytes. */
function runClient(chunks: Uint8Array[]): { events: unknown[]; rest: string; sent: string } {
  const c = new ClientSession();
  c.call('a', { x: 1 });
  c.call('b', undefined);
  c.call('console', { id: 1 }, 'hijack');
  const sent = dec(c.dataToSend());
  const events: unknown[] = [];
  for (const ch of chunks) {
    c.receive(ch);
    for (let ev = c.nextEvent(); ev !== undefined; ev = c.nextEvent()) events.push(ev);
  }
  const rest = c.switched ? dec(Buffer.concat(c.takeRemaining())) : '';
  return { events, rest, sent };
}

const clientInput = enc(
  '{"version":"2.1"}\n{"status":true,"progress":"half"}\r\n{"status":true,"response":[1]}\n{"status":false,"message":"no"}\n' +
    '{"status":true,"progress":{"p":1}}\n{"status":true,"response":"continue"}\nRAW BYTES\n{"status":true}\n\x00\xff',
);

test('client session: same events and leftovers for every chunking', () => {
  const whole = runClient([clientInput]);
  assert.equal(whole.sent, '{"cmd":"a","opts":{"x":1}}\n{"cmd":"b","opts":{}}\n{"cmd":"console","opts":{"id":1}}\n');
  assert.deepEqual(whole.events, [
    { type: 'greeting', version: '2.1' },
    { type: 'progress', id: 1, message: 'half' },
    { type: 'response', id: 1, value: [1] },
    { type: 'error', id: 2, message: 'no' },
    { type: 'progress', id: 3, message: { p: 1 } },
    { type: 'response', id: 3, value: 'continue' },
    { type: 'switched', id: 3 },
  ]);
  assert.equal(whole.rest, dec(enc('RAW BYTES\n{"status":true}\n\x00\xff')));
  fc.assert(
    fc.property(chunkings(clientInput), (chunks) => {
      assert.deepEqual(runClient(chunks), whole);
    }),
    { numRuns: 300 },
  );
});

test('client session: no call after a hijack or stream call; a failed hijack frees the connection', () => {
  const c = new ClientSession();
  c.call('console', {}, 'hijack');
  assert.throws(() => c.call('x', {}), ControlStateError);
  c.receive(enc('{"status":false,"message":"no console"}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'error', id: 1, message: 'no console' });
  c.call('x', {});
  c.call('events', {}, 'stream');
  c.receive(enc('{"status":true,"response":1}\n{"status":true,"response":"sub"}\n{"status":true,"response":{"e":1}}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'response', id: 2, value: 1 });
  assert.deepEqual(c.nextEvent(), { type: 'response', id: 3, value: 'sub' });
  assert.deepEqual(c.nextEvent(), { type: 'event', id: 3, value: { e: 1 } });
});

test('client session: protocol violations are typed and final', () => {
  for (const bad of ['{"status":true,"response":1}\n', 'garbage\n', '{"what":1}\n', '{"status":true,"progress":1}\n{"version":"late"}\n']) {
    const c = new ClientSession({ maxLineLength: 1000 });
    if (bad.includes('progress')) c.call('a', {});
    c.receive(enc(bad));
    assert.throws(() => {
      while (c.nextEvent() !== undefined);
    }, ControlProtocolError, bad);
    assert.throws(() => c.nextEvent(), ControlProtocolError, 'stays failed');
    assert.throws(() => c.call('b', {}), ControlProtocolError);
  }
  const c = new ClientSession({ maxLineLength: 10 });
  c.call('a', {});
  c.receive(enc('{"status":true,"response":"long enough"}\n'));
  assert.throws(() => c.nextEvent(), ControlProtocolError);
});

test('client session pipeline: false: one request at a time, expect() holds the next request too', () => {
  const c = new ClientSession({ pipeline: false });
  const a = c.call('a', {});
  const w = c.expect('result');
  const b = c.call('b', { n: 1 });
  assert.equal(dec(c.dataToSend()), '{"cmd":"a","opts":{}}\n');
  assert.equal(c.heldCalls, 1);
  assert.equal(c.hasDataToSend, false);
  c.receive(enc('{"status":true,"progress":1}\n{"status":true,"response":"A"}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'progress', id: a, message: 1 });
  assert.equal(c.hasDataToSend, false, 'progress is not the final reply');
  assert.deepEqual(c.nextEvent(), { type: 'response', id: a, value: 'A' });
  assert.equal(c.hasDataToSend, false, 'the expected reply comes first');
  c.receive(enc('{"status":false,"message":"x"}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'error', id: w, message: 'x' });
  assert.equal(dec(c.dataToSend()), '{"cmd":"b","opts":{"n":1}}\n');
  assert.equal(c.heldCalls, 0);
  c.receive(enc('{"status":true,"response":"B"}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'response', id: b, value: 'B' });
  assert.equal(c.hasDataToSend, false);
});

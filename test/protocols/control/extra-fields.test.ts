/**
 * The hooks a protocol built on the control protocol uses (the agent): extra members on the
 * greeting and on error replies, and a reply the client expects without sending a request.
 * Without them, the bytes are exactly those of plain seed 003.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ClientSession,
  ControlStateError,
  ServerSession,
  SYNTAX_ERROR_MESSAGE,
  classifyServerMessage,
  errorLine,
  versionLine,
} from '../../../src/protocols/control/index.js';
import { chunkings, dec, enc } from './helpers.js';

test('versionLine and errorLine: extra members follow the protocol ones; their own keys and undefined values are skipped', () => {
  assert.equal(versionLine('1.0'), '{"version":"1.0"}');
  assert.equal(versionLine('1.0', { auth: 'token', n: [1, null] }), '{"version":"1.0","auth":"token","n":[1,null]}');
  assert.equal(versionLine('1.0', { version: 'x', status: true, gone: undefined }), '{"version":"1.0"}');
  assert.equal(errorLine('no'), '{"status":false,"message":"no"}');
  assert.equal(errorLine('no', { code: 'WK_AUTH' }), '{"status":false,"message":"no","code":"WK_AUTH"}');
  assert.equal(errorLine('no', { status: true, message: 'yes', code: undefined }), '{"status":false,"message":"no"}');
  assert.throws(() => errorLine('no', { code: 10n }), { code: 'WK_USAGE' });
});

test('classifyServerMessage: extra members are carried only when present', () => {
  assert.deepEqual(classifyServerMessage({ version: '2' }), { kind: 'version', version: '2' });
  assert.deepEqual(classifyServerMessage({ version: '2', auth: 'none' }), { kind: 'version', version: '2', extra: { auth: 'none' } });
  assert.deepEqual(classifyServerMessage({ status: false, message: 'm' }), { kind: 'error', message: 'm' });
  assert.deepEqual(classifyServerMessage({ status: false, message: 'm', code: 'WK_X' }), { kind: 'error', message: 'm', extra: { code: 'WK_X' } });
  // Extra members never change the classification.
  assert.deepEqual(classifyServerMessage({ status: true, progress: 1, code: 'x' }), { kind: 'progress', message: 1 });
  assert.equal(classifyServerMessage({ version: '2', status: 'odd' }), undefined);
});

test('server session: greeting members, codes on its own error replies and on fail()', () => {
  const plain = new ServerSession({ version: '1.0', rejectFields: undefined });
  assert.equal(dec(plain.dataToSend()), '{"version":"1.0"}\n');
  assert.equal(dec(new ServerSession({ greeting: { auth: 'none' } }).dataToSend()), '', 'no greeting without a version');

  const reasons: string[] = [];
  const s = new ServerSession({
    version: 'agent/1',
    greeting: { auth: 'token' },
    maxLineLength: 20,
    rejectFields: (reason, message) => {
      reasons.push(`${reason}: ${message}`);
      return reason === 'invalid' ? undefined : { code: `WK_${reason.toUpperCase()}` };
    },
  });
  s.receive(enc(`nope\n${'x'.repeat(30)}\n[1]\n{"cmd":"a"}\n`));
  const events = [s.nextEvent(), s.nextEvent(), s.nextEvent(), s.nextEvent()];
  assert.deepEqual(
    events.map((e) => e?.type),
    ['rejected', 'rejected', 'rejected', 'command'],
  );
  s.fail('denied', { code: 'WK_AUTH' });
  s.finish();
  assert.deepEqual(dec(s.dataToSend()).trimEnd().split('\n'), [
    '{"version":"agent/1","auth":"token"}',
    `{"status":false,"message":"${SYNTAX_ERROR_MESSAGE}","code":"WK_SYNTAX"}`,
    '{"status":false,"message":"request line too long, over 20 bytes","code":"WK_TOO-LARGE"}',
    '{"status":false,"message":"invalid request, expected {\\"cmd\\": <name>, \\"opts\\": <params>}"}',
    '{"status":false,"message":"denied","code":"WK_AUTH"}',
  ]);
  assert.equal(reasons.length, 3);
  assert.match(reasons[0]!, /^syntax: /);
});

test('client session: greeting and error extras reach the events; plain lines give the plain events', () => {
  const c = new ClientSession();
  const a = c.call('a', {});
  const b = c.call('b', {});
  c.receive(enc('{"version":"agent/1","auth":"token"}\n{"status":false,"message":"no","code":"WK_AUTH"}\n{"status":false,"message":"no"}\n'));
  assert.deepEqual(c.nextEvent(), { type: 'greeting', version: 'agent/1', extra: { auth: 'token' } });
  assert.deepEqual(c.nextEvent(), { type: 'error', id: a, message: 'no', extra: { code: 'WK_AUTH' } });
  assert.deepEqual(c.nextEvent(), { type: 'error', id: b, message: 'no' });
});

test('client session: expect() waits for a reply nobody asked for, in order with the calls, sending nothing', () => {
  const c = new ClientSession();
  const up = c.call('upload', { size: 3 });
  assert.equal(dec(c.dataToSend()), '{"cmd":"upload","opts":{"size":3}}\n');
  const result = c.expect('upload');
  assert.equal(c.hasDataToSend, false, 'nothing to send for an expected reply');
  assert.equal(c.pendingCalls, 2);
  const input = enc('{"status":true,"response":{"path":"/f"}}\n{"status":true,"progress":{"bytes":1}}\n{"status":true,"response":{"sha256":"ab"}}\n');
  const run = (chunks: Uint8Array[]) => {
    const s = new ClientSession();
    s.call('upload', {});
    s.expect('upload');
    const events: unknown[] = [];
    for (const ch of chunks) {
      s.receive(ch);
      for (let ev = s.nextEvent(); ev !== undefined; ev = s.nextEvent()) events.push(ev);
    }
    return events;
  };
  const whole = run([input]);
  assert.deepEqual(whole, [
    { type: 'response', id: up, value: { path: '/f' } },
    { type: 'progress', id: result, message: { bytes: 1 } },
    { type: 'response', id: result, value: { sha256: 'ab' } },
  ]);
  fc.assert(
    fc.property(chunkings(input), (chunks) => {
      assert.deepEqual(run(chunks), whole);
    }),
    { numRuns: 200 },
  );
  // Same rules as call(): nothing after a hijack call.
  const h = new ClientSession();
  h.call('console', {}, 'hijack');
  assert.throws(() => h.expect('more'), ControlStateError);
  // Without expect(), the extra reply is a protocol error.
  const strict = new ClientSession();
  strict.call('upload', {});
  strict.receive(input);
  strict.nextEvent();
  assert.throws(() => strict.nextEvent(), /no call waiting/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Handshake, HandshakeError } from '../../../src/protocols/delimited/index.js';

test('client: start sends READY, OK opens', () => {
  const hs = new Handshake('client');
  assert.equal(hs.state, 'idle');
  assert.deepEqual(hs.start(), [{ type: 'send', message: 'READY' }]);
  assert.equal(hs.state, 'awaiting-ok');
  assert.deepEqual(hs.receive('OK'), [{ type: 'open' }]);
  assert.equal(hs.isOpen, true);
  hs.receiveEof(); // after the handshake an EOF is the application's business
});

test('server: waits for READY, answers OK and opens', () => {
  const hs = new Handshake('server');
  assert.deepEqual(hs.start(), []);
  assert.equal(hs.state, 'awaiting-ready');
  assert.deepEqual(hs.receive('READY'), [{ type: 'send', message: 'OK' }, { type: 'open' }]);
  assert.equal(hs.state, 'open');
});

test('wrong word fails with a HandshakeError naming it', () => {
  const hs = new Handshake('client');
  hs.start();
  assert.throws(() => hs.receive('NO'), (e: unknown) => e instanceof HandshakeError && e.code === 'WK_HANDSHAKE' && /"NO"/.test(e.message) && /waiting for OK/.test(e.message));
  assert.equal(hs.state, 'failed');
  // Failed is final.
  assert.throws(() => hs.receive('OK'), HandshakeError);
  const srv = new Handshake('server');
  srv.start();
  assert.throws(() => srv.receive('ready'), HandshakeError);
  // Long junk is shown shortened.
  const srv2 = new Handshake('server');
  srv2.start();
  assert.throws(() => srv2.receive('x'.repeat(1000)), /1000 chars/);
});

test('peer closing before READY or OK fails instead of spinning', () => {
  const srv = new Handshake('server');
  srv.start();
  assert.throws(() => srv.receiveEof(), /closed the connection while waiting for READY/);
  const cli = new Handshake('client');
  cli.start();
  assert.throws(() => cli.receiveEof(), /closed the connection while waiting for OK/);
});

test('messages out of order are protocol errors', () => {
  const hs = new Handshake('client');
  assert.throws(() => hs.receive('OK'), /unexpected message for the client in state idle/);
  const srv = new Handshake('server');
  srv.start();
  assert.throws(() => srv.start(), (e: unknown) => e instanceof HandshakeError && e.origin === 'local');
  const open = new Handshake('server');
  open.start();
  open.receive('READY');
  assert.throws(() => open.receive('READY'), /state open/);
  assert.equal(open.isOpen, true, 'an unexpected call on an open handshake does not break it');
});

test('custom words', () => {
  const c = new Handshake('client', { ready: 'HELLO', ok: 'WELCOME' });
  assert.deepEqual(c.start(), [{ type: 'send', message: 'HELLO' }]);
  assert.deepEqual(c.receive('WELCOME'), [{ type: 'open' }]);
});

test('undecodable message fails the handshake with the cause attached', () => {
  const hs = new Handshake('server');
  hs.start();
  const cause = new Error('bad base64');
  assert.throws(() => hs.receiveError(cause), (e: unknown) => e instanceof HandshakeError && e.cause === cause);
});

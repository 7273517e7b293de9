import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { connectReply, messageStream, webSocketAccept, type RpcMessage } from '../../../src/protocols/overlord/node.js';

test('webSocketAccept is the RFC 6455 example; the 101 has a reason phrase and Connection: Upgrade', () => {
  assert.equal(webSocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.match(connectReply('dGhlIHNhbXBsZSBub25jZQ=='), /^HTTP\/1\.1 101 Switching Protocols\r\n[\s\S]*Connection: Upgrade\r\n[\s\S]*\r\n\r\n$/);
});

test('messageStream: head first, messages split over reads, garbage skipped, the rest handed back', () => {
  const s = new PassThrough();
  const got: RpcMessage[] = [];
  const errors: Error[] = [];
  const stop = messageStream(s, 'current', (m) => got.push(m), { head: Buffer.from('{"rid":"a","timeout":60,"name":"ping","pay'), maxLine: 200, onError: (e) => errors.push(e) });
  s.write('load":{}}\r\nnot json\r\n' + 'x'.repeat(300) + '\n{"rid":"a","status":"success","payload":null}\r\nraw');
  assert.deepEqual(got.map((m) => [m.kind, m.rid]), [['request', 'a'], ['response', 'a']]);
  assert.equal(errors.length, 1);
  assert.equal(Buffer.from(stop()).toString(), 'raw');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { connectSocket, ConnectError } from '../../src/channels/index.js';
import { TimeoutError, AbortedError } from '../../src/errors.js';
import os from 'node:os';
import path from 'node:path';

const tempSocketPath = (name: string) => path.join(os.tmpdir(), `wk-${name}-${process.pid}-${Date.now()}.sock`);

test('connectSocket: TCP and Unix sockets connect; a refused port is ConnectError (WK_CONNECT)', async () => {
  const server = net.createServer((s) => s.end('hi'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const tcp = await connectSocket({ host: '127.0.0.1', port });
  const [data] = (await once(tcp, 'data')) as [Buffer];
  assert.equal(data.toString(), 'hi');
  tcp.destroy();
  server.close();
  await once(server, 'close');
  await assert.rejects(connectSocket({ host: '127.0.0.1', port }), (err: unknown) => err instanceof ConnectError && err.code === 'WK_CONNECT');

  const sockPath = tempSocketPath('connect');
  const unix = net.createServer((s) => s.end('unix'));
  unix.listen(sockPath);
  await once(unix, 'listening');
  const u = await connectSocket({ path: sockPath });
  const [d2] = (await once(u, 'data')) as [Buffer];
  assert.equal(d2.toString(), 'unix');
  u.destroy();
  unix.close();
  await assert.rejects(connectSocket({ path: sockPath + '.missing' }), ConnectError);
});

test('connectSocket: a TLS handshake that never completes times out; an aborted signal rejects', async () => {
  // A TCP server that accepts and says nothing: TLS never becomes ready.
  const held: net.Socket[] = [];
  const server = net.createServer((s) => held.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await assert.rejects(connectSocket({ host: '127.0.0.1', port }, { tls: { rejectUnauthorized: false }, timeout: 50 }), TimeoutError);
  const ac = new AbortController();
  const p = connectSocket({ host: '127.0.0.1', port }, { tls: true, signal: ac.signal });
  ac.abort();
  await assert.rejects(p, AbortedError);
  for (const s of held) s.destroy();
  server.close();
});

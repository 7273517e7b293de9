import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  MuxApplicationError,
  MuxCommandFailedError,
  MuxFrameClient,
  MuxFrameServer,
  type CborValue,
  type MuxCommandHandler,
} from '../../../src/protocols/mux-frames/node.js';

const te = new TextEncoder();
const td = new TextDecoder();

const handler: MuxCommandHandler = async (cmd) => {
  switch (cmd.name) {
    case 'echo':
      return [cmd.args];
    case 'sha256':
      return [createHash('sha256').update(cmd.data ?? new Uint8Array(0)).digest('hex'), cmd.data?.length ?? 0];
    case 'big':
      return [new Uint8Array(200_000).fill(0x61), { text: 'compress me '.repeat(5000) }];
    case 'chatty':
      cmd.progress('files', 1, 2, { label: 'files' });
      cmd.text([{ msg: 'hello %s\n', args: ['world'] }]);
      return (async function* () {
        for (let i = 0; i < 3; i++) yield i;
      })();
    case 'refuse':
      throw new MuxApplicationError('no such key %s', ['tip']);
    case 'explode':
      throw new Error('it broke');
    case 'empty':
      return undefined;
    default:
      throw new MuxApplicationError(`unknown command ${cmd.name}`);
  }
};

async function exercise(client: MuxFrameClient): Promise<void> {
  const [echo] = await client.call('echo', { key: 'value', n: 42 });
  assert.equal(td.decode((echo as Record<string, Uint8Array>).key), 'value');
  assert.equal((echo as Record<string, CborValue>).n, 42);

  const data = new Uint8Array(100_000).map((_, i) => i & 0xff);
  assert.deepEqual(await client.call('sha256', {}, { data }), [te.encode(createHash('sha256').update(data).digest('hex')), 100_000]);

  const progress: unknown[] = [];
  const texts: string[] = [];
  assert.deepEqual(await client.call('chatty', {}, { onProgress: (p) => progress.push(p), onText: (t) => texts.push(t) }), [0, 1, 2]);
  assert.deepEqual(progress, [{ topic: 'files', pos: 1, total: 2, label: 'files' }]);
  assert.deepEqual(texts, ['hello world\n']);

  await assert.rejects(client.call('refuse'), (err: unknown) => err instanceof MuxCommandFailedError && err.errorType === 'command' && err.serverMessage === 'no such key tip');
  await assert.rejects(client.call('explode'), (err: unknown) => err instanceof MuxCommandFailedError && err.errorType === 'server' && err.serverMessage === 'it broke');
  assert.deepEqual(await client.call('empty'), []);

  // Several calls in flight at once, answered interleaved.
  const results = await Promise.all([client.call('big'), client.call('echo', { i: 1 }), client.call('big')]);
  assert.equal((results[0][0] as Uint8Array).length, 200_000);
  assert.equal((results[1][0] as Record<string, CborValue>).i, 1);
  assert.deepEqual(results[2], results[0]);
}

test('mux socket driver over TCP loopback, zlib streams, several calls in flight', async () => {
  const server = new MuxFrameServer(handler);
  const addr = (await server.listen({ host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  const client = await MuxFrameClient.connect({ host: '127.0.0.1', port: addr.port }, { contentEncodings: ['zlib', 'identity'], timeout: 2000 });
  try {
    await exercise(client);
    await client.end();
  } finally {
    client.close();
    await server.close();
  }
});

test('mux socket driver over a Unix socket, identity streams', async () => {
  const p = path.join(os.tmpdir(), `wk-mux-${process.pid}-${Date.now()}.sock`);
  const server = new MuxFrameServer(handler);
  assert.equal(await server.listen({ path: p }), p);
  const client = await MuxFrameClient.connect({ path: p });
  try {
    await exercise(client);
    await client.end();
  } finally {
    client.close();
    await server.close();
  }
});

test('mux client: a server that breaks the protocol fails every pending call', async () => {
  const raw = net.createServer((s) => {
    s.once('data', () => s.write(Uint8Array.of(0, 0, 0, 1, 0, 1, 1, 0x32))); // odd stream id from a server
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const { port } = raw.address() as net.AddressInfo;
  const client = await MuxFrameClient.connect({ host: '127.0.0.1', port });
  await assert.rejects(client.call('x'), { code: 'WK_MUX_PROTOCOL' });
  await client.closed;
  await new Promise<void>((r) => raw.close(() => r()));
});

test('mux client: connect to nothing is a ConnectError', async () => {
  await assert.rejects(MuxFrameClient.connect({ path: path.join(os.tmpdir(), `wk-mux-none-${process.pid}.sock`) }), { code: 'WK_CONNECT' });
});

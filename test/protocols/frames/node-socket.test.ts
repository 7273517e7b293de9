import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import {
  ApplicationError,
  FrameCommandError,
  FrameClient,
  FrameSocketServer,
  encodeFrames,
  serveConnection,
  frameCodec,
  parseFrameNotation,
  type CommandHandler,
} from '../../../src/protocols/frames/node.js';
import { FrameReader } from '../../../src/codecs/index.js';

const td = new TextDecoder();
const te = new TextEncoder();

const handler: CommandHandler = async (cmd) => {
  switch (cmd.name) {
    case 'echo':
      return cmd.args.value ?? new Uint8Array(0);
    case 'args':
      return JSON.stringify(Object.fromEntries(Object.entries(cmd.args).map(([k, v]) => [k, td.decode(v)])));
    case 'sha256': {
      const h = createHash('sha256');
      let n = 0;
      if (cmd.stream) {
        for await (const c of cmd.stream) {
          h.update(c);
          n += c.length;
        }
      } else if (cmd.data) {
        h.update(cmd.data);
        n = cmd.data.length;
      }
      return `${n} ${h.digest('hex')}`;
    }
    case 'fail':
      throw new ApplicationError('it failed');
    case 'big':
      return new Uint8Array(100_000).fill(0x62);
    case 'chunks':
      return (async function* () {
        for (let i = 0; i < 5; i++) yield te.encode(`part${i};`);
      })();
    default:
      throw new Error(`unknown command ${cmd.name}`);
  }
};

async function withServer(fn: (client: FrameClient, port: number) => Promise<void>, opts: { streamData?: boolean } = {}): Promise<void> {
  const server = new FrameSocketServer(handler, opts);
  const addr = (await server.listen({ host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  const client = await FrameClient.connect({ host: '127.0.0.1', port: addr.port }, { timeout: 2000 });
  try {
    await fn(client, addr.port);
  } finally {
    client.close();
    await server.close();
  }
}

test('socket: calls, arguments, application errors, split responses, streamed responses', async () => {
  await withServer(async (client) => {
    assert.equal(td.decode(await client.call('echo', { value: 'hi' })), 'hi');
    assert.deepEqual(JSON.parse(td.decode(await client.call('args', { b: '2', a: '1', big: 'x'.repeat(40000) }))), { a: '1', b: '2', big: 'x'.repeat(40000) });
    await assert.rejects(client.call('fail'), (err: unknown) => err instanceof FrameCommandError && err.kind === 'application' && err.serverMessage === 'it failed');
    await assert.rejects(client.call('nope'), { code: 'WK_COMMAND_FAILED' });
    assert.equal((await client.call('big')).length, 100_000);
    const res = await client.stream('chunks');
    const parts: string[] = [];
    for await (const c of res) parts.push(td.decode(c));
    assert.equal(parts.join(''), 'part0;part1;part2;part3;part4;');
    await assert.rejects(client.stream('fail'), { kind: 'application' });
    assert.equal(td.decode(await client.call('sha256', {}, { data: te.encode('abc') })), '3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

test('socket: many commands in a row on one connection, pipelined', async () => {
  await withServer(async (client) => {
    const calls = [];
    for (let i = 0; i < 500; i++) calls.push(client.call('echo', { value: String(i) }));
    const results = await Promise.all(calls);
    results.forEach((r, i) => assert.equal(td.decode(r), String(i)));
    for (let i = 0; i < 50; i++) assert.equal(td.decode(await client.call('echo', { value: `s${i}` })), `s${i}`);
  });
});

test('socket: a command with 10 MiB of data streamed both ways', async () => {
  const total = 10 * 1024 * 1024;
  const expected = createHash('sha256');
  const chunk = new Uint8Array(65536 + 3).map((_, i) => (i * 31) & 0xff);
  let sent = 0;
  const parts: Uint8Array[] = [];
  while (sent < total) {
    const c = chunk.subarray(0, Math.min(chunk.length, total - sent));
    expected.update(c);
    parts.push(c);
    sent += c.length;
  }
  async function* source() {
    for (const p of parts) yield p;
  }
  await withServer(
    async (client) => {
      const r = await client.call('sha256', {}, { data: source(), timeout: 20000 });
      assert.equal(td.decode(r), `${total} ${expected.digest('hex')}`);
      assert.equal(td.decode(await client.call('echo', { value: 'after' })), 'after');
    },
    { streamData: true },
  );
});

test('socket: a connection that closes mid-frame fails the pending request promptly', async () => {
  const server = net.createServer((s) => {
    s.once('data', () => {
      // Half a response frame, then gone.
      s.end(encodeFrames([parseFrameNotation('bytes-response eos hello world')]).subarray(0, 7));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const client = await FrameClient.connect({ host: '127.0.0.1', port });
  const second = client.call('echo');
  await assert.rejects(client.call('echo', undefined, { timeout: 5000 }), (err: unknown) => (err as { code?: string }).code === 'WK_CONNECTION_CLOSED' && /partial frame|input ended/.test(String((err as Error).message)));
  await assert.rejects(second, { code: 'WK_CONNECTION_CLOSED' });
  await assert.rejects(client.call('again'), { code: 'WK_CONNECTION_CLOSED' });
  client.close();
  await new Promise((r) => server.close(r));
});

test('socket: a protocol error gets a protocol error-response frame, then the connection closes', async () => {
  const server = new FrameSocketServer(handler);
  const { port } = (await server.listen({ host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  const sock = net.connect(port, '127.0.0.1');
  const reader = new FrameReader(frameCodec());
  const frames: string[] = [];
  sock.on('data', (c) => frames.push(...reader.push(c).map((f) => `${f.type} ${f.flags} ${td.decode(f.payload)}`)));
  const closed = new Promise((r) => sock.on('close', r));
  sock.write(encodeFrames([parseFrameNotation('command-name have-args echo'), parseFrameNotation('command-argument eoa \\x05\\x00\\x02\\x00valueok'), parseFrameNotation('command-data eos x')]));
  await closed;
  assert.deepEqual(frames, ['4 2 ok', '5 1 expected command frame; got 3 (command-data)']);
  await server.close();
});

test('socket: client over a Unix socket in os.tmpdir()', async () => {
  const p = path.join(os.tmpdir(), `wk-frames-${process.pid}-${Date.now()}.sock`);
  const server = new FrameSocketServer(handler);
  await server.listen({ path: p });
  const client = await FrameClient.connect({ path: p });
  assert.equal(td.decode(await client.call('echo', { value: 'unix' })), 'unix');
  await client.end();
  await server.close();
});

test('socket: the reader waits for the writer (a client that pipelines and never reads)', { timeout: 30_000 }, async () => {
  // An in-memory connection: the client's bytes all arrive at once, and the client reads nothing
  // (the server's writes never complete) until the test lets it.
  const { Duplex } = await import('node:stream');
  let drainClient!: () => void;
  const clientReads = new Promise<void>((r) => (drainClient = r));
  const stream = new Duplex({
    read() {},
    write(_chunk, _enc, cb) {
      void clientReads.then(() => cb());
    },
  });
  let queueFull!: () => void;
  const readingStopped = new Promise<void>((r) => (queueFull = r));
  let maxQueued = 0;
  const conn = serveConnection(
    stream,
    () => {
      maxQueued = Math.max(maxQueued, conn.queuedCommands);
      return 'x'.repeat(100);
    },
    { maxQueuedCommands: 8, onQueueFull: () => queueFull() },
  );
  const n = 5000;
  stream.push(encodeFrames(Array.from({ length: n }, () => parseFrameNotation('command-name eos echo'))));
  stream.push(null);
  // Without a bound the server takes all 5000 commands while none is answered (and this waits for
  // ever: the test's timeout fails it).
  await readingStopped;
  assert.ok(conn.queuedCommands <= 9, `${conn.queuedCommands} commands queued`);
  drainClient();
  await conn.done;
  assert.ok(maxQueued <= 9, `${maxQueued} commands queued at most`);
});

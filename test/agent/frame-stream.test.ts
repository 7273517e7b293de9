import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { frameStream } from '../../src/agent/sessions/frames.js';
import { FrameType, sessionCodec } from '../../src/agent/session-frames.js';
import { encodeToBytes } from '../../src/codecs/index.js';

test('PINGs from a peer that never reads: the reader waits for the writer, PONGs do not pile up', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  const daemonSide = await accepted;
  client.pause(); // never reads the PONGs
  client.on('error', () => {});
  const fs = frameStream(daemonSide, { keepalive: { intervalMs: 3_600_000, timeoutMs: 3_600_000 } });
  // The daemon side waits for its writer: seen as a call of drained() from its read loop.
  let waiting!: (held: number) => void;
  const waitsForWriter = new Promise<number>((r) => (waiting = r));
  const drained = fs.drained.bind(fs);
  fs.drained = () => {
    waiting(daemonSide.writableLength);
    return drained();
  };
  const running = fs.run(() => {}).catch(() => {});
  // 500,000 PINGs of 64 bytes (PONGs echo the payload): 34 MB, more than the kernel's socket buffers hold.
  const ping = encodeToBytes(sessionCodec(), { type: FrameType.PING, payload: new Uint8Array(64) });
  const batch = Buffer.concat(Array.from({ length: 10_000 }, () => ping));
  for (let i = 0; i < 50; i++) client.write(batch);
  try {
    const outcome = await Promise.race([
      waitsForWriter.then((held) => ({ what: 'waits for the writer', held })),
      // Without the bound: every PING is read (the client's buffer drains) and every PONG is held.
      new Promise<{ what: string; held: number }>((r) => client.once('drain', () => r({ what: 'read every PING', held: daemonSide.writableLength }))),
    ]);
    assert.equal(outcome.what, 'waits for the writer');
    assert.ok(outcome.held < 1024 * 1024, `${outcome.held} bytes of PONGs held`);
  } finally {
    fs.close();
    client.destroy();
    await running;
    await new Promise<void>((r) => server.close(() => r()));
  }
});

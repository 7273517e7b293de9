import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { Duplex, PassThrough } from 'node:stream';
import { channel, webChannel } from '../../src/channels/index.js';
import { encodeToBytes, ndjson, u32be, TruncatedFrameError, MalformedFrameError, FrameTooLargeError } from '../../src/codecs/index.js';
import { TimeoutError, AbortedError } from '../../src/errors.js';
import { concat, enc, sameBytes } from '../helpers/chunks.js';

type Pair = { client: net.Socket; server: net.Socket; close(): void };

async function socketPair(kind: 'unix' | 'tcp'): Promise<Pair> {
  const dir = kind === 'unix' ? fs.mkdtempSync(path.join(os.tmpdir(), 'wk-ch-')) : '';
  const srv = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => srv.once('connection', resolve));
  if (kind === 'unix') await new Promise<void>((r) => srv.listen(path.join(dir, 's.sock'), r));
  else await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const addr = srv.address();
  const client = typeof addr === 'string' ? net.connect(addr) : net.connect(addr!.port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  const server = await accepted;
  return {
    client,
    server,
    close() {
      client.destroy();
      server.destroy();
      srv.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c as Uint8Array);
  return concat(parts);
}

for (const kind of ['unix', 'tcp'] as const) {
  test(`${kind}: frames both ways, then a hijack in the middle of a burst sent in one write`, async () => {
    const p = await socketPair(kind);
    try {
      const srv = channel(p.server, ndjson());
      const cli = channel(p.client, ndjson());
      await cli.write({ hello: 1 });
      assert.deepEqual(await srv.read(), { hello: 1 });
      // One write: two messages, the switch command, then raw bytes.
      const raw = new Uint8Array(200_000);
      for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) & 255;
      p.client.write(concat([enc('{"n":1}\n{"n":2}\n{"hijack":true}\n'), raw]));
      p.client.end();
      assert.deepEqual(await srv.read(), { n: 1 });
      assert.deepEqual(await srv.read(), { n: 2 });
      assert.deepEqual(await srv.read(), { hijack: true });
      const rawStream = srv.hijack();
      const got = await readAll(rawStream);
      assert.equal(got.length, raw.length, 'no byte lost');
      sameBytes(got, raw, 'no byte reordered or duplicated');
      await assert.rejects(srv.read(), /hijacked/);
    } finally {
      p.close();
    }
  });

  test(`${kind}: switch codec mid-stream; the new codec starts at the exact next byte`, async () => {
    const p = await socketPair(kind);
    try {
      const srv = channel(p.server, ndjson());
      const frames = [enc('one'), enc(''), new Uint8Array(70_000).fill(5)];
      const u = u32be();
      p.client.write(concat([enc('{"switch":"u32be"}\n'), ...frames.map((f) => encodeToBytes(u, f))]));
      assert.deepEqual(await srv.read(), { switch: 'u32be' });
      const bin = srv.switchCodec(u32be());
      for (const f of frames) sameBytes(await bin.read(), f);
      // Writes use the new encoder too.
      await bin.write(enc('back'));
      const back = channel(p.client, u32be());
      sameBytes(await back.read(), enc('back'));
    } finally {
      p.close();
    }
  });
}

test('a complete frame already buffered is delivered without waiting for more input', async () => {
  const p = await socketPair('unix');
  try {
    const srv = channel(p.server, ndjson());
    p.client.write('{"a":1}\n{"a":2}\n'); // one write, no more input after it
    assert.deepEqual(await srv.read(), { a: 1 });
    assert.deepEqual(await srv.read({ timeout: 2000 }), { a: 2 });
  } finally {
    p.close();
  }
});

test('end of stream: null after the last frame; TruncatedFrameError if it ends inside a frame', async () => {
  const a = new PassThrough();
  const ch = channel(Duplex.from({ readable: a, writable: new PassThrough() }), ndjson());
  a.end('{"x":1}\n');
  assert.deepEqual(await ch.read(), { x: 1 });
  assert.equal(await ch.read(), null);
  const b = new PassThrough();
  const ch2 = channel(Duplex.from({ readable: b, writable: new PassThrough() }), ndjson());
  b.end('{"x":1}\n{"x"');
  assert.deepEqual(await ch2.read(), { x: 1 });
  await assert.rejects(ch2.read(), (e: unknown) => e instanceof TruncatedFrameError && e.remaining === 4);
});

test('a recoverable decode error rejects one read; the channel goes on', async () => {
  const a = new PassThrough();
  const ch = channel(Duplex.from({ readable: a, writable: new PassThrough() }), ndjson());
  a.write('nope\n{"ok":true}\n');
  await assert.rejects(ch.read(), MalformedFrameError);
  assert.deepEqual(await ch.read(), { ok: true });
});

test('write sends header and payload as parts under one cork; send/drained report backpressure', async () => {
  const wire = new PassThrough({ highWaterMark: 1024 });
  const chunks: Buffer[] = [];
  const ch = channel(Duplex.from({ readable: new PassThrough(), writable: wire }), u32be({ maxFrameLength: 1 << 21 }));
  const big = new Uint8Array(1 << 20).fill(9);
  await ch.write(new Uint8Array([1, 2]));
  const ok = ch.send(big);
  assert.equal(ok, false, 'a 1 MiB frame fills a 1 KiB buffer');
  const drained = ch.drained();
  const ended = new Promise((r) => wire.on('end', r));
  wire.on('data', (c: Buffer) => chunks.push(c));
  await drained;
  await ch.end();
  await ended;
  const all = Buffer.concat(chunks);
  assert.equal(all.length, 6 + 4 + big.length);
  assert.deepEqual([...all.subarray(0, 10)], [0, 0, 0, 2, 1, 2, 0, 0x10, 0, 0]);
  assert.ok(all.subarray(10).every((b) => b === 9));
});

test('web channel: the parts of a frame are written in order', async () => {
  const got: Uint8Array[] = [];
  const writable = new WritableStream<Uint8Array>({ write: (c) => void got.push(c) });
  const ch = webChannel({ readable: new ReadableStream<Uint8Array>(), writable }, u32be({ maxFrameLength: 1 << 20 }));
  const payload = new Uint8Array(8192).fill(1);
  await ch.write(payload);
  await ch.end();
  assert.deepEqual([...got[0]!], [0, 0, 0x20, 0]);
  assert.equal(got[1], payload);
});

test('a fatal decode error rejects that read and every later one (FrameReader rule)', async () => {
  const a = new PassThrough();
  const ch = channel(Duplex.from({ readable: a, writable: new PassThrough() }), u32be({ maxFrameLength: 4 }));
  a.write(new Uint8Array([0, 0, 0, 1, 7, 0, 0, 0, 9, 1, 2]));
  assert.deepEqual([...(await ch.read())!], [7]);
  let first: unknown;
  await assert.rejects(ch.read(), (e: unknown) => {
    first = e;
    return e instanceof FrameTooLargeError && e.fatal;
  });
  await assert.rejects(ch.read(), (e: unknown) => e === first);
  a.end(new Uint8Array([0, 0, 0, 1, 8]));
  await assert.rejects(ch.read(), (e: unknown) => e === first);
});

test('end of stream inside a frame: every read after it rejects with the same TruncatedFrameError', async () => {
  const a = new PassThrough();
  const ch = channel(Duplex.from({ readable: a, writable: new PassThrough() }), ndjson());
  a.end('{"x"');
  let first: unknown;
  await assert.rejects(ch.read(), (e: unknown) => {
    first = e;
    return e instanceof TruncatedFrameError;
  });
  await assert.rejects(ch.read(), (e: unknown) => e === first);
  assert.equal(ch.readableEnded, true);
});

test('read timeout and AbortSignal', async () => {
  const a = new PassThrough();
  const ch = channel(Duplex.from({ readable: a, writable: new PassThrough() }), ndjson());
  await assert.rejects(ch.read({ timeout: 20 }), TimeoutError);
  const ac = new AbortController();
  const pending = ch.read({ signal: ac.signal });
  ac.abort();
  await assert.rejects(pending, AbortedError);
  a.write('{"still":"works"}\n');
  assert.deepEqual(await ch.read(), { still: 'works' });
});

test('backpressure: the source is paused while frames are not read', async () => {
  const p = await socketPair('unix');
  try {
    const srv = channel(p.server, u32be(), { highWaterMark: 64 * 1024 });
    const frame = encodeToBytes(u32be(), new Uint8Array(1024));
    // Write 8 MiB without reading on the other side; the writer must block on drain.
    let blocked = false;
    for (let i = 0; i < 8 * 1024; i++) {
      if (!p.client.write(frame)) {
        blocked = true;
        break;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(blocked, 'the writer saw backpressure');
    assert.ok(srv.bufferedBytes < 1024 * 1024, `channel buffered ${srv.bufferedBytes} bytes`);
    assert.equal(p.server.isPaused(), true);
    assert.equal((await srv.read())!.length, 1024);
  } finally {
    p.close();
  }
});

test('writes wait for drain and keep order', async () => {
  const p = await socketPair('tcp');
  try {
    const cli = channel(p.client, u32be());
    const srv = channel(p.server, u32be());
    const big = new Uint8Array(256 * 1024);
    const writes = Array.from({ length: 32 }, (_, i) => cli.write(big.fill(i).slice()));
    for (let i = 0; i < 32; i++) {
      const f = (await srv.read())!;
      assert.equal(f[0], i);
      assert.equal(f.length, big.length);
    }
    await Promise.all(writes);
  } finally {
    p.close();
  }
});

test('WHATWG streams: frames, then hijack with leftovers first', async () => {
  const chunks = [enc('{"a":1}\n{"go":1}\nRAW'), enc('MORE')];
  const readable = new ReadableStream<Uint8Array>({
    pull(c) {
      const next = chunks.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
  });
  const written: Uint8Array[] = [];
  const writable = new WritableStream<Uint8Array>({ write: (c) => void written.push(c) });
  const ch = webChannel({ readable, writable }, ndjson());
  assert.deepEqual(await ch.read(), { a: 1 });
  assert.deepEqual(await ch.read(), { go: 1 });
  await ch.write({ reply: true });
  const raw = ch.hijack();
  const parts: Uint8Array[] = [];
  const reader = raw.readable.getReader();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    parts.push(r.value);
  }
  assert.equal(new TextDecoder().decode(concat(parts)), 'RAWMORE');
  const w = raw.writable.getWriter();
  await w.write(enc('x'));
  assert.equal(new TextDecoder().decode(concat(written)), '{"reply":true}\nx');
});

test('child-process stdio: frames through `cat` and back', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const ch = channel(Duplex.from({ readable: child.stdout, writable: child.stdin }), u32be());
    const sent = [enc('a'), new Uint8Array(100_000).fill(3), enc('')];
    for (const f of sent) await ch.write(f);
    for (const f of sent) sameBytes(await ch.read({ timeout: 5000 }), f);
    await ch.end();
    assert.equal(await ch.read({ timeout: 5000 }), null);
  } finally {
    child.kill();
  }
});

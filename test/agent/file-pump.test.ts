import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { PassThrough, Writable, type Duplex } from 'node:stream';
import fc from 'fast-check';
import { TruncatedFrameError } from '../../src/codecs/errors.js';
import { ConnectionClosedError } from '../../src/errors.js';
import { ChecksumError, HashStateError, SessionProtocolError } from '../../src/agent/errors.js';
import { blockPool, BlockPool, sharedBlockSizes } from '../../src/agent/block-pool.js';
import { receiveFile, sendFile, type FileSink, type FileSource } from '../../src/agent/file-pump.js';
import { InlineHash, OffloadedHash, sha256For, type StreamHash } from '../../src/agent/hash-offload.js';
import { TransferReceiver } from '../../src/agent/transfer.js';
import { splitAt } from '../helpers/chunks.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

/** A file in memory: reads from `data`, writes land in `out` at their positions. */
class MemoryFile implements FileSource, FileSink {
  out: Uint8Array;
  writes = 0;
  constructor(
    readonly data: Uint8Array = new Uint8Array(0),
    capacity = data.length,
  ) {
    this.out = new Uint8Array(capacity);
  }
  async read(buffer: Uint8Array, offset: number, length: number, position: number) {
    const n = Math.max(0, Math.min(length, this.data.length - position));
    buffer.set(this.data.subarray(position, position + n), offset);
    return { bytesRead: n };
  }
  async writev(buffers: Uint8Array[], position: number) {
    this.writes++;
    let n = 0;
    for (const b of buffers) {
      this.out.set(b, position + n);
      n += b.length;
    }
    return { bytesWritten: n };
  }
}

/** A connected pair of Unix sockets. */
async function socketPair(dir: string): Promise<[net.Socket, net.Socket]> {
  const file = path.join(dir, `p-${randomBytes(4).toString('hex')}.sock`);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(file, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(file);
  await new Promise<void>((r) => client.once('connect', r));
  const s = await accepted;
  server.close();
  return [client, s];
}

function hashes(): [string, () => StreamHash][] {
  return [
    ['inline', () => new InlineHash()],
    ['worker', () => new OffloadedHash()],
  ];
}

for (const [name, makeHash] of hashes()) {
  test(`sendFile → receiveFile over a Unix socket (${name} hash): sizes around the block size, file and digest intact`, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-pump-'));
    try {
      for (const size of [0, 1, 4095, 4096, 4097, 3 * 4096 + 7, 200_000]) {
        const data = randomBytes(size);
        const src = path.join(dir, 'src');
        const dst = path.join(dir, 'dst');
        writeFileSync(src, data);
        const [a, b] = await socketPair(dir);
        const inFh = await open(src, 'r');
        const outFh = await open(dst, 'w');
        const rx = new TransferReceiver(size, null);
        const received = receiveFile(b, rx, outFh, { blockSize: 4096, window: 3 * 4096, hash: makeHash() });
        const digest = await sendFile(inFh, size, a, { blockSize: 4096, window: 2 * 4096, hash: makeHash() });
        a.end(digest);
        await received;
        await inFh.close();
        await outFh.close();
        assert.deepEqual(Buffer.from(digest), sha(data), `sender digest, size ${size}`);
        assert.equal(rx.sha256, sha(data).toString('hex'), `receiver digest, size ${size}`);
        assert.ok(readFileSync(dst).equals(data), `file bytes, size ${size}`);
        a.destroy();
        b.destroy();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('receiveFile: same file for every way of splitting the stream, with small blocks', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.nat(), { maxLength: 12 }), fc.integer({ min: 1, max: 700 }), async (data, cuts, blockSize) => {
      const stream = Buffer.concat([data, sha(data)]);
      const io = new PassThrough();
      const file = new MemoryFile(undefined, data.length);
      const rx = new TransferReceiver(data.length, null);
      const done = receiveFile(io, rx, file, { blockSize, window: 2 * blockSize, hash: new InlineHash() });
      for (const c of splitAt(stream, cuts)) io.write(c);
      await done;
      assert.deepEqual(file.out, data);
      assert.equal(rx.sha256, sha(data).toString('hex'));
    }),
    { numRuns: 150 },
  );
});

async function expectFailure(stream: Uint8Array[], size: number, end: 'end' | 'destroy' | 'none', cls: new (...a: never[]) => Error, hash: StreamHash = new InlineHash()) {
  const io = new PassThrough();
  const file = new MemoryFile(undefined, size + 64);
  const done = receiveFile(io, new TransferReceiver(size, null), file, { hash });
  for (const c of stream) io.write(c);
  if (end === 'end') io.end();
  if (end === 'destroy') io.destroy();
  await assert.rejects(done, cls);
}

test('receiveFile: collectGarbage runs a minor GC once per collectEvery bytes received and a major one at the end', async () => {
  const data = randomBytes(10_000);
  const io = new PassThrough();
  let calls = 0;
  let majors = 0;
  const done = receiveFile(io, new TransferReceiver(data.length, null), new MemoryFile(undefined, data.length), {
    hash: new InlineHash(),
    collectEvery: 1000,
    collectGarbage: (kind) => {
      if (kind === 'minor') calls++;
      else majors++;
    },
  });
  for (const c of splitAt(Buffer.concat([data, sha(data)]), [100, 1500, 1501, 4000, 9999])) io.write(c);
  await done;
  // Received totals after each chunk: 100, 1500, 1501, 4000, 9999, 10000 -> crossings at 1500, 4000, 9999.
  assert.equal(calls, 3);
  await new Promise((r) => setImmediate(r));
  assert.equal(majors, 1, 'one major collection at the end');
});

test('receiveFile: wrong digest, early end, closed connection and bytes after the digest are typed errors', async () => {
  const data = randomBytes(10_000);
  const bad = Buffer.from(sha(data));
  bad[5]! ^= 1;
  await expectFailure([data, bad], data.length, 'none', ChecksumError);
  await expectFailure([data, bad], data.length, 'none', ChecksumError, new OffloadedHash());
  await expectFailure([data.subarray(0, 5000)], data.length, 'end', TruncatedFrameError);
  await expectFailure([data, sha(data).subarray(0, 31)], data.length, 'end', TruncatedFrameError);
  await expectFailure([data.subarray(0, 5000)], data.length, 'destroy', ConnectionClosedError);
  await expectFailure([Buffer.concat([data, sha(data), Buffer.from('x')])], data.length, 'none', SessionProtocolError);
});

test('receiveFile: a slow disk pauses the socket; memory stays within the window', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-pump-'));
  const [a, b] = await socketPair(dir);
  try {
    const size = 16 * 1024 * 1024;
    const data = randomBytes(size);
    const blockSize = 256 * 1024;
    const window = 4 * blockSize;
    let release: (() => void) | undefined;
    let gate = new Promise<void>((r) => (release = r));
    const file = new MemoryFile(undefined, size);
    const slow: FileSink = {
      writev: async (bufs, pos) => {
        await gate;
        return file.writev(bufs, pos);
      },
    };
    const rx = new TransferReceiver(size, null);
    const done = receiveFile(b, rx, slow, { blockSize, window, hash: new InlineHash() });
    const sender = new MemoryFile(data);
    const sending = sendFile(sender, size, a, { blockSize: 1024 * 1024 }).then((d) => a.end(d));
    // The receiver stops reading once its window is full (or, if it never did, the data ends).
    await Promise.race([once(b, 'pause'), once(b, 'end')]);
    const heldWhileStalled = rx.received;
    // Blocks in the window, one being written, one partly filled, and what sits in one 'data'
    // event; the socket's own kernel buffer is not read at all.
    assert.ok(heldWhileStalled <= window + 2 * blockSize + 64 * 1024, `received ${heldWhileStalled} bytes while the disk was stalled`);
    assert.ok(heldWhileStalled < size / 2);
    release!();
    gate = Promise.resolve();
    await sending;
    await done;
    assert.ok(Buffer.from(file.out).equals(data));
  } finally {
    a.destroy();
    b.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sendFile: a hash that falls behind holds the sender back (blocks out of the pool stay bounded)', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-pump-'));
  const [a, b] = await socketPair(dir);
  try {
    const blockSize = 4096;
    const size = 100 * blockSize;
    const data = randomBytes(size);
    const inner = new InlineHash();
    let gated = true;
    const held: [ArrayBuffer, (b: ArrayBuffer) => void][] = [];
    const slowHash: StreamHash = {
      update(chunks, recycle) {
        for (const c of chunks) {
          inner.update([c]);
          if (!recycle) continue;
          if (gated) held.push([c.buffer as ArrayBuffer, recycle]);
          else recycle(c.buffer as ArrayBuffer);
        }
      },
      digest: () => inner.digest(),
      abort: () => inner.abort(),
    };
    b.resume();
    let finished = false;
    const file = new MemoryFile(data);
    let reads = 0;
    const source: FileSource = {
      read: (...args: Parameters<MemoryFile['read']>) => {
        reads++;
        return file.read(...args);
      },
    };
    let written = 0;
    const sending = sendFile(source, size, a, { blockSize, window: 4 * blockSize, hash: slowHash, onProgress: () => written++ }).then((d) => {
      finished = true;
      return d;
    });
    // The sender is held back once every block it wrote has reached the hash and a whole turn of
    // the event loop passes without a new read or write (it would start one at once otherwise).
    for (;;) {
      const [r, w] = [reads, written];
      await new Promise(setImmediate);
      if (finished || (held.length === written && reads === r && written === w)) break;
    }
    assert.equal(finished, false);
    assert.ok(held.length > 0 && held.length <= 4 + 4, `${held.length} blocks waiting for the hash`);
    gated = false;
    for (const [buf, recycle] of held.splice(0)) recycle(buf);
    assert.deepEqual(Buffer.from(await sending), sha(data));
  } finally {
    a.destroy();
    b.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sendFile: a file that shrinks while being read is an error; a closed socket rejects', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-pump-'));
  try {
    const [a, b] = await socketPair(dir);
    b.resume();
    await assert.rejects(sendFile(new MemoryFile(randomBytes(1000)), 5000, a, { blockSize: 512 }), ChecksumError);
    a.destroy();
    b.destroy();
    const [c, d] = await socketPair(dir);
    d.destroy();
    await assert.rejects(sendFile(new MemoryFile(randomBytes(64 * 1024 * 1024)), 64 * 1024 * 1024, c as Duplex), (err: Error) => err instanceof ConnectionClosedError || (err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET');
    c.destroy();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('OffloadedHash: same digest as node:crypto; views are copied (their buffer stays usable); whole buffers come back', async () => {
  const parts = [randomBytes(100_000), randomBytes(1), randomBytes(65536)];
  const big = new Uint8Array(new ArrayBuffer(300));
  big.set(randomBytes(300));
  const view = big.subarray(10, 200);
  const expected = createHash('sha256');
  for (const p of parts) expected.update(p);
  expected.update(view);
  const viewCopy = Buffer.from(view);

  const owned = parts.map((p) => new Uint8Array(p)); // own ArrayBuffers, transferred
  const recycled: number[] = [];
  const h = new OffloadedHash();
  h.update(owned.slice(0, 2), (b) => recycled.push(b.byteLength));
  h.update([owned[2]!, view], (b) => recycled.push(b.byteLength));
  // A second hash at the same time keeps its own state.
  const h2 = new OffloadedHash();
  h2.update([new Uint8Array(Buffer.from('abc'))]);
  assert.deepEqual(Buffer.from(await h.digest()), expected.digest());
  assert.deepEqual(Buffer.from(await h2.digest()), sha(Buffer.from('abc')));
  assert.deepEqual(Buffer.from(view), viewCopy, 'the view and its buffer are untouched');
  assert.equal(big.byteLength, 300);
  assert.equal(owned[0]!.byteLength, 0, 'a whole buffer was moved to the worker');
  // Moved buffers come back from the worker; the view's buffer (copied) is free at once.
  assert.deepEqual(recycled.sort((x, y) => x - y), [1, 300, 65536, 100_000]);
  await assert.rejects(h.digest(), /twice/);
});

test('sha256For: inline below the threshold, on the worker from it; both agree', async () => {
  assert.ok(sha256For(10) instanceof InlineHash);
  const off = sha256For(100, 100);
  assert.ok(off instanceof OffloadedHash);
  const data = randomBytes(5000);
  off.update([new Uint8Array(data)]);
  const inl = sha256For(10);
  inl.update([data]);
  assert.deepEqual(await off.digest(), await inl.digest());
  const aborted = new OffloadedHash();
  aborted.update([new Uint8Array(10)]);
  aborted.abort();
});

test('BlockPool: blocks come back for reuse, up to a cap; other sizes and partial views are not kept', () => {
  const pool = new BlockPool(1024, 2);
  const a = pool.take();
  const b = pool.take();
  const c = pool.take();
  assert.equal(a.length, 1024);
  pool.give(a);
  pool.give(b.buffer as ArrayBuffer);
  pool.give(c); // over the cap
  assert.equal(pool.size, 2);
  pool.give(new Uint8Array(512));
  pool.give(pool.take().subarray(1));
  assert.equal(pool.size, 1);
  const again = pool.take();
  assert.ok(again.buffer === a.buffer || again.buffer === b.buffer);
  assert.equal(blockPool(4096), blockPool(4096), 'one shared pool per size');
});

test('transfers reuse the shared blocks: a second transfer allocates no new ones', async () => {
  const blockSize = 8192;
  const pool = blockPool(blockSize);
  const run = async () => {
    const data = randomBytes(20 * blockSize + 5);
    const io = new PassThrough();
    const file = new MemoryFile(undefined, data.length);
    const done = receiveFile(io, new TransferReceiver(data.length, null), file, { blockSize, window: 4 * blockSize, hash: new OffloadedHash() });
    io.write(Buffer.concat([data, sha(data)]));
    await done;
    assert.ok(Buffer.from(file.out).equals(data));
  };
  // The worker's last blocks come back after the digest: wait until every block made is free again.
  const give = pool.give.bind(pool);
  let gave: (() => void) | undefined;
  pool.give = (block) => {
    give(block);
    gave?.();
  };
  const allBack = async () => {
    while (pool.size < Math.min(pool.allocated, pool.maxFree)) await new Promise<void>((r) => (gave = r));
    gave = undefined;
  };
  try {
    await run();
    await allBack();
    const before = pool.allocated;
    assert.ok(pool.size >= 2, `${pool.size} free blocks after the first transfer`);
    await run();
    await allBack();
    // What the first transfer gave back is reused: at most a couple of new blocks.
    assert.ok(pool.allocated - before < 3, `${pool.allocated - before} new blocks in the second transfer`);
  } finally {
    pool.give = give;
  }
});

test('files smaller than a block do not leave a shared pool per size behind', async () => {
  for (const size of [1234, 4321, 77]) {
    const data = randomBytes(size);
    const io = new PassThrough();
    const file = new MemoryFile(undefined, size);
    const done = receiveFile(io, new TransferReceiver(size, null), file, { hash: new InlineHash() });
    io.write(Buffer.concat([data, sha(data)]));
    await done;
    assert.deepEqual(file.out, new Uint8Array(data));
  }
  for (const size of [1234, 4321, 77]) assert.ok(!sharedBlockSizes().includes(size), `a shared pool for ${size}-byte blocks`);
});

/** A hash that records what reaches it after `abort()` (a late I/O completion of an aborted transfer). */
class RecordingHash implements StreamHash {
  private readonly inner = new InlineHash();
  aborted = false;
  lateUpdates = 0;
  update(chunks: readonly Uint8Array[], recycle?: (buffer: ArrayBuffer) => void): void {
    if (this.aborted) this.lateUpdates++;
    this.inner.update(chunks, recycle);
  }
  digest(): Promise<Uint8Array> {
    return this.inner.digest();
  }
  abort(): void {
    this.aborted = true;
  }
}

test('receiveFile: a disk write that completes after the transfer was aborted does not reach the hash', async () => {
  const blockSize = 4096;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let writeStarted!: () => void;
  const started = new Promise<void>((r) => (writeStarted = r));
  let writeDone!: Promise<{ bytesWritten: number }>;
  const sink: FileSink = {
    writev: (bufs) => {
      writeStarted();
      writeDone = gate.then(() => ({ bytesWritten: bufs.reduce((n, b) => n + b.length, 0) }));
      return writeDone;
    },
  };
  const io = new PassThrough();
  for (const hash of [new RecordingHash(), new OffloadedHash()]) {
    const rx = new TransferReceiver(10 * blockSize, null);
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    try {
      const io2 = new PassThrough();
      const done = receiveFile(io2, rx, sink, { blockSize, hash });
      io2.write(randomBytes(blockSize));
      await started;
      io2.destroy();
      await assert.rejects(done, ConnectionClosedError);
      release();
      await writeDone;
      await new Promise((r) => setImmediate(r));
      if (hash instanceof RecordingHash) assert.equal(hash.lateUpdates, 0);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  }
  io.destroy();
});

test('sendFile: a socket write that completes after the transfer failed does not reach the hash', async () => {
  const held: ((err?: Error | null) => void)[] = [];
  let wrote!: () => void;
  const firstWrite = new Promise<void>((r) => (wrote = r));
  const out = new Writable({
    highWaterMark: 1 << 20,
    write(_chunk, _enc, cb) {
      held.push(cb);
      wrote();
    },
  });
  const hash = new RecordingHash();
  // The file is shorter than announced: the second block is short, after the first went out.
  const sending = sendFile(new MemoryFile(randomBytes(1500)), 4096, out as unknown as Duplex, { blockSize: 1024, hash });
  await firstWrite;
  await assert.rejects(sending, ChecksumError);
  for (const cb of held.splice(0)) cb();
  await new Promise((r) => setImmediate(r));
  assert.equal(hash.lateUpdates, 0);
  out.destroy();
});

test('OffloadedHash and InlineHash: update() after abort() drops the chunks (giving them back), after digest() throws', async () => {
  for (const make of [() => new OffloadedHash(), () => new InlineHash()]) {
    const h = make();
    h.abort();
    const back: ArrayBuffer[] = [];
    const block = new Uint8Array(64);
    h.update([block], (b) => back.push(b));
    assert.equal(back.length, 1);
    const d = make();
    await d.digest();
    assert.throws(() => d.update([new Uint8Array(4)]), HashStateError);
  }
});

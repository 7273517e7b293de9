import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { concatBytes } from '../../../src/bytes/text.js';
import { ARMCHAIR_FILE_END_MARKER, encodePacketHeader, PacketSession, UnsafeFileNameError } from '../../../src/protocols/packets/node.js';
import { pair } from './pair.js';

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

test('file transfer: 100 MiB over a Unix socket, streamed, SHA-256 checked, then ready', async () => {
  const p = await pair();
  try {
    const src = path.join(p.dir, 'big.bin');
    const out = createWriteStream(src);
    const block = randomBytes(1024 * 1024);
    for (let i = 0; i < 100; i++) {
      block[0] = i;
      if (!out.write(Buffer.from(block))) await once(out, 'drain');
    }
    // A file that contains Armchair's end marker and a tiny one.
    await new Promise<void>((r) => out.end(r));
    writeFileSync(path.join(p.dir, 'marker.bin'), concatBytes([Uint8Array.of(1, 2), ARMCHAIR_FILE_END_MARKER, Uint8Array.of(3)]));
    writeFileSync(path.join(p.dir, 'empty.bin'), new Uint8Array(0));
    const destDir = mkdtempSync(path.join(p.dir, 'dest-'));
    await p.b.send('init', 'before');
    const receiving = p.a.receiveFiles(destDir, { timeout: 60000 });
    const sent = p.b.sendFiles([src, path.join(p.dir, 'marker.bin'), path.join(p.dir, 'empty.bin')], { timeout: 60000 });
    const files = await receiving;
    const id = await sent;
    assert.equal(id, 2);
    assert.deepEqual(
      files.map((f) => [f.name, f.size]),
      [
        ['big.bin', 100 * 1024 * 1024],
        ['marker.bin', 3 + ARMCHAIR_FILE_END_MARKER.length],
        ['empty.bin', 0],
      ],
    );
    assert.equal(await sha256(path.join(destDir, 'big.bin')), await sha256(src));
    assert.deepEqual(readFileSync(path.join(destDir, 'marker.bin')), readFileSync(path.join(p.dir, 'marker.bin')));
    assert.equal((await p.a.receive())!.payload, 'before'); // not lost by receiveFiles
    assert.deepEqual(p.b.inFlight, [1]); // 'init' still unacknowledged; sending_files was acknowledged
  } finally {
    await p.close();
  }
});

test('compat mode: the Armchair raw stream with end marker; a file containing the marker is refused before sending', async () => {
  const p = await pair({ fileMode: 'compat' });
  try {
    const good = path.join(p.dir, 'good.txt');
    const bad = path.join(p.dir, 'bad.txt');
    writeFileSync(good, 'AFKJldkjva partial marker is fine\n'.repeat(1000));
    writeFileSync(bad, concatBytes([new Uint8Array(300000), ARMCHAIR_FILE_END_MARKER, Uint8Array.of(1)]));
    await assert.rejects(p.b.sendFiles([good, bad]), (e: unknown) => (e as { code: string }).code === 'WK_PACKET_MARKER_IN_FILE');
    assert.deepEqual(p.b.inFlight, []);
    const dest = mkdtempSync(path.join(p.dir, 'd-'));
    const [files] = await Promise.all([p.a.receiveFiles(dest, { timeout: 10000 }), p.b.sendFiles([good], { timeout: 10000 })]);
    assert.equal(files[0]!.name, 'good.txt');
    assert.deepEqual(readFileSync(path.join(dest, 'good.txt')), readFileSync(good));
  } finally {
    await p.close();
  }
});

test('file names with a path separator or .. are refused by the receiver; nothing is written; the stream goes on', async () => {
  const p = await pair();
  try {
    const s = new PacketSession();
    const body = new TextEncoder().encode(JSON.stringify([['../escape.txt']]));
    p.b.stream.write(concatBytes([encodePacketHeader(body.length, 0x06, 1), body, s.fileChunkHeader(2), Uint8Array.of(1, 2), s.fileChunkHeader(0)]));
    await p.b.send('home', 'after');
    const dest = mkdtempSync(path.join(p.dir, 'd-'));
    await assert.rejects(p.a.receiveFiles(dest, { timeout: 5000 }), UnsafeFileNameError);
    assert.equal(existsSync(path.join(p.dir, 'escape.txt')), false);
    assert.equal((await p.a.receive({ timeout: 5000 }))!.payload, 'after');
  } finally {
    await p.close();
  }
});

test('receiveFiles: a transfer cut off in the middle leaves an existing file as it was, and no temporary file', async () => {
  for (const cut of ['fin', 'rst'] as const) {
    const p = await pair();
    try {
      const destDir = mkdtempSync(path.join(p.dir, 'dest-'));
      const old = Buffer.from('twenty bytes of old.');
      writeFileSync(path.join(destDir, 'f.bin'), old);
      let sentSome!: () => void;
      const some = new Promise<void>((r) => (sentSome = r));
      const receiving = p.a.receiveFiles(destDir, { timeout: 20000 });
      receiving.catch(() => {});
      const sending = p.b.sendFileStreams([
        {
          name: 'f.bin',
          read: async function* () {
            yield randomBytes(1000);
            sentSome();
            await new Promise(() => {}); // the rest never comes
          },
        },
      ]);
      sending.catch(() => {});
      await some;
      // The receiver has the partial data once a file of the directory holds its 1,000 bytes.
      while (!readdirSync(destDir).some((n) => statSync(path.join(destDir, n)).size === 1000)) await new Promise((r) => setImmediate(r));
      const sock = (p.b as unknown as { stream: import('node:net').Socket }).stream;
      if (cut === 'fin') sock.end();
      else sock.destroy();
      await assert.rejects(receiving);
      assert.deepEqual(readFileSync(path.join(destDir, 'f.bin')), old);
      // The temporary file goes once the destroy has run.
      for (let i = 0; i < 1000 && readdirSync(destDir).length > 1; i++) await new Promise((r) => setTimeout(r, 5));
      assert.deepEqual(readdirSync(destDir), ['f.bin']);
    } finally {
      await p.close();
    }
  }
});

test('a peer gone (reset) in the middle of a file fails the transfer; errors the sink emits later do not crash the process', async () => {
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);
  process.on('uncaughtException', onCrash);
  const p = await pair();
  try {
    const src = path.join(p.dir, 'src.bin');
    writeFileSync(src, new Uint8Array(4 * 1024 * 1024));
    let first!: () => void;
    const firstWrite = new Promise<void>((r) => (first = r));
    const sinks: Writable[] = [];
    // A disk that is slow (a write pending when the transfer fails) and whose destroy reports an
    // error, as a file stream does when it is destroyed with a write in flight (ERR_STREAM_DESTROYED).
    const open = () => {
      const sink = new Writable({
        highWaterMark: 1,
        write(_chunk, _enc, cb) {
          first();
          setTimeout(cb, 1);
        },
        destroy(_err, cb) {
          setImmediate(() => cb(Object.assign(new Error('write after the output was destroyed'), { code: 'ERR_STREAM_DESTROYED' })));
        },
      });
      sinks.push(sink);
      return sink;
    };
    const receiving = p.a.receiveFiles(mkdtempSync(path.join(p.dir, 'd-')), { timeout: 20000, open });
    p.b.sendFiles([src], { timeout: 20000 }).catch(() => {});
    await firstWrite;
    // (A Unix socket cannot send an RST: the sender's side is destroyed, the receiver sees it gone mid-file.)
    p.b.stream.destroy();
    await assert.rejects(receiving);
    // (Not events.once: it would take the sink's error as its own.)
    await Promise.all(sinks.map((s) => (s.closed ? undefined : new Promise((r) => s.on('close', r)))));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(crashes, []);
  } finally {
    process.off('uncaughtException', onCrash);
    await p.close();
  }
});

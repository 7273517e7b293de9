import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import { concatBytes } from '../../../src/bytes/text.js';
import { ConnectionClosedError, TimeoutError } from '../../../src/errors.js';
import {
  encodePacketHeader,
  PacketConnection,
  PacketErrorStateError,
  PacketSession,
  SEED_FILE_END_MARKER,
  UnknownPacketIdError,
  UnknownPacketTypeError,
  UnsafeFileNameError,
  type PacketConnectionOptions,
} from '../../../src/protocols/packets/index.js';

interface Pair {
  a: PacketConnection;
  b: PacketConnection;
  dir: string;
  close(): Promise<void>;
}

async function pair(optsA: PacketConnectionOptions = {}, optsB: PacketConnectionOptions = optsA): Promise<Pair> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-packets-'));
  const sock = path.join(dir, 's.sock');
  const server = net.createServer();
  server.listen(sock);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect(sock);
  await once(client, 'connect');
  const [srv] = (await accepted) as [net.Socket];
  server.close();
  const a = new PacketConnection(client, optsA);
  const b = new PacketConnection(srv, optsB);
  return {
    a,
    b,
    dir,
    close: async () => {
      client.destroy();
      srv.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function flushed(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

test('send, receive, ack; the window allows exactly N in flight, the next send waits for a ready', async () => {
  const p = await pair({ window: 2 });
  try {
    assert.equal(await p.a.send('init', ['robot', 1]), 1);
    assert.equal(await p.a.send('make', { n: 2 }), 2);
    let thirdDone = false;
    const third = p.a.send('mix', [3]).then((id) => {
      thirdDone = true;
      return id;
    });
    const r1 = await p.b.receive();
    const r2 = await p.b.receive();
    assert.deepEqual([r1!.type, r1!.id, r1!.payload], ['init', 1, ['robot', 1]]);
    assert.deepEqual([r2!.type, r2!.id, r2!.payload], ['make', 2, { n: 2 }]);
    await flushed();
    assert.equal(thirdDone, false);
    assert.deepEqual(p.a.inFlight, [1, 2]);
    await p.b.ack(r2!);
    assert.equal(await third, 3);
    assert.deepEqual(p.a.inFlight, [1, 3]);
    const r3 = await p.b.receive();
    assert.equal(r3!.id, 3);
    await p.b.ack(r1!);
    await p.b.ack(r3!);
    await p.a.drain({ timeout: 5000 });
    assert.deepEqual(p.a.inFlight, []);
  } finally {
    await p.close();
  }
});

test('urgent packets interleaved with acknowledgements are delivered, never lost; they skip the window', async () => {
  const p = await pair({ window: 1 });
  try {
    await p.a.send('make', 1);
    const second = p.a.send('make', 2); // waits for the window
    assert.equal(await p.a.send('loc_req'), 1); // urgent: at once, current id
    const got = await p.b.receive();
    assert.equal(got!.type, 'make');
    const urgentAtB = await p.b.receive();
    assert.deepEqual([urgentAtB!.type, urgentAtB!.id, urgentAtB!.urgent], ['loc_req', 1, true]);
    // b answers with urgent packets around the ready that a's waiting send consumes.
    await p.b.send('loc_resp', [10, 20]);
    await p.b.send('stopped');
    await p.b.ack(got!);
    await p.b.send('save', ['s']);
    assert.equal(await second, 2);
    const seen = [await p.a.receive(), await p.a.receive(), await p.a.receive()].map((x) => [x!.type, x!.payload]);
    assert.deepEqual(seen, [
      ['loc_resp', [10, 20]],
      ['stopped', undefined],
      ['save', ['s']],
    ]);
  } finally {
    await p.close();
  }
});

test('error packet: sends and receives fail with its payload until resetError; the window is cleared', async () => {
  const p = await pair({ window: 2 });
  try {
    await p.a.send('make');
    await p.a.send('make');
    const blocked = p.a.send('make');
    await p.b.send('error', ['disk full']);
    await p.b.send('home');
    await assert.rejects(blocked, (e: unknown) => e instanceof PacketErrorStateError && (e.payload as string[])[0] === 'disk full');
    await assert.rejects(p.a.receive(), PacketErrorStateError);
    await assert.rejects(p.a.send('make'), PacketErrorStateError);
    assert.equal(p.a.inError, true);
    assert.deepEqual(p.a.errorPayload, ['disk full']);
    p.a.resetError();
    assert.deepEqual(p.a.inFlight, []);
    const next = await p.a.receive({ timeout: 5000 });
    assert.equal(next!.type, 'home');
    assert.equal(await p.a.send('make'), 3); // the blocked send never took an id
  } finally {
    await p.close();
  }
});

test('unknown type byte and ready for an unknown id: typed protocol errors, then the stream goes on', async () => {
  const p = await pair();
  try {
    const ackBody = new TextEncoder().encode('[42]');
    p.b.stream.write(concatBytes([encodePacketHeader(0, 0xee, 9), encodePacketHeader(ackBody.length, 0x03, 10), ackBody]));
    await p.b.send('home', 'x');
    await assert.rejects(p.a.receive(), (e: unknown) => e instanceof UnknownPacketTypeError && /0xee/.test(e.message));
    await assert.rejects(p.a.receive(), (e: unknown) => e instanceof UnknownPacketIdError && e.ackedId === 42);
    assert.equal((await p.a.receive())!.payload, 'x');
  } finally {
    await p.close();
  }
});

test('receiveFirst compares the type; keeps or discards the others', async () => {
  const p = await pair({ window: 10 });
  try {
    await p.b.send('init', 1);
    await p.b.send('make', 2);
    await p.b.send('mix', 3);
    await p.b.send('home', 4);
    assert.equal((await p.a.receiveFirst('make'))!.payload, 2);
    assert.equal((await p.a.receiveFirst('home', { others: 'discard' }))!.payload, 4);
    await p.b.send('save', 5);
    assert.equal((await p.a.receive())!.type, 'save'); // init and mix were discarded
    await p.b.send('init', 6);
    await p.b.send('make', 7);
    assert.equal((await p.a.receiveFirst('make'))!.payload, 7);
    assert.equal((await p.a.receive())!.payload, 6); // kept
  } finally {
    await p.close();
  }
});

test('waits: timeout and abort; end of stream gives null to receive and fails window waits', async () => {
  const p = await pair({ window: 1 });
  try {
    await assert.rejects(p.a.receive({ timeout: 20 }), TimeoutError);
    await p.a.send('make');
    await assert.rejects(p.a.send('make', undefined, { timeout: 20 }), TimeoutError);
    const ac = new AbortController();
    const aborted = p.a.send('make', undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, (e: unknown) => (e as { code: string }).code === 'WK_ABORTED');
    const waiting = p.a.send('make');
    p.b.stream.end();
    await assert.rejects(waiting, ConnectionClosedError);
    assert.equal(await p.a.receive(), null);
  } finally {
    await p.close();
  }
});

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
    // A file that contains the seed's end marker and a tiny one.
    await new Promise<void>((r) => out.end(r));
    writeFileSync(path.join(p.dir, 'marker.bin'), concatBytes([Uint8Array.of(1, 2), SEED_FILE_END_MARKER, Uint8Array.of(3)]));
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
        ['marker.bin', 3 + SEED_FILE_END_MARKER.length],
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

test('compat mode: the seed raw stream with end marker; a file containing the marker is refused before sending', async () => {
  const p = await pair({ fileMode: 'compat' });
  try {
    const good = path.join(p.dir, 'good.txt');
    const bad = path.join(p.dir, 'bad.txt');
    writeFileSync(good, 'AFKJldkjva partial marker is fine\n'.repeat(1000));
    writeFileSync(bad, concatBytes([new Uint8Array(300000), SEED_FILE_END_MARKER, Uint8Array.of(1)]));
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

test('close drains the window first, then ends the stream', async () => {
  const p = await pair();
  try {
    await p.a.send('make');
    let closed = false;
    const closing = p.a.close({ timeout: 5000 }).then(() => (closed = true));
    const got = await p.b.receive();
    await flushed();
    assert.equal(closed, false);
    await p.b.ack(got!);
    await closing;
    assert.equal(await p.b.receive(), null);
  } finally {
    await p.close();
  }
});

/** Both ends in TypeScript over real Unix sockets in os.tmpdir(). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { encodeToBytes, FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../../../src/codecs/index.js';
import { AbortedError, ConnectionClosedError, TimeoutError } from '../../../src/errors.js';
import {
  ConnectError,
  DelimitedServer,
  HandshakeError,
  ServerClosedError,
  SocketPathError,
  connect,
  DelimitedUsageError,
  listen,
  messageCodec,
  probeSocket,
} from '../../../src/protocols/delimited/node.js';

const enc = new TextEncoder();

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'wk-delim-'));
}

function umaskNow(): number {
  const m = /^Umask:\s*([0-7]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return parseInt(m![1]!, 8);
}

/** A raw socket to the server, to play a misbehaving client. */
function rawConnect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p }, () => resolve(s));
    s.once('error', reject);
  });
}

/** A raw server to play a misbehaving peer for the client. */
async function rawServer(p: string, onConn: (s: net.Socket) => void): Promise<net.Server> {
  const srv = net.createServer(onConn);
  await new Promise<void>((r) => srv.listen(p, r));
  return srv;
}

test('the socket is 0600 right after listen, with a permissive umask, and the umask is untouched', async () => {
  const dir = await tmpDir();
  const old = process.umask(0o000); // a naive bind would now create 0777
  try {
    const before = umaskNow();
    const server = await listen({ path: path.join(dir, 'ctl.sock') });
    const st = await fsp.stat(server.path);
    assert.equal(umaskNow(), before, 'process umask unchanged');
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await fsp.readdir(dir), ['ctl.sock'], 'no private directory left behind');
    await server.close();
    assert.deepEqual(await fsp.readdir(dir), [], 'socket file removed on close');
  } finally {
    process.umask(old);
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('the socket path never appears with another mode (watched while listening)', async () => {
  const dir = await tmpDir();
  const old = process.umask(0o000);
  const seen: number[] = [];
  const target = path.join(dir, 's.sock');
  let stop = false;
  // Poll the final name as fast as the loop allows while the server binds.
  const poller = (async () => {
    while (!stop) {
      try {
        seen.push((await fsp.lstat(target)).mode & 0o777);
      } catch {
        // not there yet
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  try {
    for (let i = 0; i < 10; i++) {
      const server = await listen({ path: target });
      await server.close();
    }
  } finally {
    stop = true;
    await poller;
    process.umask(old);
    await fsp.rm(dir, { recursive: true, force: true });
  }
  assert.ok(seen.every((m) => m === 0o600), `modes seen: ${[...new Set(seen)].map((m) => m.toString(8))}`);
});

test('handshake, text messages both ways (empty, non-ASCII, large), QUIT, end of stream', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'a.sock') });
  try {
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000 }), connect(server.path, { timeout: 5000 })]);
    const big = 'é'.repeat(300_000);
    for (const m of ['hello', '', 'héllo → 世界 🎉', big]) {
      await sc.send(m);
      const got = await cc.receive({ timeout: 5000 });
      assert.equal(got, m);
      await cc.send(`re:${got.length}`);
      assert.equal(await sc.receive({ timeout: 5000 }), `re:${m.length}`);
    }
    await sc.send('QUIT');
    assert.equal(await cc.receive({ timeout: 5000 }), 'QUIT');
    cc.close();
    await assert.rejects(sc.receive({ timeout: 5000 }), (e: unknown) => e instanceof ConnectionClosedError && /peer closed/.test(e.message));
    sc.close();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a client may connect before accept() is called (as in the seed)', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'early.sock') });
  try {
    const clientP = connect(server.path, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, 20));
    const sc = await server.accept({ timeout: 5000 });
    const cc = await clientP;
    await cc.send('first');
    assert.equal(await sc.receive({ timeout: 5000 }), 'first');
    cc.close();
    sc.close();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('binary messages', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'b.sock') });
  try {
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000, binary: true }), connect(server.path, { timeout: 5000, binary: true })]);
    const bytes = new Uint8Array([0, 0xff, 0x25, 0x24, 0xc3]);
    await cc.send(bytes);
    await cc.send(new Uint8Array(0));
    assert.deepEqual(Array.from(await sc.receive({ timeout: 5000 })), Array.from(bytes));
    assert.equal((await sc.receive({ timeout: 5000 })).length, 0);
    cc.close();
    sc.close();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('messages sent together with READY are not lost; a bad message errors alone, the next decodes', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'c.sock') });
  try {
    const raw = await rawConnect(server.path);
    const codec = messageCodec();
    // READY, a good message, invalid base64, invalid UTF-8, a good message: all in one write.
    raw.write(Buffer.concat([encodeToBytes(codec, 'READY'), encodeToBytes(codec, 'one'), enc.encode('%!!!!$%/w==$'), encodeToBytes(codec, 'two')]));
    const sc = await server.accept({ timeout: 5000 });
    assert.equal(await sc.receive({ timeout: 5000 }), 'one');
    await assert.rejects(sc.receive({ timeout: 5000 }), MalformedFrameError);
    await assert.rejects(sc.receive({ timeout: 5000 }), /UTF-8/);
    assert.equal(await sc.receive({ timeout: 5000 }), 'two');
    // The server answered OK.
    const answer = await new Promise<Buffer>((r) => raw.once('data', r));
    assert.equal(answer.toString(), '%T0s=$');
    // A message cut by the peer closing is a truncation, not silence.
    raw.end('%T0s');
    await assert.rejects(sc.receive({ timeout: 5000 }), TruncatedFrameError);
    sc.close();
    raw.destroy();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('maximum message size is enforced over the socket', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'm.sock') });
  try {
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000, maxMessageLength: 1024 }), connect(server.path, { timeout: 5000 })]);
    await cc.send('x'.repeat(10_000));
    await cc.send('small');
    await assert.rejects(sc.receive({ timeout: 5000 }), FrameTooLargeError);
    assert.equal(await sc.receive({ timeout: 5000 }), 'small');
    cc.close();
    sc.close();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a client that closes before READY gives a clear error (the original spins forever)', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'd.sock') });
  try {
    const raw = await rawConnect(server.path);
    raw.end();
    await assert.rejects(server.accept({ timeout: 5000 }), (e: unknown) => e instanceof HandshakeError && /closed the connection while waiting for READY/.test(e.message));
    // Half a READY then close.
    const raw2 = await rawConnect(server.path);
    raw2.end('%UkVB');
    await assert.rejects(server.accept({ timeout: 5000 }), /waiting for READY/);
    // A wrong word.
    const raw3 = await rawConnect(server.path);
    raw3.write(encodeToBytes(messageCodec(), 'HELLO'));
    await assert.rejects(server.accept({ timeout: 5000 }), /got "HELLO" while waiting for READY/);
    raw3.destroy();
    // Bad base64 during the handshake.
    const raw4 = await rawConnect(server.path);
    raw4.write('%@@@@$');
    await assert.rejects(server.accept({ timeout: 5000 }), (e: unknown) => e instanceof HandshakeError && e.cause instanceof MalformedFrameError);
    raw4.destroy();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a client that never says READY times out; accept times out; abort works', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'e.sock') });
  try {
    await assert.rejects(server.accept({ timeout: 30 }), (e: unknown) => e instanceof TimeoutError && /accept/.test(e.message));
    const ac = new AbortController();
    const p = server.accept({ signal: ac.signal });
    ac.abort();
    await assert.rejects(p, AbortedError);
    const raw = await rawConnect(server.path);
    await assert.rejects(server.accept({ timeout: 5000, handshakeTimeout: 30 }), (e: unknown) => e instanceof TimeoutError && /handshake/.test(e.message));
    await new Promise<void>((r) => (raw.destroyed ? r() : raw.once('close', () => r())));
    assert.ok(raw.destroyed, 'the server closed the silent client');
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('handshakes run concurrently: a silent client does not delay the next one', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'h.sock') });
  try {
    // Silent clients first, one while no accept() waits and one while it does.
    const before = await rawConnect(server.path);
    const first = server.accept({ timeout: 60_000, handshakeTimeout: 60_000 });
    const during = await rawConnect(server.path);
    const [sc, cc] = await Promise.all([first, connect(server.path, { timeout: 60_000 })]);
    await cc.send('hi');
    assert.equal(await sc.receive({ timeout: 5000 }), 'hi');
    // Two clients at once: the one handshaken while no accept() waits is kept for the next accept().
    const clients = Promise.all([connect(server.path, { timeout: 60_000 }), connect(server.path, { timeout: 60_000 })]);
    const s2 = await server.accept({ timeout: 60_000, handshakeTimeout: 60_000 });
    const s3 = await server.accept({ timeout: 60_000, handshakeTimeout: 60_000 });
    const [c2, c3] = await clients;
    await Promise.all([c2!.send('2'), c3!.send('3')]);
    assert.deepEqual([await s2.receive({ timeout: 5000 }), await s3.receive({ timeout: 5000 })].sort(), ['2', '3']);
    for (const c of [sc, cc, c2!, c3!, s2, s3]) c.close();
    // close() ends the silent ones still in their handshake.
    const closed = Promise.all([before, during].map((r) => new Promise<void>((res) => (r.destroyed ? res() : r.once('close', () => res())))));
    await server.close();
    await closed;
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('close() wakes a pending accept(); accept after close rejects', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'f.sock') });
  const check = assert.rejects(server.accept({ timeout: 5000 }), ServerClosedError);
  await server.close();
  await check;
  await assert.rejects(server.accept(), ServerClosedError);
  await fsp.rm(dir, { recursive: true, force: true });
});

test('client: server closing before OK, a wrong answer, silence, no socket', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'g.sock');
  const servers: net.Server[] = [];
  try {
    let mode: 'close' | 'wrong' | 'silent' = 'close';
    const held: net.Socket[] = [];
    servers.push(
      await rawServer(p, (s) => {
        held.push(s);
        s.once('data', () => {
          if (mode === 'close') s.end();
          else if (mode === 'wrong') s.write(encodeToBytes(messageCodec(), 'NOPE'));
        });
      }),
    );
    await assert.rejects(connect(p, { timeout: 5000 }), (e: unknown) => e instanceof HandshakeError && /waiting for OK/.test(e.message));
    mode = 'wrong';
    await assert.rejects(connect(p, { timeout: 5000 }), /got "NOPE" while waiting for OK/);
    mode = 'silent';
    await assert.rejects(connect(p, { timeout: 50 }), TimeoutError);
    const ac = new AbortController();
    const pending = connect(p, { signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    await assert.rejects(pending, AbortedError);
    for (const s of held) s.destroy();
    await assert.rejects(connect(path.join(dir, 'none.sock'), { timeout: 5000 }), (e: unknown) => e instanceof ConnectError && e.code === 'WK_CONNECT');
  } finally {
    for (const s of servers) s.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('receive() with timeout and AbortSignal; end of stream says the peer closed', async () => {
  const dir = await tmpDir();
  const server = await listen({ path: path.join(dir, 'h.sock') });
  try {
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000 }), connect(server.path, { timeout: 5000 })]);
    await assert.rejects(cc.receive({ timeout: 20 }), TimeoutError);
    const ac = new AbortController();
    const r = cc.receive({ signal: ac.signal });
    ac.abort();
    await assert.rejects(r, AbortedError);
    // The connection still works after a timed-out read.
    await sc.send('still here');
    assert.equal(await cc.receive({ timeout: 5000 }), 'still here');
    await sc.end();
    await assert.rejects(cc.receive({ timeout: 5000 }), /peer closed the connection/);
    assert.equal(await cc.receiveOrEnd({ timeout: 5000 }), null);
    cc.close();
    sc.close();
  } finally {
    await server.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a stale socket is replaced; a live one and a regular file are refused', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'i.sock');
  try {
    // Stale: a socket file whose server is gone (bound, then the listening fd closed without unlink).
    const stale = net.createServer();
    await new Promise<void>((r) => stale.listen(p, r));
    const ino = (await fsp.lstat(p)).ino;
    // Keep the file: move it aside before close (libuv unlinks on close), then back.
    await fsp.rename(p, p + '.keep');
    await new Promise<void>((r) => stale.close(() => r()));
    await fsp.rename(p + '.keep', p);
    assert.equal(await probeSocket(p), 'stale');
    const server = await listen({ path: p });
    assert.notEqual((await fsp.lstat(p)).ino, ino, 'stale socket replaced');
    assert.equal(await probeSocket(p), 'live');
    // Live: a second server refuses to steal it; the first keeps working.
    await assert.rejects(listen({ path: p }), (e: unknown) => e instanceof SocketPathError && e.code === 'WK_ADDRESS_IN_USE');
    // (The refused attempt probed with a connection that closed at once: the first server sees it
    // as a client that closed before READY.)
    await assert.rejects(server.accept({ timeout: 5000 }), HandshakeError);
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000 }), connect(p, { timeout: 5000 })]);
    await cc.send('ok');
    assert.equal(await sc.receive({ timeout: 5000 }), 'ok');
    cc.close();
    sc.close();
    await server.close();
    // Not a socket.
    const file = path.join(dir, 'file.sock');
    await fsp.writeFile(file, 'data');
    await assert.rejects(listen({ path: file }), (e: unknown) => e instanceof SocketPathError && e.code === 'WK_PATH_NOT_SOCKET');
    assert.equal(await fsp.readFile(file, 'utf8'), 'data', 'file untouched');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('close() does not remove a socket file that is no longer its own', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'j.sock');
  try {
    const server = await listen({ path: p });
    await fsp.unlink(p);
    await fsp.writeFile(p, 'someone else');
    await server.close();
    assert.equal(await fsp.readFile(p, 'utf8'), 'someone else');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('listen(address) and connect(address): the { path } form, the deprecated static and string forms, TCP refused', async () => {
  const dir = await tmpDir();
  try {
    const server = new DelimitedServer({ maxPending: 2 });
    assert.equal(await server.listen({ path: path.join(dir, 'k.sock') }), server);
    assert.deepEqual(server.address, { path: server.path });
    await assert.rejects(server.listen({ path: path.join(dir, 'k2.sock') }), (e: unknown) => e instanceof DelimitedUsageError && e.code === 'WK_BUSY');
    const [sc, cc] = await Promise.all([server.accept({ timeout: 5000 }), connect({ path: server.path }, { timeout: 5000 })]);
    await cc.send('hi');
    assert.equal(await sc.receive({ timeout: 5000 }), 'hi');
    sc.close();
    cc.close();
    await server.close();

    const legacy = await DelimitedServer.listen(path.join(dir, 'l.sock'));
    const [ls, lc] = await Promise.all([legacy.accept({ timeout: 5000 }), connect(legacy.path, { timeout: 5000 })]);
    ls.close();
    lc.close();
    await legacy.close();

    await assert.rejects(
      listen({ host: '127.0.0.1', port: 0 }),
      (e: unknown) => e instanceof DelimitedUsageError && e.code === 'WK_ADDRESS_UNSUPPORTED' && e.origin === 'local',
    );
    await assert.rejects(new DelimitedServer().listen({ host: '::1', port: 1 }), DelimitedUsageError);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

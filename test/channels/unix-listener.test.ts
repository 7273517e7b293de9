/** listenUnixSocket and friends over real Unix sockets in os.tmpdir(). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync, watch } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  NotASocketError,
  SocketInUseError,
  UnixSocketPathError,
  clearStaleUnixSocket,
  listenUnixSocket,
  probeUnixSocket,
  type UnixListener,
} from '../../src/channels/index.js';
import { AbortedError, WirekitError } from '../../src/errors.js';

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'wk-ul-'));
}

function umaskNow(): number {
  const m = /^Umask:\s*([0-7]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return parseInt(m![1]!, 8);
}

/** Runs `fn` with a umask of 0, under which a plain bind() makes a 0777 socket. */
async function withOpenUmask<T>(fn: () => Promise<T>): Promise<T> {
  const old = process.umask(0o000);
  try {
    return await fn();
  } finally {
    process.umask(old);
  }
}

/** A socket file whose server is gone: bound, moved aside while the server closes, moved back. */
async function makeStaleSocket(p: string): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(p, r));
  const ino = (await fsp.lstat(p)).ino;
  // libuv unlinks the bound path on close: keep the file by moving it aside meanwhile.
  await fsp.rename(p, p + '.keep');
  await new Promise<void>((r) => srv.close(() => r()));
  await fsp.rename(p + '.keep', p);
  return ino;
}

/** Connects, sends `text`, resolves with what the server echoes back. */
function echoOnce(p: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path: p });
    let got = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.end(text));
    s.on('data', (d: string) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

function echoServer(): net.Server {
  return net.createServer((s) => s.pipe(s));
}

function connectError(p: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path: p });
    s.on('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
  });
}

test('the socket is 0600 right after listen under a 000 umask; umask and parent unchanged; close removes it', async () => {
  const dir = await tmpDir();
  try {
    await fsp.chmod(dir, 0o755);
    const parentBefore = await fsp.stat(dir);
    await withOpenUmask(async () => {
      const before = umaskNow();
      const l = await listenUnixSocket(path.join(dir, 'a.sock'), { server: echoServer() });
      assert.equal(umaskNow(), before, 'process umask untouched');
      assert.equal(l.path, path.join(dir, 'a.sock'));
      assert.ok(path.isAbsolute(l.path));
      const st = await fsp.lstat(l.path);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o600);
      const parentAfter = await fsp.stat(dir);
      assert.equal(parentAfter.mode, parentBefore.mode, 'parent directory mode unchanged');
      assert.equal(parentAfter.uid, parentBefore.uid);
      assert.deepEqual(await fsp.readdir(dir), ['a.sock'], 'no private directory left behind');
      assert.equal(await echoOnce(l.path, 'hello'), 'hello');
      assert.ok(l.server.listening);
      await l.close();
      await l.close(); // idempotent
      assert.equal(l.server.listening, false);
      assert.deepEqual(await fsp.readdir(dir), [], 'socket file removed on close');
      assert.equal(await connectError(l.path), 'ENOENT');
    });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('another mode is honoured; a relative path is resolved', async () => {
  const dir = await tmpDir();
  try {
    const rel = path.relative(process.cwd(), path.join(dir, 'b.sock'));
    const l = await withOpenUmask(() => listenUnixSocket(rel, { mode: 0o660, backlog: 8 }));
    assert.equal(l.path, path.join(dir, 'b.sock'));
    assert.equal((await fsp.lstat(l.path)).mode & 0o777, 0o660);
    await l.close();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('watched while listening: the final name never shows another mode, the private directory is 0700', async () => {
  const dir = await tmpDir();
  const target = path.join(dir, 'w.sock');
  const plainTarget = path.join(dir, 'plain.sock');
  const finalModes: number[] = [];
  const plainModes: number[] = [];
  const privateModes: number[] = [];
  let waiters: Array<() => void> = [];
  const record = async (p: string, into: number[]) => {
    try {
      into.push((await fsp.lstat(p)).mode & 0o777);
      for (const w of waiters) w();
      waiters = [];
    } catch {
      // not there
    }
  };
  const look = async (file: string | null) => {
    await Promise.all([record(target, finalModes), record(plainTarget, plainModes)]);
    if (file?.startsWith('.wk')) {
      try {
        privateModes.push((await fsp.lstat(path.join(dir, file))).mode & 0o777);
      } catch {
        // already gone
      }
    }
  };
  // Every inotify event in the directory, plus a poller as fast as the loop allows.
  const watcher = watch(dir, (_event, file) => void look(file));
  let stop = false;
  const poller = (async () => {
    while (!stop) {
      await look(null);
      await new Promise((r) => setImmediate(r));
    }
  })();
  /** Resolves once the watcher or poller has seen a watched name (it stays until close). */
  const seen = () => new Promise<void>((r) => waiters.push(r));
  try {
    await withOpenUmask(async () => {
      // The watcher does see a socket's mode at creation: a plain bind under umask 000 shows 0777.
      const plain = net.createServer();
      let saw = seen();
      await new Promise<void>((r) => plain.listen(plainTarget, r));
      await saw;
      await new Promise<void>((r) => plain.close(() => r()));
      for (let i = 0; i < 20; i++) {
        saw = seen();
        const l: UnixListener = await listenUnixSocket(target);
        await saw;
        await l.close();
      }
    });
  } finally {
    stop = true;
    await poller;
    watcher.close();
    await fsp.rm(dir, { recursive: true, force: true });
  }
  assert.ok(plainModes.includes(0o777), `a plain bind is seen as 0777 (seen: ${plainModes.map((m) => m.toString(8))})`);
  assert.ok(finalModes.length >= 10, `the final name was observed (${finalModes.length} times)`);
  assert.ok(finalModes.every((m) => m === 0o600), `modes seen: ${[...new Set(finalModes)].map((m) => m.toString(8))}`);
  assert.ok(privateModes.every((m) => m === 0o700), `private directory modes seen: ${[...new Set(privateModes)].map((m) => m.toString(8))}`);
});

test('a stale socket file is replaced', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'stale.sock');
  try {
    const oldIno = await makeStaleSocket(p);
    assert.equal(await probeUnixSocket(p), 'stale');
    const l = await listenUnixSocket(p, { server: echoServer() });
    const st = await fsp.lstat(p);
    assert.notEqual(st.ino, oldIno, 'a new socket');
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(await probeUnixSocket(p), 'live');
    assert.equal(await echoOnce(p, 'x'), 'x');
    assert.deepEqual(await fsp.readdir(dir), ['stale.sock']);
    await l.close();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('clearStaleUnixSocket removes a stale socket only', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'c.sock');
  try {
    assert.equal(await clearStaleUnixSocket(p), false, 'nothing there');
    await makeStaleSocket(p);
    assert.equal(await clearStaleUnixSocket(p), true);
    assert.equal(await probeUnixSocket(p), 'missing');
    const l = await listenUnixSocket(p);
    await assert.rejects(clearStaleUnixSocket(p), (e: unknown) => e instanceof SocketInUseError && e.reason === 'live');
    assert.equal(await probeUnixSocket(p), 'live', 'a live socket is kept');
    await l.close();
    await fsp.writeFile(p, 'data');
    await assert.rejects(clearStaleUnixSocket(p), NotASocketError);
    assert.equal(await fsp.readFile(p, 'utf8'), 'data');
    assert.deepEqual(await fsp.readdir(dir), ['c.sock'], 'no private directory left behind');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a live socket is refused and keeps working; the refused server is closed', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'live.sock');
  try {
    const first = await listenUnixSocket(p, { server: echoServer() });
    const ino = (await fsp.lstat(p)).ino;
    const second = net.createServer();
    await assert.rejects(listenUnixSocket(p, { server: second }), (e: unknown) => {
      assert.ok(e instanceof SocketInUseError);
      assert.ok(e instanceof UnixSocketPathError && e instanceof WirekitError);
      assert.equal(e.code, 'WK_ADDRESS_IN_USE');
      assert.equal(e.reason, 'live');
      assert.equal(e.path, p);
      assert.equal(e.origin, 'local');
      assert.match(e.message, /a server is listening on it/);
      return true;
    });
    assert.equal(second.listening, false);
    assert.equal((await fsp.lstat(p)).ino, ino, 'the live socket file is untouched');
    assert.equal(await echoOnce(p, 'still here'), 'still here');
    assert.deepEqual(await fsp.readdir(dir), ['live.sock'], 'no private directory left behind');
    await first.close();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a regular file, a directory or a symlink at the path is refused and left untouched', async () => {
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'file.sock');
    await fsp.writeFile(file, 'data', { mode: 0o644 });
    const before = await fsp.lstat(file);
    await assert.rejects(listenUnixSocket(file), (e: unknown) => e instanceof NotASocketError && e.code === 'WK_PATH_NOT_SOCKET' && e.path === file);
    const after = await fsp.lstat(file);
    assert.equal(await fsp.readFile(file, 'utf8'), 'data');
    assert.deepEqual([after.ino, after.mode, after.mtimeMs], [before.ino, before.mode, before.mtimeMs]);
    assert.equal(await probeUnixSocket(file), 'not-socket');

    const sub = path.join(dir, 'sub.sock');
    await fsp.mkdir(sub);
    await assert.rejects(listenUnixSocket(sub), NotASocketError);
    assert.ok((await fsp.lstat(sub)).isDirectory());

    // A symlink to a stale socket is not followed and not removed.
    const real = path.join(dir, 'real.sock');
    await makeStaleSocket(real);
    const link = path.join(dir, 'link.sock');
    await fsp.symlink(real, link);
    await assert.rejects(listenUnixSocket(link), NotASocketError);
    assert.ok((await fsp.lstat(link)).isSymbolicLink());
    assert.ok((await fsp.lstat(real)).isSocket());
    assert.deepEqual((await fsp.readdir(dir)).sort(), ['file.sock', 'link.sock', 'real.sock', 'sub.sock']);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('concurrent listeners on one path: exactly one wins, the others are refused', async () => {
  const dir = await tmpDir();
  try {
    for (let round = 0; round < 16; round++) {
      const p = path.join(dir, `r${round}.sock`);
      if (round % 2 === 1) await makeStaleSocket(p);
      // Two listeners, or six; on a fresh path, or over a stale socket.
      const racers = round % 4 < 2 ? 2 : 6;
      const results = await Promise.allSettled(Array.from({ length: racers }, () => listenUnixSocket(p, { server: echoServer() })));
      const won = results.filter((r): r is PromiseFulfilledResult<UnixListener> => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, `round ${round}: one winner (${lost.map((r) => String(r.reason)).join('; ')})`);
      for (const r of lost) assert.ok(r.reason instanceof SocketInUseError, `round ${round}: ${String(r.reason)}`);
      const winner = won[0]!.value;
      assert.equal((await fsp.lstat(p)).mode & 0o777, 0o600);
      assert.equal(await echoOnce(p, `round ${round}`), `round ${round}`);
      await winner.close();
      assert.deepEqual(await fsp.readdir(dir), [], `round ${round}: nothing left behind`);
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('close() removes the socket file only while it is ours', async () => {
  const dir = await tmpDir();
  const p = path.join(dir, 'mine.sock');
  try {
    // Replaced by a regular file.
    const a = await listenUnixSocket(p);
    await fsp.unlink(p);
    await fsp.writeFile(p, 'someone else');
    await a.close();
    assert.equal(await fsp.readFile(p, 'utf8'), 'someone else');
    assert.equal(a.server.listening, false);
    await fsp.unlink(p);

    // Replaced by another live server's socket.
    const b = await listenUnixSocket(p);
    await fsp.unlink(p);
    const c = await listenUnixSocket(p, { server: echoServer() });
    await b.close();
    assert.equal(await echoOnce(p, 'c'), 'c', "the other server's socket is still there");
    await c.close();
    assert.deepEqual(await fsp.readdir(dir), []);

    // Already removed: close() still stops the server.
    const d = await listenUnixSocket(p);
    await fsp.unlink(p);
    await d.close();
    assert.equal(d.server.listening, false);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('probeUnixSocket: missing, not-socket, stale, live; an aborted probe', async () => {
  const dir = await tmpDir();
  try {
    const p = path.join(dir, 'p.sock');
    assert.equal(await probeUnixSocket(p), 'missing');
    await makeStaleSocket(p);
    assert.equal(await probeUnixSocket(p), 'stale');
    await fsp.unlink(p);
    const l = await listenUnixSocket(p);
    assert.equal(await probeUnixSocket(p, { timeout: 5000 }), 'live');
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await assert.rejects(probeUnixSocket(p, { signal: ac.signal }), (e: unknown) => e instanceof AbortedError && e.code === 'WK_ABORTED');
    await l.close();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('an aborted listen leaves nothing behind', async () => {
  const dir = await tmpDir();
  try {
    const p = path.join(dir, 'ab.sock');
    const ac = new AbortController();
    ac.abort();
    const server = net.createServer();
    await assert.rejects(listenUnixSocket(p, { signal: ac.signal, server }), AbortedError);
    assert.equal(server.listening, false);
    // Aborted while the stale socket is being examined.
    await makeStaleSocket(p);
    const ac2 = new AbortController();
    const pending = listenUnixSocket(p, { signal: ac2.signal, server });
    ac2.abort();
    await assert.rejects(pending, AbortedError);
    assert.equal(server.listening, false);
    assert.deepEqual(await fsp.readdir(dir), ['ab.sock'], 'the stale socket may stay; no private directory');
    // And then it works.
    const l = await listenUnixSocket(p);
    await l.close();
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('a path too long for a Unix socket, or a server already listening, is refused before anything is created', async () => {
  const dir = await tmpDir();
  try {
    const long = path.join(dir, 'x'.repeat(120));
    await assert.rejects(listenUnixSocket(long), (e: unknown) => e instanceof UnixSocketPathError && e.code === 'WK_SOCKET_PATH_TOO_LONG');
    // The final path fits, the temporary path beside it (parent + "/.wkXXXXXX/s") would not.
    const deep = path.join(dir, 'd'.repeat(100 - dir.length - 1));
    await fsp.mkdir(deep);
    const tight = path.join(deep, 'a');
    assert.equal(Buffer.byteLength(tight), 102);
    await assert.rejects(listenUnixSocket(tight), (e: unknown) => e instanceof UnixSocketPathError && e.code === 'WK_SOCKET_PATH_TOO_LONG' && /temporary path/.test(e.message));
    assert.deepEqual(await fsp.readdir(deep), [], 'no private directory left behind');
    await fsp.rmdir(deep);
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(path.join(dir, 'busy.sock'), r));
    await assert.rejects(listenUnixSocket(path.join(dir, 'other.sock'), { server: busy }), (e: unknown) => e instanceof WirekitError && e.code === 'WK_USAGE');
    await new Promise<void>((r) => busy.close(() => r()));
    assert.deepEqual(await fsp.readdir(dir), []);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

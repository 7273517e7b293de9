/**
 * AgentClient's control phase (seed 003 through `protocols/control`'s ClientSession) against
 * scripted daemons: greeting and token, error replies with codes, typed-ahead bytes behind a
 * request, and session bytes that arrive in the same read as the reply.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, AgentConnection } from '../../src/agent/client.js';
import { AuthError } from '../../src/agent/errors.js';
import { RemoteCommandError } from '../../src/protocols/control/errors.js';
import { encodeExit, FrameType, sessionCodec, type SessionFrame } from '../../src/agent/session-frames.js';
import { FrameReader, encodeToBytes } from '../../src/codecs/codec.js';
import { TimeoutError, WirekitError } from '../../src/errors.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-ctl-client-')));
const servers: net.Server[] = [];
let counter = 0;

after(() => {
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The daemon side of one scripted connection: reads lines and raw bytes, writes bytes. */
class Script {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  /** The next request line, parsed. */
  async request(): Promise<{ cmd: string; opts: Record<string, unknown> }> {
    const text = (await this.until((b) => (b.indexOf(0x0a) >= 0 ? b.indexOf(0x0a) + 1 : -1))).toString();
    return JSON.parse(text) as { cmd: string; opts: Record<string, unknown> };
  }

  /** Exactly `n` raw bytes. */
  raw(n: number): Promise<Buffer> {
    return this.until((b) => (b.length >= n ? n : -1));
  }

  write(...parts: Array<string | Uint8Array>): void {
    this.socket.write(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
  }

  private async until(take: (b: Buffer) => number): Promise<Buffer> {
    for (;;) {
      const n = take(this.buf);
      if (n >= 0) {
        const out = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return out;
      }
      if (this.ended) throw new Error('client ended');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** A fake daemon on a Unix socket running `script` for each connection. */
async function fakeDaemon(script: (s: Script) => Promise<void>): Promise<{ client: (o?: { token?: string; timeoutMs?: number }) => AgentClient; errors: unknown[] }> {
  const sock = path.join(dir, `f${counter++}.sock`);
  const errors: unknown[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    script(new Script(socket)).catch((err) => errors.push(err));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(sock, r));
  return { client: (o = {}) => new AgentClient({ address: `unix:${sock}`, timeoutMs: 5000, ...o }), errors };
}

const GREETING = '{"version":"wirekit-agent/1","auth":"none"}\n';
const codec = sessionCodec();
const frame = (type: SessionFrame['type'], payload: Uint8Array = new Uint8Array(0)) => Buffer.from(encodeToBytes(codec, { type, payload }));

test('greeting with auth "token": the client authenticates first; a refusal is an AuthError, a missing token is refused locally', async () => {
  const seen: string[] = [];
  const { client } = await fakeDaemon(async (s) => {
    s.write('{"version":"wirekit-agent/1","auth":"token"}\n');
    const auth = await s.request();
    seen.push(`${auth.cmd}:${String(auth.opts.token)}`);
    if (auth.opts.token !== 'good') {
      s.write('{"status":false,"message":"invalid token","code":"WK_AUTH"}\n');
      s.socket.end();
      return;
    }
    s.write('{"status":true,"response":{"authenticated":true}}\n');
    const req = await s.request();
    seen.push(req.cmd);
    s.write('{"status":true,"progress":"thinking"}\n{"status":true,"response":{"pong":true}}\n');
  });
  assert.ok((await client({ token: 'good' }).ping()) >= 0);
  await assert.rejects(client({ token: 'bad' }).ping(), (err: unknown) => err instanceof AuthError && err.code === 'WK_AUTH' && /invalid token/.test(err.message));
  await assert.rejects(client().ping(), (err: unknown) => err instanceof AuthError && err.origin === 'local');
  assert.deepEqual(seen, ['auth:good', 'ping', 'auth:bad']);
});

test('error replies carry the daemon\'s WK_ code; progress reaches onProgress; extra members are ignored', async () => {
  const { client } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    const req = await s.request();
    if (req.cmd === 'fail') s.write('{"status":false,"message":"no such thing","code":"WK_NOT_FILE"}\n');
    else if (req.cmd === 'plain') s.write('{"status":false,"message":"plain seed 003 error"}\n');
    else s.write('{"status":true,"progress":1,"extra":true}\n{"status":true,"progress":2}\n{"status":true,"response":{"ok":1}}\n');
  });
  await assert.rejects(client().call('fail'), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === 'WK_NOT_FILE' && err.message === 'no such thing');
  await assert.rejects(client().call('plain'), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === undefined);
  const c = client();
  const conn = await c.connect();
  assert.ok(conn instanceof AgentConnection);
  assert.deepEqual(conn.greeting, { version: 'wirekit-agent/1', auth: 'none' });
  const progress: unknown[] = [];
  assert.deepEqual(await conn.call('work', {}, { onProgress: (p) => progress.push(p) }), { ok: 1 });
  assert.deepEqual(progress, [1, 2]);
  conn.close();
});

test('a daemon that breaks the protocol, closes early or stays silent is reported, not waited for', async () => {
  const garbage = await fakeDaemon(async (s) => s.write('hello there\n'));
  await assert.rejects(garbage.client().ping(), (err: unknown) => err instanceof WirekitError && err.code === 'WK_CONTROL_PROTOCOL');
  const noGreeting = await fakeDaemon(async (s) => s.write('{"status":true,"response":1}\n'));
  await assert.rejects(noGreeting.client().ping(), (err: unknown) => err instanceof WirekitError && err.code === 'WK_CONTROL_PROTOCOL');
  const closes = await fakeDaemon(async (s) => void s.socket.end());
  await assert.rejects(closes.client().ping(), (err: unknown) => err instanceof WirekitError && err.code === 'WK_CONNECTION_CLOSED' && /before its greeting/.test(err.message));
  const hangsUp = await fakeDaemon(async (s) => {
    s.write(GREETING);
    await s.request();
    s.socket.end();
  });
  await assert.rejects(hangsUp.client().ping(), (err: unknown) => err instanceof WirekitError && err.code === 'WK_CONNECTION_CLOSED');
  const silent = await fakeDaemon(async () => {});
  await assert.rejects(silent.client({ timeoutMs: 50 }).ping(), TimeoutError);
});

test('exec: typed-ahead stdin follows the request; output and exit sent in the same write as the reply are not lost', async () => {
  const received: Buffer[] = [];
  const { client, errors } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    const req = await s.request();
    assert.deepEqual(req, { cmd: 'exec', opts: { argv: ['cat'] } });
    // The stdin frames come right behind the request: DATA "abc", EOF.
    received.push(await s.raw(5 + 3), await s.raw(5));
    s.write('{"status":true,"response":{"pid":77}}\n', frame(FrameType.STDOUT, Buffer.from('abc')), frame(FrameType.STDERR, Buffer.from('!')), frame(FrameType.EXIT, encodeExit({ code: 3, signal: null })));
    s.socket.end(); // as the daemon does after EXIT
  });
  const run = await client().exec(['cat'], { input: Buffer.from('abc'), endInput: true });
  assert.equal(run.pid, 77);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  run.stdout.on('data', (d: Buffer) => out.push(d));
  run.stderr.on('data', (d: Buffer) => err.push(d));
  assert.deepEqual(await run.exit, { code: 3, signal: null });
  assert.equal(Buffer.concat(out).toString(), 'abc');
  assert.equal(Buffer.concat(err).toString(), '!');
  const frames = new FrameReader(sessionCodec()).push(Buffer.concat(received));
  assert.deepEqual(
    frames.map((f) => [f.type, Buffer.from(f.payload).toString()]),
    [
      [FrameType.DATA, 'abc'],
      [FrameType.EOF, ''],
    ],
  );
  assert.deepEqual(errors, []);
});

test('a refused session command rejects with the daemon\'s code', async () => {
  const { client } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    await s.request();
    s.write('{"status":false,"message":"too many sessions (limit 1)","code":"WK_LIMIT"}\n');
    s.socket.end();
  });
  await assert.rejects(client().exec(['true']), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === 'WK_LIMIT');
  await assert.rejects(client().terminal(), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === 'WK_LIMIT');
  await assert.rejects(client().forward('localhost', 1), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === 'WK_LIMIT');
});

test('download: file data and digest in the same write as the reply; upload: progress and the final reply after the data', async () => {
  const data = randomBytes(300_000);
  const digest = createHash('sha256').update(data).digest();
  const { client, errors } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    const req = await s.request();
    if (req.cmd === 'download') {
      s.write(JSON.stringify({ status: true, response: { path: req.opts.path, size: data.length, mode: 0o600 } }) + '\n', data, digest);
      s.socket.end();
      return;
    }
    assert.equal(req.cmd, 'upload');
    const size = req.opts.size as number;
    s.write(JSON.stringify({ status: true, response: { path: req.opts.path } }) + '\n');
    const got = await s.raw(size);
    s.write('{"status":true,"progress":{"bytes":1,"size":2}}\n');
    const dig = await s.raw(32);
    assert.ok(createHash('sha256').update(got).digest().equals(dig));
    s.write(JSON.stringify({ status: true, response: { path: req.opts.path, size, sha256: dig.toString('hex') } }) + '\n');
  });
  const local = path.join(dir, 'down.bin');
  const res = await client().download('remote.bin', local);
  assert.equal(res.sha256, digest.toString('hex'));
  assert.ok(readFileSync(local).equals(data));

  const src = path.join(dir, 'up.bin');
  writeFileSync(src, data);
  const progress: number[] = [];
  const up = await client().upload(src, 'remote-up.bin', { onProgress: (p) => progress.push(p.bytes) });
  assert.deepEqual(up, { path: 'remote-up.bin', size: data.length, sha256: digest.toString('hex') });
  assert.deepEqual(progress, [1, data.length]);
  assert.deepEqual(errors, []);
});

test('upload: an error reply after the data is the error the caller sees', async () => {
  const { client } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    const req = await s.request();
    s.write(JSON.stringify({ status: true, response: { path: req.opts.path } }) + '\n');
    await s.raw((req.opts.size as number) + 32);
    s.write('{"status":false,"message":"digest mismatch","code":"WK_CHECKSUM"}\n');
  });
  const src = path.join(dir, 'up-bad.bin');
  writeFileSync(src, 'hello');
  await assert.rejects(client().upload(src, 'x'), (err: unknown) => err instanceof RemoteCommandError && err.remoteCode === 'WK_CHECKSUM');
});

test('upload: an error reply while data still goes out (a full disk) ends the upload at once, with that error', { timeout: 30_000 }, async () => {
  const { client } = await fakeDaemon(async (s) => {
    s.write(GREETING);
    await s.request();
    s.write('{"status":true,"response":{"path":"/x"}}\n');
    await s.raw(64 * 1024);
    // The daemon's disk is full: it answers, and reads nothing more (the socket stays open).
    s.socket.pause();
    s.write('{"status":false,"message":"/x: no space left on the device","code":"WK_IO"}\n');
  });
  const src = path.join(dir, 'enospc.bin');
  writeFileSync(src, randomBytes(64 * 1024 * 1024));
  // A long timeout: only the error reply can end this upload in time.
  const err = await client({ timeoutMs: 600_000 }).upload(src, 'x').catch((e: unknown) => e);
  assert.ok(err instanceof RemoteCommandError, String(err));
  assert.equal(err.remoteCode, 'WK_IO');
});

/**
 * End-to-end: the built CLI as child processes, over a Unix socket and over TCP with a token.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync, realpathSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import { AgentClient } from '../../src/agent/client.js';
import { FrameReader, encodeToBytes } from '../../src/codecs/codec.js';
import { ndjson } from '../../src/codecs/lines.js';
import { sessionCodec, FrameType, decodeExit } from '../../src/agent/session-frames.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-e2e-')));
const sock = path.join(dir, 'agent.sock');
const root = path.join(dir, 'root');
const children = new Set<ChildProcess>();
let daemon: ChildProcess;
let tcpAddr = '';
let token = '';
let daemonLog = '';

const cli = cliRunner(() => ({ ...process.env, WIREKIT_ADDRESS: `unix:${sock}`, WIREKIT_TOKEN: '' }), children);

before(async () => {
  mkdirSync(root);
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`, '-l', 'tcp://127.0.0.1:0', '--token-file', path.join(dir, 'token'), '--root', root, '-v'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, WIREKIT_TOKEN: '' },
  });
  children.add(daemon);
  const m = await waitLine(daemon.stderr!, /listening on (tcp:\/\/[^\s]+)/);
  tcpAddr = m[1]!;
  daemon.stderr!.on('data', (d: Buffer) => (daemonLog += d));
  token = readFileSync(path.join(dir, 'token'), 'utf8').trim();
});

after(() => {
  if (process.env.WK_E2E_LOG) writeFileSync(process.env.WK_E2E_LOG, daemonLog);
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('the Unix socket and the token file are mode 0600; a live socket is not taken over', async () => {
  assert.equal(statSync(sock).mode & 0o777, 0o600);
  assert.equal(statSync(path.join(dir, 'token')).mode & 0o777, 0o600);
  const r = await cli(['serve', '-l', `unix:${sock}`]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /already listening/);
  assert.equal((await cli(['ping'])).code, 0);
});

test('a stale socket file is replaced', async () => {
  const stale = path.join(dir, 'stale.sock');
  // A crashed daemon: a process that bound the socket and died without removing it.
  const py = spawn('/usr/bin/python3', ['-c', 'import socket,os,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); os._exit(0)', stale]);
  await new Promise((r) => py.once('close', r));
  assert.ok(existsSync(stale));
  const d = spawn(process.execPath, [MAIN, 'serve', '-l', stale], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(d);
  await waitLine(d.stderr!, /listening on/);
  assert.equal((await cli(['ping', '-a', stale])).code, 0);
  d.kill('SIGTERM');
  await new Promise((r) => d.once('close', r));
  children.delete(d);
  assert.equal(existsSync(stale), false);
});

test('exec: stdin, stdout and stderr kept apart, exit code passed through', async () => {
  const r = await cli(['exec', '--', 'sh', '-c', 'tr a-z A-Z; echo oops >&2; exit 42'], { input: 'hello\nworld\n' });
  assert.equal(r.code, 42);
  assert.equal(r.stdout.toString(), 'HELLO\nWORLD\n');
  assert.equal(r.stderr, 'oops\n');
  const bin = randomBytes(300_000);
  const r2 = await cli(['exec', 'cat'], { input: bin });
  assert.equal(r2.code, 0);
  assert.ok(r2.stdout.equals(bin));
  const r3 = await cli(['exec', '--', 'definitely-not-a-program-xyz']);
  assert.equal(r3.code, 127);
  assert.match(r3.stderr, /WK_NO_PROGRAM/);
  const r4 = await cli(['exec', '--', 'sh', '-c', 'kill -TERM $$']);
  assert.equal(r4.code, 128 + os.constants.signals.SIGTERM);
});

test('exec: typed-ahead stdin sent in the same write as the request arrives intact', async () => {
  const s = net.connect(sock);
  await new Promise((r) => s.once('connect', r));
  const codec = sessionCodec();
  const payload = Buffer.from('typed ahead \x00\xff bytes\n', 'latin1');
  s.write(
    Buffer.concat([
      Buffer.from(JSON.stringify({ cmd: 'exec', opts: { argv: ['cat'] } }) + '\n'),
      encodeToBytes(codec, { type: FrameType.DATA, payload }),
      encodeToBytes(codec, { type: FrameType.EOF, payload: new Uint8Array(0) }),
    ]),
  );
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => s.once('end', r));
  s.destroy();
  const lines = new FrameReader(ndjson());
  lines.feed(Buffer.concat(chunks));
  const greeting = lines.next() as unknown as { version: string };
  const reply = lines.next() as unknown as { status: boolean };
  assert.match(greeting.version, /wirekit-agent/);
  assert.equal(reply.status, true);
  const frames = lines.switchTo(sessionCodec()).end();
  const out = Buffer.concat(frames.filter((f) => f.type === FrameType.STDOUT).map((f) => f.payload));
  assert.ok(out.equals(payload));
  assert.deepEqual(decodeExit(frames.at(-1)!.payload), { code: 0, signal: null });
});

test('control: two requests in one write are both served; invalid JSON gets an error reply', async () => {
  const s = net.connect(sock);
  await new Promise((r) => s.once('connect', r));
  s.write('{"cmd":"ping"}\n{"cmd":"ping"}\nnot json\n{"cmd":"nope"}\n');
  const lines = new FrameReader(ndjson());
  const got: unknown[] = [];
  await new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      got.push(...lines.push(d));
      if (got.length >= 5) resolve();
    });
  });
  s.destroy();
  const [, a, b, c, d] = got as Record<string, unknown>[];
  assert.equal(a!.status, true);
  assert.equal(b!.status, true);
  assert.equal(c!.status, false);
  assert.equal(d!.status, false);
  assert.match(String(d!.message), /unknown command/);
});

test('cp: 20 MiB both ways with SHA-256 compared', async () => {
  const data = randomBytes(20 * 1024 * 1024);
  const local = path.join(dir, 'big.bin');
  writeFileSync(local, data, { mode: 0o640 });
  const sha = createHash('sha256').update(data).digest('hex');
  // SHA-256 asked for (the default is BLAKE3 when both sides have it; test/cli/cp.test.ts).
  const up = await cli(['cp', '--json', '--checksum', 'sha256', local, ':big-up.bin']);
  assert.equal(up.code, 0, up.stderr);
  const upRes = JSON.parse(up.stdout.toString()) as { sha256: string; size: number };
  assert.equal(upRes.sha256, sha);
  assert.equal(createHash('sha256').update(readFileSync(path.join(root, 'big-up.bin'))).digest('hex'), sha);
  assert.equal(statSync(path.join(root, 'big-up.bin')).mode & 0o777, 0o640);
  const back = path.join(dir, 'big-back.bin');
  const down = await cli(['cp', '--json', '--checksum', 'sha256', ':big-up.bin', back]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(createHash('sha256').update(readFileSync(back)).digest('hex'), sha);
  assert.equal(statSync(back).mode & 0o777, 0o640);
  assert.deepEqual(readdirSync(root).filter((f) => f.endsWith('.part')), []);
});

test('cp: an upload killed midway leaves nothing behind', async () => {
  const s = net.connect(sock);
  await new Promise((r) => s.once('connect', r));
  const lines = new FrameReader(ndjson());
  const got: Record<string, unknown>[] = [];
  const replied = new Promise<void>((resolve) =>
    s.on('data', (d: Buffer) => {
      got.push(...(lines.push(d) as unknown as Record<string, unknown>[]));
      if (got.length >= 2) resolve();
    }),
  );
  s.write(JSON.stringify({ cmd: 'upload', opts: { path: 'partial.bin', size: 10 * 1024 * 1024 } }) + '\n');
  await replied;
  assert.equal(got[1]!.status, true);
  s.write(randomBytes(1024 * 1024));
  // The temp file exists while the transfer runs...
  await until(() => readdirSync(root).some((f) => f.startsWith('.partial.bin')));
  s.destroy();
  // ...and is removed when the client goes away.
  await until(() => !readdirSync(root).some((f) => f.includes('partial')));
  assert.equal(existsSync(path.join(root, 'partial.bin')), false);
});

test('cp: .. and symlink escapes are refused, the daemon keeps serving', async () => {
  writeFileSync(path.join(dir, 'outside.txt'), 'secret');
  symlinkSync(dir, path.join(root, 'escape'));
  const small = path.join(dir, 'small.txt');
  writeFileSync(small, 'hi');
  for (const args of [
    ['cp', ':../outside.txt', path.join(dir, 'x1')],
    ['cp', ':escape/outside.txt', path.join(dir, 'x2')],
    ['cp', small, ':../evil.txt'],
    ['cp', small, ':escape/evil.txt'],
  ]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, /WK_PATH_ESCAPE/);
  }
  assert.equal(existsSync(path.join(dir, 'evil.txt')), false);
  assert.equal(existsSync(path.join(dir, 'x1')), false);
  assert.equal((await cli(['ping'])).code, 0);
});

test('forward: several HTTP connections at once to a loopback server; half-close passed on', async () => {
  const server = http.createServer((req, res) => res.end(`path=${req.url}`));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const echo = net.createServer({ allowHalfOpen: true }, (c) => {
    const parts: Buffer[] = [];
    c.on('data', (d: Buffer) => parts.push(d));
    c.on('end', () => c.end(`got ${Buffer.concat(parts).length} bytes`));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as net.AddressInfo).port;
  const fwd = spawn(process.execPath, [MAIN, 'forward', `0:127.0.0.1:${port}`], { env: { ...process.env, WIREKIT_ADDRESS: `unix:${sock}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  const fwd2 = spawn(process.execPath, [MAIN, 'forward', `0:127.0.0.1:${echoPort}`], { env: { ...process.env, WIREKIT_ADDRESS: `unix:${sock}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(fwd);
  children.add(fwd2);
  try {
    const local = Number((await waitLine(fwd.stdout!, /listening on [^\s]+:(\d+)/))[1]);
    const local2 = Number((await waitLine(fwd2.stdout!, /listening on [^\s]+:(\d+)/))[1]);
    const agent = new http.Agent({ keepAlive: false });
    const bodies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        new Promise<string>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: local, path: `/r${i}`, agent }, (res) => {
            let b = '';
            res.on('data', (d) => (b += d));
            res.on('end', () => resolve(b));
          }).on('error', reject);
        }),
      ),
    );
    assert.deepEqual(bodies, Array.from({ length: 8 }, (_, i) => `path=/r${i}`));
    const c = net.connect({ port: local2, host: '127.0.0.1', allowHalfOpen: true });
    const reply = new Promise<string>((resolve) => {
      let b = '';
      c.on('data', (d) => (b += d));
      c.on('end', () => resolve(b));
    });
    c.end(randomBytes(100_000));
    assert.equal(await reply, 'got 100000 bytes');
    c.destroy();
  } finally {
    fwd.kill('SIGKILL');
    fwd2.kill('SIGKILL');
    server.close();
    echo.close();
  }
});

test('TCP: no token or a wrong token is refused; the right token works; the daemon keeps serving', async () => {
  const none = await cli(['ping', '-a', tcpAddr]);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /token/);
  const wrong = await cli(['ping', '-a', tcpAddr], { env: { WIREKIT_TOKEN: 'x'.repeat(64) } });
  assert.equal(wrong.code, 3);
  assert.match(wrong.stderr, /WK_AUTH/);
  // A raw client that skips auth gets an error and is disconnected.
  const hp = /tcp:\/\/([^:]+):(\d+)/.exec(tcpAddr)!;
  const s = net.connect(Number(hp[2]), hp[1]);
  s.write('{"cmd":"exec","opts":{"argv":["id"]}}\n');
  let text = '';
  s.on('data', (d) => (text += d));
  await new Promise((r) => s.once('close', r));
  assert.match(text, /"status":false.*WK_AUTH/);
  const ok = await cli(['exec', '-a', tcpAddr, '--', 'echo', 'over tcp'], { env: { WIREKIT_TOKEN: token } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.toString(), 'over tcp\n');
  assert.equal((await cli(['ping'])).code, 0);
});

test('100 concurrent exec sessions all complete with correct output', async () => {
  const client = new AgentClient({ address: `unix:${sock}` });
  const results = await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      const s = await client.exec(['sh', '-c', 'read x; echo "$x-$1"; echo "e$1" >&2; exit $(($1 % 7))', 'sh', String(i)], { input: Buffer.from(`in${i}\n`), endInput: true });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      s.stdout.on('data', (d: Buffer) => out.push(d));
      s.stderr.on('data', (d: Buffer) => err.push(d));
      const st = await s.exit;
      return { i, code: st.code, out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString() };
    }),
  );
  for (const r of results) {
    assert.equal(r.out, `in${r.i}-${r.i}\n`);
    assert.equal(r.err, `e${r.i}\n`);
    assert.equal(r.code, r.i % 7);
  }
});

test('decode: core codecs print frames; errors exit 1', async () => {
  const r = await cli(['decode', '--codec', 'u32be'], { input: Buffer.from([0, 0, 0, 2, 0x68, 0x69, 0, 0, 0, 0]) });
  assert.equal(r.code, 0);
  assert.equal(r.stdout.toString(), '#1 2 B "hi"\n#2 0 B ""\n');
  const p = await cli(['decode', '-c', 'percent-dollar'], { input: '%aGk=$%$' });
  assert.equal(p.stdout.toString().split('\n').length, 3);
  const bad = await cli(['decode', '-c', 'packet'], { input: Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0]) });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /WK_TRUNCATED|input ended/);
  for (const c of ['lines', 'ndjson', 'varint', 'typed-frame', 'agent-session']) assert.equal((await cli(['decode', '-c', c], { input: '' })).code, 0);
  assert.equal((await cli(['decode', '-c', 'nope'])).code, 2);
});

test('every command has --help; bad usage exits 2', async () => {
  for (const c of ['serve', 'ping', 'info', 'exec', 'shell', 'cp', 'forward', 'decode']) {
    const r = await cli([c, '--help']);
    assert.equal(r.code, 0, c);
    assert.match(r.stdout.toString(), /^Usage: wirekit/);
  }
  assert.equal((await cli(['cp', 'a', 'b'])).code, 2);
  assert.equal((await cli(['bogus'])).code, 2);
  assert.equal((await cli(['exec'])).code, 2);
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * End-to-end checks of the daemon's limits and listeners, each with its own daemon: TLS with a
 * token, the session limit, keepalive ending a hung client's session, and exit statuses for
 * programs that cannot be started.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/agent/client.js';
import { FrameType, sessionCodec } from '../../src/agent/session-frames.js';
import { FrameReader } from '../../src/codecs/codec.js';
import { repoRoot } from '../helpers/paths.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const TLS_DIR = path.join(repoRoot(), 'test/fixtures/tls');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-daemon-')));
const children = new Set<ChildProcess>();

after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 20_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, WIREKIT_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wirekit ${args.join(' ')} timed out; stderr: ${err}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout: out, stderr: err });
    });
  });
}

/** Starts `wirekit serve ARGS` and resolves with the child and its first listening address. */
async function serve(args: string[], env: Record<string, string> = {}): Promise<{ daemon: ChildProcess; address: string; log: () => string }> {
  const daemon = spawn(process.execPath, [MAIN, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WIREKIT_TOKEN: '', ...env } });
  children.add(daemon);
  let log = '';
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${log}`)), 10_000);
    daemon.stderr!.on('data', (d: Buffer) => {
      log += d;
      const m = /listening on (\S+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    daemon.once('close', (code) => reject(new Error(`daemon exited ${code}: ${log}`)));
  });
  return { daemon, address, log: () => log };
}

async function stop(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  daemon.kill('SIGTERM');
  await new Promise((r) => daemon.once('close', r));
  children.delete(daemon);
}

/** Pids of `sleep MARKER` processes (the programs the daemon ran, not the CLI that asked). */
function pidsWith(marker: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0] ?? '') === 'sleep' && argv[1] === marker) pids.push(Number(e));
    } catch {
      // gone
    }
  }
  return pids;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A Unix socket relay at `at` to the daemon at `target` that counts the PONG session frames the
 * client sends (its bytes after the first line, the request, are session frames).
 */
async function pongCounter(at: string, target: string): Promise<{ path: string; pongs(n: number): Promise<void>; close(): void }> {
  let count = 0;
  let wake: (() => void) | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const daemon = net.connect({ path: target, allowHalfOpen: true });
    sockets.add(client).add(daemon);
    const reader = new FrameReader(sessionCodec());
    let inFrames = false;
    client.on('data', (chunk: Buffer) => {
      daemon.write(chunk);
      let bytes: Uint8Array = chunk;
      if (!inFrames) {
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) return;
        inFrames = true;
        bytes = chunk.subarray(nl + 1);
      }
      for (const f of reader.push(bytes)) if (f.type === FrameType.PONG) count++;
      wake?.();
    });
    daemon.pipe(client);
    client.on('end', () => daemon.end());
    for (const s of [client, daemon]) s.on('error', () => {});
    client.on('close', () => daemon.destroy());
    daemon.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(at, r));
  return {
    path: at,
    async pongs(n) {
      while (count < n) await new Promise<void>((r) => (wake = r));
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A `sleep` argument unique to this test run, to find the process in /proc. */
function marker(): string {
  return `1000.${randomBytes(3).readUIntBE(0, 3)}`;
}

test('TLS listener: the right CA and token work (ping, exec, cp); an untrusted certificate or a wrong token is refused; the daemon keeps serving', async () => {
  const token = randomBytes(16).toString('hex');
  const { daemon, address } = await serve(['-l', 'tls://127.0.0.1:0', '--tls-cert', path.join(TLS_DIR, 'cert.pem'), '--tls-key', path.join(TLS_DIR, 'key.pem')], { WIREKIT_TOKEN: token });
  try {
    assert.match(address, /^tls:\/\/127\.0\.0\.1:\d+$/);
    const ca = ['--ca', path.join(TLS_DIR, 'cert.pem')];
    const ok = await cli(['ping', '-a', address, ...ca, '--token', token]);
    assert.equal(ok.code, 0, ok.stderr);

    const untrusted = await cli(['ping', '-a', address, '--token', token]);
    assert.equal(untrusted.code, 3, 'a self-signed certificate without --ca is refused');
    assert.match(untrusted.stderr, /certificate/i);

    const wrong = await cli(['ping', '-a', address, ...ca, '--token', 'x'.repeat(32)]);
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /WK_AUTH|token/i);
    const none = await cli(['ping', '-a', address, ...ca]);
    assert.equal(none.code, 3);

    const ex = await cli(['exec', '-a', address, ...ca, '--token', token, '--', 'sh', '-c', 'echo over-tls; exit 7']);
    assert.equal(ex.code, 7, ex.stderr);
    assert.equal(ex.stdout, 'over-tls\n');

    const data = randomBytes(3 * 1024 * 1024 + 5);
    const src = path.join(dir, 'tls-src.bin');
    writeFileSync(src, data);
    const up = await cli(['cp', '-a', address, ...ca, '--token', token, src, `:${path.join(dir, 'tls-up.bin')}`]);
    assert.equal(up.code, 0, up.stderr);
    assert.ok(readFileSync(path.join(dir, 'tls-up.bin')).equals(data));
    const down = await cli(['cp', '-a', address, ...ca, '--token', token, `:${path.join(dir, 'tls-up.bin')}`, path.join(dir, 'tls-down.bin')]);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(readFileSync(path.join(dir, 'tls-down.bin')).equals(data));
  } finally {
    await stop(daemon);
  }
});

test('session limit: sessions beyond --max-sessions are refused with WK_LIMIT; ping still works; a freed slot is usable again', async () => {
  const sock = path.join(dir, 'limit.sock');
  const { daemon } = await serve(['-l', sock, '--max-sessions', '2']);
  const a = marker();
  const b = marker();
  const holders: ChildProcess[] = [];
  try {
    for (const m of [a, b]) {
      const c = spawn(process.execPath, [MAIN, 'exec', '-a', sock, '-n', '--', 'sleep', m], { stdio: 'ignore' });
      children.add(c);
      holders.push(c);
      await until(`sleep ${m} to run`, () => pidsWith(m).length > 0);
    }
    const refused = await cli(['exec', '-a', sock, '-n', '--', 'true']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /WK_LIMIT/);
    assert.equal((await cli(['ping', '-a', sock])).code, 0, 'control commands are not sessions');

    // The client of one session goes away: its session (and program) end, freeing the slot.
    holders[0]!.kill('SIGKILL');
    await until(`sleep ${a} to be killed`, () => pidsWith(a).length === 0);
    await until('a slot to free up', async () => (await cli(['exec', '-a', sock, '-n', '--', 'true'])).code === 0);
    assert.equal(pidsWith(b).length, 1, 'the other session is untouched');
  } finally {
    for (const h of holders) h.kill('SIGKILL');
    await stop(daemon);
  }
});

test('keepalive: a client that stops answering (SIGSTOP) has its session ended and its program killed', async () => {
  const sock = path.join(dir, 'keepalive.sock');
  const { daemon } = await serve(['-l', sock, '--ping-interval', '100ms', '--ping-timeout', '600ms']);
  // The client connects through a relay that counts the PONG frames it sends the daemon.
  const relay = await pongCounter(path.join(dir, 'keepalive-relay.sock'), sock);
  const m = marker();
  const hung = spawn(process.execPath, [MAIN, 'exec', '-a', relay.path, '-n', '--', 'sleep', m], { stdio: 'ignore' });
  children.add(hung);
  try {
    await until(`sleep ${m} to run`, () => pidsWith(m).length > 0);
    // A live but answering client keeps its session past several timeouts: 15 pings answered,
    // sent at least 100 ms apart, span more than two 600 ms timeouts.
    await relay.pongs(15);
    assert.equal(pidsWith(m).length, 1, 'an answering client keeps its session');
    hung.kill('SIGSTOP');
    await until(`sleep ${m} to be killed after the peer went silent`, () => pidsWith(m).length === 0, 10_000);
    const info = await cli(['info', '-a', sock]);
    assert.equal(info.code, 0, info.stderr);
    assert.equal((JSON.parse(info.stdout) as { sessions: number }).sessions, 0, 'the session is gone from the count');
  } finally {
    hung.kill('SIGKILL');
    relay.close();
    await stop(daemon);
  }
});

test('exec: a missing program exits 127, a non-executable one 126, with a clear message', async () => {
  const sock = path.join(dir, 'spawn.sock');
  const { daemon } = await serve(['-l', sock]);
  try {
    const missing = await cli(['exec', '-a', sock, '--', 'definitely-not-a-program-xyz']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /definitely-not-a-program-xyz: no such program.*WK_NO_PROGRAM/);
    const file = path.join(dir, 'not-exec.sh');
    writeFileSync(file, '#!/bin/sh\necho hi\n');
    chmodSync(file, 0o644);
    const notExec = await cli(['exec', '-a', sock, '--', file]);
    assert.equal(notExec.code, 126);
    assert.match(notExec.stderr, /not executable.*WK_NOT_EXECUTABLE/);
    assert.equal((await cli(['ping', '-a', sock])).code, 0);
  } finally {
    await stop(daemon);
  }
});

test('terminal: all output of a program that prints fast and exits arrives before its exit status', async () => {
  const sock = path.join(dir, 'pty.sock');
  const { daemon } = await serve(['-l', sock]);
  try {
    const client = new AgentClient({ address: `unix:${sock}` });
    for (let round = 0; round < 5; round++) {
      const t = await client.terminal({ argv: ['sh', '-c', 'seq 1 20000; exit 3'] });
      const out: Buffer[] = [];
      t.output.on('data', (d: Buffer) => out.push(d));
      const status = await t.exit;
      await new Promise((r) => (t.output.readableEnded ? r(null) : t.output.once('end', r)));
      const lines = Buffer.concat(out).toString().split('\r\n').filter((l) => l !== '');
      assert.equal(status.code, 3);
      assert.equal(lines.length, 20000, `round ${round}: ${lines.length} lines, last ${lines.at(-1)}`);
      assert.equal(lines.at(-1), '20000');
    }
  } finally {
    await stop(daemon);
  }
});

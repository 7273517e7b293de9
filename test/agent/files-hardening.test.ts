/**
 * File sessions under hostile conditions, against an in-process daemon: setuid bits, FIFOs and
 * /proc files, missing files named as the client named them, sessions switched off, stalled
 * transfers, the temporary-file sweep, failed-token throttling, and a root whose directories are
 * swapped for links while files are copied.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { AgentDaemon } from '../../src/agent/daemon.js';
import { resolveBeneath } from '../../src/agent/paths.js';
import { TempJournal, tempNameFor } from '../../src/agent/temp-journal.js';
import type { WirekitError } from '../../src/errors.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-files-hard-')));
const daemons: AgentDaemon[] = [];
let n = 0;

after(async () => {
  for (const d of daemons) await d.close();
  rmSync(dir, { recursive: true, force: true });
});

async function start(opts: ConstructorParameters<typeof AgentDaemon>[0] = {}): Promise<{ daemon: AgentDaemon; client: AgentClient; sock: string }> {
  const daemon = new AgentDaemon(opts);
  daemons.push(daemon);
  const sock = path.join(dir, `d${n++}.sock`);
  await daemon.listenUnix(sock);
  return { daemon, client: new AgentClient({ address: { kind: 'unix', path: sock }, timeoutMs: 5000 }), sock };
}

const code = (err: unknown) => (err as { remoteCode?: string }).remoteCode ?? (err as WirekitError).code;

test('upload: setuid and setgid bits are dropped unless asked for explicitly', async () => {
  const root = path.join(dir, 'setid');
  mkdirSync(root);
  const { client } = await start({ root });
  const src = path.join(dir, 'setid-src');
  writeFileSync(src, 'x');
  await client.upload(src, 'plain', { mode: 0o6755 });
  assert.equal(statSync(path.join(root, 'plain')).mode & 0o7777, 0o755);
  await client.upload(src, 'kept', { mode: 0o2755, setid: true });
  assert.equal(statSync(path.join(root, 'kept')).mode & 0o7777, 0o2755);
  // Downloads too: the local copy of a setuid file is not setuid.
  await client.download('kept', path.join(dir, 'setid-down'));
  assert.equal(statSync(path.join(dir, 'setid-down')).mode & 0o7777, 0o755);
});

test('download: FIFOs are refused at once (WK_NOT_FILE) without tying up file I/O; /proc files arrive whole', async () => {
  const root = path.join(dir, 'fifo');
  mkdirSync(root);
  for (let i = 0; i < 8; i++) assert.equal(spawnSync('mkfifo', [path.join(root, `p${i}`)]).status, 0);
  writeFileSync(path.join(root, 'ok.txt'), 'fine');
  const { client } = await start({ root });
  // More FIFOs than libuv has threads: a blocking open would stall the regular download behind them.
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => client.download(`p${i}`, path.join(dir, `fifo-${i}`))));
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal(code((r as PromiseRejectedResult).reason), 'WK_NOT_FILE');
  }
  await client.download('ok.txt', path.join(dir, 'fifo-ok'));
  assert.equal(readFileSync(path.join(dir, 'fifo-ok'), 'utf8'), 'fine');
  // Without a root: /proc/self/status reports size 0; it is read whole and sent as that snapshot.
  const { client: free } = await start();
  const r = await free.download('/proc/version', path.join(dir, 'proc-version'));
  assert.ok(r.size > 0);
  assert.equal(readFileSync(path.join(dir, 'proc-version'), 'utf8'), readFileSync('/proc/version', 'utf8'));
});

test('a missing or forbidden file is WK_NOT_FOUND / WK_PERMISSION, named as the client named it', async () => {
  const root = path.join(dir, 'missing');
  mkdirSync(root);
  const { client } = await start({ root });
  const err = await client.download('sub/nope.txt', path.join(dir, 'nope')).catch((e: unknown) => e);
  assert.equal(code(err), 'WK_NOT_FOUND');
  assert.match((err as Error).message, /^sub\/nope\.txt: /);
  assert.ok(!(err as Error).message.includes(root), (err as Error).message);
  const src = path.join(dir, 'missing-src');
  writeFileSync(src, 'x');
  const up = await client.upload(src, 'no/such/dir/f').catch((e: unknown) => e);
  assert.equal(code(up), 'WK_NOT_FOUND');
  assert.ok(!(up as Error).message.includes(root), (up as Error).message);
  if (process.getuid?.() !== 0) {
    writeFileSync(path.join(root, 'secret'), 'x', { mode: 0 });
    assert.equal(code(await client.download('secret', path.join(dir, 'secret')).catch((e: unknown) => e)), 'WK_PERMISSION');
  }
});

test('sessions switched off are refused with WK_PERMISSION; files still work', async () => {
  const { client } = await start({ disabledSessions: ['exec', 'terminal', 'forward'] });
  assert.equal(code(await client.exec(['true']).catch((e: unknown) => e)), 'WK_PERMISSION');
  assert.equal(code(await client.forward('127.0.0.1', 9).catch((e: unknown) => e)), 'WK_PERMISSION');
  const src = path.join(dir, 'off-src');
  writeFileSync(src, 'x');
  await client.upload(src, path.join(dir, 'off-dest'));
});

/** Sends `cmd` on a raw connection and resolves with the socket once the reply line arrived. */
async function rawRequest(sock: string, cmd: string, opts: Record<string, unknown>): Promise<{ s: net.Socket; reply: unknown; rest: () => string; closed: Promise<unknown> }> {
  const s = net.connect(sock);
  const closed = new Promise((r) => s.once('close', r));
  let buf = '';
  s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
  s.on('error', () => {});
  const lines = async (k: number) => {
    while (buf.split('\n').length <= k) await new Promise((r) => s.once('data', r));
  };
  await lines(1); // greeting
  s.write(JSON.stringify({ cmd, opts }) + '\n');
  await lines(2);
  return { s, reply: JSON.parse(buf.split('\n')[1]!), rest: () => buf.split('\n').slice(2).join('\n'), closed };
}

test('a stalled upload and an unread download end after the transfer timeout: slots and temporary files freed', async () => {
  const root = path.join(dir, 'stall');
  mkdirSync(root);
  writeFileSync(path.join(root, 'big'), randomBytes(32 * 1024 * 1024));
  const { daemon, sock } = await start({ root, maxSessions: 2, transferTimeoutMs: 1000 });
  const up = await rawRequest(sock, 'upload', { path: 'f', size: 1000 });
  up.s.write(randomBytes(10)); // then nothing
  const down = await rawRequest(sock, 'download', { path: 'big' });
  down.s.pause(); // never read
  assert.ok(readdirSync(root).some((f) => f.endsWith('.part')));
  // The upload's error reply, then both connections end.
  await up.closed;
  assert.match(up.rest(), /WK_TIMEOUT/);
  // Both sessions end on the daemon's side (the download's reader never read a byte)...
  while (daemon.sessions > 0) await new Promise((r) => setImmediate(r));
  // ...and the download's connection was closed by the daemon (seen once its buffered bytes are read).
  down.s.resume();
  await down.closed;
  assert.deepEqual(readdirSync(root).sort(), ['big']);
  // The slots are free again.
  const again = await rawRequest(sock, 'download', { path: 'big' });
  assert.equal((again.reply as { status: boolean }).status, true);
  again.s.destroy();
});

test('TempJournal: the temporary files of a daemon that is gone are removed at the next start; live ones stay', async () => {
  const work = path.join(dir, 'journal-work');
  mkdirSync(work);
  const jdir = path.join(dir, 'journal');
  const journal = new TempJournal(jdir);
  const live = tempNameFor(path.join(work, 'b.bin'));
  writeFileSync(live, 'partial');
  const drop = await journal.add(live);
  // A daemon that was killed: its pid is gone, its temporary file and record remain.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  const stale = tempNameFor(path.join(work, 'a.bin')).replace(`-${process.pid}-`, `-${dead}-`);
  writeFileSync(stale, 'partial');
  writeFileSync(path.join(jdir, `${dead}-0123456789ab`), stale);
  // A record pointing at a file that is not a temporary file is dropped, the file left alone.
  writeFileSync(path.join(work, 'precious'), 'x');
  writeFileSync(path.join(jdir, `${dead}-ba9876543210`), path.join(work, 'precious'));
  assert.deepEqual(await new TempJournal(jdir).sweep(), [stale]);
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(live), true);
  assert.equal(existsSync(path.join(work, 'precious')), true);
  assert.equal(readdirSync(jdir).length, 1);
  drop();
  while (readdirSync(jdir).length > 0) await new Promise((r) => setImmediate(r));
});

test('TCP: wrong tokens are answered late and lock the address out after the cap, even for the right token', async () => {
  const { daemon } = await start({ authThrottle: { delayMs: 50, maxFailures: 3 } });
  const token = randomBytes(16).toString('hex');
  const l = await daemon.listenTcp('127.0.0.1', 0, { token });
  const port = (l.server.address() as net.AddressInfo).port;
  const client = (t: string) => new AgentClient({ address: { kind: 'tcp', host: '127.0.0.1', port, tls: false }, token: t, timeoutMs: 5000 });
  await client(token).info();
  for (let i = 0; i < 3; i++) assert.equal(code(await client('wrong-token-0123456789').info().catch((e: unknown) => e)), 'WK_AUTH');
  assert.equal(code(await client(token).info().catch((e: unknown) => e)), 'WK_AUTH');
});

test('--root: a directory of the path swapped for a link to outside after resolution is not followed', async () => {
  const root = path.join(dir, 'swap-root');
  const outside = path.join(dir, 'swap-outside');
  mkdirSync(path.join(root, 'sub'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(root, 'sub', 'f'), 'inside');
  writeFileSync(path.join(outside, 'f'), 'outside');
  const at = await resolveBeneath('sub/f', { root });
  try {
    renameSync(path.join(root, 'sub'), path.join(root, 'sub-moved'));
    symlinkSync(outside, path.join(root, 'sub'));
    const fh = await open(at.at(), 'r');
    assert.equal((await fh.readFile('utf8')), 'inside');
    await fh.close();
  } finally {
    await at.close();
  }
  // A link as a later component is followed by hand and may not lead out.
  await assert.rejects(resolveBeneath('sub/f', { root }), (e: unknown) => code(e) === 'WK_PATH_ESCAPE');
});

test('--root: copies while a directory flips between a real one and a link out of the root never land outside', async () => {
  const root = path.join(dir, 'race-root');
  const outside = path.join(dir, 'race-outside');
  mkdirSync(path.join(root, 'd'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret'), 'outside');
  writeFileSync(path.join(root, 'd', 'secret'), 'inside');
  const { client } = await start({ root });
  const src = path.join(dir, 'race-src');
  writeFileSync(src, 'payload');
  let flipping = true;
  const flipper = (async () => {
    const real = path.join(root, 'd-real');
    while (flipping) {
      renameSync(path.join(root, 'd'), real);
      symlinkSync(outside, path.join(root, 'd'));
      await new Promise((r) => setImmediate(r));
      rmSync(path.join(root, 'd'));
      renameSync(real, path.join(root, 'd'));
      await new Promise((r) => setImmediate(r));
    }
  })();
  let leaked = 0;
  try {
    for (let i = 0; i < 150; i++) {
      await client.upload(src, `d/up${i}`).catch(() => {});
      const r = await client.download('d/secret', path.join(dir, 'race-down')).catch(() => undefined);
      if (r && readFileSync(path.join(dir, 'race-down'), 'utf8') === 'outside') leaked++;
    }
  } finally {
    flipping = false;
    await flipper;
  }
  assert.equal(leaked, 0);
  assert.deepEqual(readdirSync(outside), ['secret']);
});

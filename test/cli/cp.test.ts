/**
 * `wirekit cp` as scp and rsync users expect it, through the built CLI against `wirekit serve`
 * processes: remote directories as destinations, paths from the home directory (or the root),
 * the BLAKE3 / SHA-256 negotiation with peers that lack the BLAKE3 module.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-cp-')));
const home = path.join(dir, 'home');
const root = path.join(dir, 'root');
const children = new Set<ChildProcess>();
const env = () => ({ ...process.env, WIREKIT_TOKEN: '', XDG_RUNTIME_DIR: dir, HOME: home });
const cli = cliRunner(env, children);
/** A preload that makes `@napi-rs/blake-hash` impossible to load, as on a machine without it. */
const NO_BLAKE3 = path.join(dir, 'no-blake3.cjs');
const noBlake3 = { NODE_OPTIONS: `--require ${NO_BLAKE3}` };

let blake3Hex: ((b: Uint8Array) => string) | undefined;
try {
  const m = createRequire(import.meta.url)('@napi-rs/blake-hash') as { blake3(b: Uint8Array): Buffer };
  blake3Hex = (b) => m.blake3(b).toString('hex');
} catch {
  blake3Hex = undefined;
}
const sha256Hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let homeSock = '';
let rootSock = '';
let oldSock = '';

async function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<ChildProcess> {
  const daemon = spawn(process.execPath, [MAIN, 'serve', ...args, '-v'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env(), ...extraEnv } });
  children.add(daemon);
  await waitLine(daemon.stderr!, /listening on/);
  return daemon;
}

before(async () => {
  mkdirSync(home);
  mkdirSync(root);
  writeFileSync(
    NO_BLAKE3,
    `const M = require('module'); const orig = M._resolveFilename;
M._resolveFilename = function (req, ...rest) {
  if (req === '@napi-rs/blake-hash') { const e = new Error("Cannot find module '@napi-rs/blake-hash'"); e.code = 'MODULE_NOT_FOUND'; throw e; }
  return orig.call(this, req, ...rest);
};\n`,
  );
  homeSock = path.join(dir, 'home.sock');
  rootSock = path.join(dir, 'root.sock');
  oldSock = path.join(dir, 'old.sock');
  await Promise.all([serve(['-l', `unix:${homeSock}`]), serve(['-l', `unix:${rootSock}`, '--root', root]), serve(['-l', `unix:${oldSock}`, '--root', root], noBlake3)]);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('cp upload: into a remote directory (:dir, :dir/, : for home), relative and ~ paths from the home directory', async () => {
  const data = randomBytes(5000);
  const src = path.join(dir, 'note.txt');
  writeFileSync(src, data);
  mkdirSync(path.join(home, 'sub'));
  const a = ['-a', `unix:${homeSock}`];
  for (const dest of [':', ':sub', ':sub/', ':~/sub/renamed.txt', ':~', ':rel.txt']) {
    const r = await cli(['cp', ...a, src, dest]);
    assert.equal(r.code, 0, `${dest}: ${r.stderr}`);
  }
  assert.deepEqual(readFileSync(path.join(home, 'note.txt')), data);
  assert.deepEqual(readFileSync(path.join(home, 'sub', 'note.txt')), data);
  assert.deepEqual(readFileSync(path.join(home, 'sub', 'renamed.txt')), data);
  assert.deepEqual(readFileSync(path.join(home, 'rel.txt')), data);
  // A trailing slash promises a directory.
  const missing = await cli(['cp', ...a, src, ':nosuch/']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nosuch\/: no such directory \[WK_NOT_FOUND\]/);
  const notDir = await cli(['cp', ...a, src, ':rel.txt/']);
  assert.equal(notDir.code, 1);
  assert.match(notDir.stderr, /WK_NOT_DIR/);
  // Downloads take relative and ~ paths from the home directory too.
  for (const from of [':sub/renamed.txt', ':~/sub/renamed.txt']) {
    const out = path.join(dir, `back-${from.length}`);
    const r = await cli(['cp', ...a, from, out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readFileSync(out), data);
  }
});

test('cp under --root: x, ~/x and /x all name <root>/x; : is the root', async () => {
  const data = randomBytes(3000);
  const src = path.join(dir, 'r.bin');
  writeFileSync(src, data);
  mkdirSync(path.join(root, 'd'));
  const a = ['-a', `unix:${rootSock}`];
  for (const dest of [':', ':d', ':~/d/', ':~/x.bin']) {
    const r = await cli(['cp', '--json', ...a, src, dest]);
    assert.equal(r.code, 0, `${dest}: ${r.stderr}`);
  }
  assert.deepEqual(readFileSync(path.join(root, 'r.bin')), data);
  assert.deepEqual(readFileSync(path.join(root, 'd', 'r.bin')), data);
  assert.deepEqual(readFileSync(path.join(root, 'x.bin')), data);
  const r = await cli(['cp', '--json', ...a, ':~/d/r.bin', path.join(dir, 'r-back.bin')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(String(r.stdout)) as { size: number }).size, data.length);
  const escape = await cli(['cp', ...a, src, ':~/../x']);
  assert.equal(escape.code, 1);
  assert.match(escape.stderr, /WK_PATH_ESCAPE/);
});

test('cp: BLAKE3 by default both ways, SHA-256 with --checksum sha256', async (t) => {
  if (!blake3Hex) return t.skip('@napi-rs/blake-hash is not installed here (optional): covered by the SHA-256 fallback test');
  const data = randomBytes(12 * 1024 * 1024 + 5); // above the hash thread's threshold
  const src = path.join(dir, 'b3.bin');
  writeFileSync(src, data);
  const a = ['-a', `unix:${rootSock}`];
  const up = await cli(['cp', '--json', ...a, src, ':b3.bin']);
  assert.equal(up.code, 0, up.stderr);
  const upRes = JSON.parse(String(up.stdout)) as Record<string, unknown>;
  assert.equal(upRes.blake3, blake3Hex(data));
  assert.equal(upRes.sha256, undefined);
  const down = await cli(['cp', ...a, ':b3.bin', path.join(dir, 'b3-back.bin')]);
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, new RegExp(`blake3 ${blake3Hex(data)}`));
  assert.deepEqual(readFileSync(path.join(dir, 'b3-back.bin')), data);
  const sha = await cli(['cp', '--json', '--checksum', 'sha256', ...a, ':b3.bin', path.join(dir, 'b3-sha.bin')]);
  assert.equal(sha.code, 0, sha.stderr);
  assert.equal((JSON.parse(String(sha.stdout)) as Record<string, unknown>).sha256, sha256Hex(data));
  const bad = await cli(['cp', '--checksum', 'md5', ...a, src, ':x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--checksum must be blake3 or sha256/);
});

test('cp: SHA-256 when either side lacks the BLAKE3 module; --checksum blake3 then fails with WK_HASH_UNSUPPORTED', async () => {
  const data = randomBytes(9 * 1024 * 1024);
  const src = path.join(dir, 'fb.bin');
  writeFileSync(src, data);
  const sha = sha256Hex(data);
  // A daemon without the module.
  const old = ['-a', `unix:${oldSock}`];
  const up = await cli(['cp', '--json', ...old, src, ':fb-old.bin']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal((JSON.parse(String(up.stdout)) as Record<string, unknown>).sha256, sha);
  const down = await cli(['cp', '--json', ...old, ':fb-old.bin', path.join(dir, 'fb-old-back.bin')]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((JSON.parse(String(down.stdout)) as Record<string, unknown>).sha256, sha);
  if (blake3Hex) {
    const forced = await cli(['cp', '--checksum', 'blake3', ...old, src, ':fb-forced.bin']);
    assert.equal(forced.code, 1);
    assert.match(forced.stderr, /WK_HASH_UNSUPPORTED/);
    const forcedDown = await cli(['cp', '--checksum', 'blake3', ...old, ':fb-old.bin', path.join(dir, 'fb-forced-down.bin')]);
    assert.equal(forcedDown.code, 1);
    assert.match(forcedDown.stderr, /WK_HASH_UNSUPPORTED/);
  }
  // A client without the module, against a daemon with it.
  const a = ['-a', `unix:${rootSock}`];
  const cup = await cli(['cp', '--json', ...a, src, ':fb-new.bin'], { env: noBlake3 });
  assert.equal(cup.code, 0, cup.stderr);
  assert.equal((JSON.parse(String(cup.stdout)) as Record<string, unknown>).sha256, sha);
  const cdown = await cli(['cp', '--json', ...a, ':fb-new.bin', path.join(dir, 'fb-new-back.bin')], { env: noBlake3 });
  assert.equal(cdown.code, 0, cdown.stderr);
  assert.equal((JSON.parse(String(cdown.stdout)) as Record<string, unknown>).sha256, sha);
  assert.deepEqual(readFileSync(path.join(dir, 'fb-new-back.bin')), data);
  const cforced = await cli(['cp', '--checksum', 'blake3', ...a, src, ':fb-x.bin'], { env: noBlake3 });
  assert.equal(cforced.code, 1);
  assert.match(cforced.stderr, /BLAKE3 is not available here.*WK_HASH_UNSUPPORTED/);
});

test('the transfer request: a client that offers only sha256 gets it named in the reply; one that offers nothing gets the old reply', async () => {
  writeFileSync(path.join(root, 'offer.bin'), 'hello');
  const ask = async (opts: Record<string, unknown>) => {
    const s = net.connect(rootSock);
    let buf = '';
    const lines = new Promise<string[]>((resolve) =>
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        const l = buf.split('\n');
        if (l.length >= 3) resolve(l);
      }),
    );
    s.write(JSON.stringify({ cmd: 'download', opts }) + '\n');
    const got = await lines;
    s.destroy();
    return JSON.parse(got[1]!) as { response: Record<string, unknown> };
  };
  const mode = statSync(path.join(root, 'offer.bin')).mode & 0o7777;
  assert.deepEqual((await ask({ path: 'offer.bin', hashes: ['sha256'] })).response, { path: '/offer.bin', size: 5, mode, hash: 'sha256' });
  assert.deepEqual((await ask({ path: 'offer.bin', hashes: ['md5', 'sha256'] })).response, { path: '/offer.bin', size: 5, mode, hash: 'sha256' });
  assert.deepEqual((await ask({ path: 'offer.bin' })).response, { path: '/offer.bin', size: 5, mode });
});

/**
 * `wirekit cp` as scp and rsync users expect it, through the built CLI against `wirekit serve`
 * processes: remote directories as destinations, paths from the home directory (or the root),
 * the BLAKE3 / SHA-256 negotiation with peers that lack the BLAKE3 module.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import pty from 'node-pty';
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
  const st = statSync(path.join(root, 'offer.bin'));
  const withTimes = { path: '/offer.bin', size: 5, mode, hash: 'sha256', mtime: st.mtimeMs };
  // atime may move as the file is read: only its presence is checked.
  const noAtime = (r: Record<string, unknown>) => {
    assert.equal(typeof r.atime, 'number');
    const { atime: _atime, ...rest } = r;
    return rest;
  };
  assert.deepEqual(noAtime((await ask({ path: 'offer.bin', hashes: ['sha256'] })).response), withTimes);
  assert.deepEqual(noAtime((await ask({ path: 'offer.bin', hashes: ['md5', 'sha256'] })).response), withTimes);
  assert.deepEqual((await ask({ path: 'offer.bin' })).response, { path: '/offer.bin', size: 5, mode });
});

/** A small tree: modes, a link inside, a link out of the root, times from 2020. */
function makeTree(top: string): Buffer {
  const big = randomBytes(2 * 1024 * 1024 + 3);
  mkdirSync(path.join(top, 'a', 'b'), { recursive: true });
  writeFileSync(path.join(top, 'a', 'f.txt'), 'hello\n', { mode: 0o600 });
  chmodSync(path.join(top, 'a', 'f.txt'), 0o600);
  writeFileSync(path.join(top, 'a', 'b', 'big.bin'), big);
  chmodSync(path.join(top, 'a', 'b'), 0o750);
  symlinkSync('f.txt', path.join(top, 'a', 'lnk'));
  symlinkSync('/etc/passwd', path.join(top, 'out'));
  const when = new Date('2020-01-02T03:04:05Z');
  utimesSync(path.join(top, 'a', 'f.txt'), when, when);
  utimesSync(path.join(top, 'a'), when, when);
  return big;
}

function checkTree(top: string, big: Buffer, times: boolean): void {
  assert.equal(readFileSync(path.join(top, 'a', 'f.txt'), 'utf8'), 'hello\n');
  assert.deepEqual(readFileSync(path.join(top, 'a', 'b', 'big.bin')), big);
  assert.equal(statSync(path.join(top, 'a', 'f.txt')).mode & 0o777, 0o600);
  assert.equal(statSync(path.join(top, 'a', 'b')).mode & 0o777, 0o750);
  assert.ok(lstatSync(path.join(top, 'a', 'lnk')).isSymbolicLink());
  assert.equal(readlinkSync(path.join(top, 'a', 'lnk')), 'f.txt');
  assert.equal(readlinkSync(path.join(top, 'out')), '/etc/passwd');
  const t = Date.parse('2020-01-02T03:04:05Z');
  assert.equal(statSync(path.join(top, 'a', 'f.txt')).mtimeMs === t, times, 'file mtime');
  assert.equal(statSync(path.join(top, 'a')).mtimeMs === t, times, 'directory mtime');
}

test('cp -r: a tree up and down again (modes, links as links, -p times); a link out of --root is never followed', async () => {
  const src = path.join(dir, 'tree');
  const big = makeTree(src);
  const a = ['-a', `unix:${rootSock}`];
  mkdirSync(path.join(root, 'trees'));
  const up = await cli(['cp', '-rp', ...a, src, ':trees']);
  assert.equal(up.code, 0, up.stderr);
  checkTree(path.join(root, 'trees', 'tree'), big, true);
  // Without -p, no times; the destination does not exist yet, so it becomes the copy.
  const up2 = await cli(['cp', '-r', ...a, src, ':copy2']);
  assert.equal(up2.code, 0, up2.stderr);
  checkTree(path.join(root, 'copy2'), big, false);
  const backDir = path.join(dir, 'tree-back');
  mkdirSync(backDir);
  const down = await cli(['cp', '-r', '-p', ...a, ':trees/tree', backDir]);
  assert.equal(down.code, 0, down.stderr);
  checkTree(path.join(backDir, 'tree'), big, true);
  // The daemon lists the link, but following it leads out of the root.
  const out = await cli(['cp', ...a, ':trees/tree/out', path.join(dir, 'passwd')]);
  assert.equal(out.code, 1);
  assert.match(out.stderr, /WK_PATH_ESCAPE/);
  const noR = await cli(['cp', ...a, src, ':x']);
  assert.equal(noR.code, 1);
  assert.match(noR.stderr, /is a directory \(use -r/);
});

test('cp with several sources into a directory, both ways', async () => {
  const one = path.join(dir, 'one.txt');
  const two = path.join(dir, 'two.txt');
  writeFileSync(one, '1');
  writeFileSync(two, '2');
  const a = ['-a', `unix:${rootSock}`];
  mkdirSync(path.join(root, 'many'));
  const up = await cli(['cp', ...a, one, two, ':many']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(readFileSync(path.join(root, 'many', 'one.txt'), 'utf8'), '1');
  assert.equal(readFileSync(path.join(root, 'many', 'two.txt'), 'utf8'), '2');
  const notDir = await cli(['cp', ...a, one, two, ':many/one.txt']);
  assert.equal(notDir.code, 1);
  assert.match(notDir.stderr, /WK_NOT_DIR/);
  const back = path.join(dir, 'many-back');
  mkdirSync(back);
  const down = await cli(['cp', '--json', ...a, ':many/one.txt', ':many/two.txt', back]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(String(down.stdout).trim().split('\n').length, 2);
  assert.equal(readFileSync(path.join(back, 'two.txt'), 'utf8'), '2');
  const missing = await cli(['cp', ...a, ':many/one.txt', ':many/two.txt', path.join(dir, 'nope')]);
  assert.equal(missing.code, 2);
});

/** Runs `wirekit cp` in a pseudo-terminal of `cols` columns; resolves with its output. */
function inPty(args: string[], cols: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const term = pty.spawn(process.execPath, [MAIN, 'cp', ...args], { cols, rows: 10, env: env() as Record<string, string> });
    let out = '';
    term.onData((d) => (out += d));
    const timer = setTimeout(() => {
      term.kill('SIGKILL');
      reject(new Error(`cp in a pty timed out: ${out}`));
    }, 20_000);
    term.onExit((e) => {
      clearTimeout(timer);
      resolve({ code: e.exitCode, out });
    });
  });
}

test('cp progress in a 50-column terminal: redrawn in place, fitted to the width, one final line; none for tiny files', async () => {
  const big = path.join(dir, 'a-rather-long-file-name-for-a-narrow-terminal.bin');
  writeFileSync(big, randomBytes(24 * 1024 * 1024));
  const a = ['-a', `unix:${rootSock}`];
  for (const args of [[big, ':progress.bin'], [':progress.bin', path.join(dir, 'progress-back.bin')]]) {
    const { code, out } = await inPty([...a, ...args], 50);
    assert.equal(code, 0, out);
    const lines = out.split(/\r\n|\r|\n/).filter((l) => l.length > 0);
    assert.ok(lines.length >= 1, out);
    for (const l of lines) assert.ok([...l].length <= 49, `too wide (${[...l].length}): ${JSON.stringify(l)}`);
    // One newline at the very end: every update redraws the same line.
    assert.equal(out.split('\n').length - 1, 1, JSON.stringify(out));
    assert.ok(out.endsWith('\n'), JSON.stringify(out));
    const last = lines[lines.length - 1]!;
    assert.match(last, /100%\s+24\.0MB\s+\S+\/s\s+\d\d:\d\d/);
    assert.match(last, /^(a-rather|progress)/);
  }
  // A tiny file: no progress line, only the summary.
  const tiny = path.join(dir, 'tiny.txt');
  writeFileSync(tiny, 'x');
  const { code, out } = await inPty([...a, tiny, ':tiny.txt'], 50);
  assert.equal(code, 0, out);
  assert.doesNotMatch(out, /%/);
  assert.match(out, /1 bytes -> :\/tiny\.txt/);
  // --json: no progress either.
  const j = await inPty(['--json', ...a, big, ':progress2.bin'], 50);
  assert.equal(j.code, 0, j.out);
  assert.doesNotMatch(j.out, /%/);
  assert.match(j.out, /"direction":"upload"/);
});

test('cp --partial: a download and an upload continue from a kept partial file, verified whole; a bad partial is removed', async () => {
  const data = randomBytes(10 * 1024 * 1024 + 11);
  const a = ['-a', `unix:${rootSock}`];
  writeFileSync(path.join(root, 'resume.bin'), data);
  // Download: the first 4 MiB are already here, as an interrupted --partial copy left them.
  const local = path.join(dir, 'resume-down.bin');
  const partial = path.join(dir, '.resume-down.bin.wirekit-partial');
  writeFileSync(partial, data.subarray(0, 4 * 1024 * 1024));
  const down = await cli(['cp', '--json', '--partial', ...a, ':resume.bin', local]);
  assert.equal(down.code, 0, down.stderr);
  const dres = JSON.parse(String(down.stdout)) as Record<string, unknown>;
  assert.equal(dres.resumedFrom, 4 * 1024 * 1024);
  assert.deepEqual(readFileSync(local), data);
  assert.throws(() => statSync(partial));
  // A partial file whose bytes differ from the source: the whole-file hash catches it.
  writeFileSync(partial, randomBytes(1024));
  const bad = await cli(['cp', '--append', ...a, ':resume.bin', local]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /WK_CHECKSUM/);
  assert.throws(() => statSync(partial), 'a partial file that failed the hash is removed');
  // Upload: the daemon continues its own partial file.
  const remotePartial = path.join(root, '.resume-up.bin.wirekit-partial');
  writeFileSync(remotePartial, data.subarray(0, 3 * 1024 * 1024 + 5));
  const src = path.join(dir, 'resume-src.bin');
  writeFileSync(src, data);
  const up = await cli(['cp', '--json', '--partial', ...a, src, ':resume-up.bin']);
  assert.equal(up.code, 0, up.stderr);
  assert.equal((JSON.parse(String(up.stdout)) as Record<string, unknown>).resumedFrom, 3 * 1024 * 1024 + 5);
  assert.deepEqual(readFileSync(path.join(root, 'resume-up.bin')), data);
  assert.throws(() => statSync(remotePartial));
  // Without --partial nothing is kept or continued.
  const plain = await cli(['cp', '--json', ...a, src, ':resume-plain.bin']);
  assert.equal((JSON.parse(String(plain.stdout)) as Record<string, unknown>).resumedFrom, undefined);
});

test('cp --partial: a download stopped by SIGTERM keeps its partial file, and the next one finishes it', async () => {
  const data = randomBytes(48 * 1024 * 1024);
  writeFileSync(path.join(root, 'stop.bin'), data);
  const destDir = path.join(dir, 'stop-dest');
  mkdirSync(destDir);
  const partial = path.join(destDir, '.stop.bin.wirekit-partial');
  const slow = await serve(['-l', `unix:${path.join(dir, 'slow.sock')}`, '--root', root]);
  const child = spawn(process.execPath, [MAIN, 'cp', '--partial', '-a', `unix:${path.join(dir, 'slow.sock')}`, ':stop.bin', destDir], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  // Once some bytes are in the partial file, the daemon is stopped so the copy cannot finish.
  const { watch } = await import('node:fs');
  const w = watch(destDir);
  await new Promise<void>((resolve) => {
    const check = () => {
      try {
        if (statSync(partial).size > 0) resolve();
      } catch {
        // not there yet
      }
    };
    w.on('change', check);
    check();
  });
  w.close();
  slow.kill('SIGSTOP');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
  slow.kill('SIGCONT');
  children.delete(child);
  assert.equal(code, 128 + os.constants.signals.SIGTERM, err);
  const kept = statSync(partial).size;
  assert.ok(kept > 0 && kept < data.length, `kept ${kept}`);
  const again = await cli(['cp', '--json', '--partial', '-a', `unix:${path.join(dir, 'slow.sock')}`, ':stop.bin', destDir]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((JSON.parse(String(again.stdout)) as Record<string, unknown>).resumedFrom, kept);
  assert.deepEqual(readFileSync(path.join(destDir, 'stop.bin')), data);
});

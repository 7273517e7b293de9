/**
 * `wirekit cp` and `wirekit serve` as processes: interrupted and stalled copies leave nothing
 * behind, a killed daemon's temporary files are swept at its next start, tcp:// stays plain with
 * a certificate given, and token hygiene.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import { tempNameFor } from '../../src/agent/temp-journal.js';

const TLS_DIR = path.join(repoRoot(), 'test/fixtures/tls');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-cp-hard-')));
const state = path.join(dir, 'state');
mkdirSync(state, { mode: 0o700 });
const children = new Set<ChildProcess>();
const env = () => ({ ...process.env, WIREKIT_TOKEN: '', XDG_RUNTIME_DIR: state });
const cli = cliRunner(env, children);

after(() => {
  for (const c of children) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

async function serve(args: string[], extraEnv: Record<string, string> = {}): Promise<{ daemon: ChildProcess; address: string }> {
  const daemon = spawn(process.execPath, [MAIN, 'serve', ...args, '-v'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...env(), ...extraEnv } });
  children.add(daemon);
  const m = await waitLine(daemon.stderr!, /listening on (\S+)/);
  daemon.on('exit', () => children.delete(daemon));
  return { daemon, address: m[1]! };
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

test('cp download: SIGINT, SIGTERM and the --timeout of a stopped daemon all leave no .part file', async () => {
  const root = path.join(dir, 'root-int');
  mkdirSync(root);
  writeFileSync(path.join(root, 'big'), randomBytes(64 * 1024 * 1024));
  const sock = path.join(dir, 'int.sock');
  const { daemon } = await serve(['-l', `unix:${sock}`, '--root', root]);
  for (const how of ['SIGINT', 'SIGTERM', 'timeout'] as const) {
    const dest = path.join(dir, `down-${how}`);
    mkdirSync(dest);
    const cp = spawn(process.execPath, [MAIN, 'cp', '-a', `unix:${sock}`, '--timeout', '1s', ':big', dest], { env: env(), stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(cp);
    let err = '';
    cp.stderr!.on('data', (d: Buffer) => (err += d));
    // The copy is under way once its hidden temporary file exists.
    const watcher = (await import('node:fs')).watch(dest);
    await new Promise<void>((r) => {
      if (readdirSync(dest).length > 0) return r();
      watcher.on('change', () => readdirSync(dest).length > 0 && r());
    });
    watcher.close();
    daemon.kill('SIGSTOP'); // the copy cannot finish before the signal
    if (how !== 'timeout') cp.kill(how);
    const code = await exited(cp);
    daemon.kill('SIGCONT');
    children.delete(cp);
    if (how === 'timeout') {
      assert.equal(code, 1, err);
      assert.match(err, /WK_TIMEOUT/);
    } else assert.equal(code, 128 + os.constants.signals[how], err);
    assert.deepEqual(readdirSync(dest), [], `${how}: ${err}`);
  }
  daemon.kill('SIGTERM');
  await exited(daemon);
});

test('cp download: the .part of a SIGKILLed cp is removed by the next copy to the same place; live and other files stay', async () => {
  const root = path.join(dir, 'root-kill9');
  mkdirSync(root);
  writeFileSync(path.join(root, 'big'), randomBytes(32 * 1024 * 1024));
  const sock = path.join(dir, 'kill9.sock');
  const { daemon } = await serve(['-l', `unix:${sock}`, '--root', root]);
  const dest = path.join(dir, 'down-kill9');
  mkdirSync(dest);
  const cp = spawn(process.execPath, [MAIN, 'cp', '-a', `unix:${sock}`, ':big', dest], { env: env(), stdio: ['ignore', 'ignore', 'ignore'] });
  children.add(cp);
  const watcher = (await import('node:fs')).watch(dest);
  await new Promise<void>((r) => {
    if (readdirSync(dest).length > 0) return r();
    watcher.on('change', () => readdirSync(dest).length > 0 && r());
  });
  watcher.close();
  daemon.kill('SIGSTOP');
  cp.kill('SIGKILL');
  await exited(cp);
  children.delete(cp);
  daemon.kill('SIGCONT');
  const left = readdirSync(dest);
  assert.equal(left.length, 1, 'SIGKILL cannot be caught: its .part is left');
  assert.match(left[0]!, /^\.big\.wirekit-\d+-[0-9a-f]{12}\.part$/);
  // Beside it: a temporary file of a live writer (this test process) and one of another name.
  const live = path.basename(tempNameFor(path.join(dest, 'big')));
  writeFileSync(path.join(dest, live), 'live');
  const other = left[0]!.replace('.big.', '.other.');
  writeFileSync(path.join(dest, other), 'other');
  const again = await cli(['cp', '-a', `unix:${sock}`, ':big', dest]);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readdirSync(dest).sort(), [live, other, 'big'].sort());
  daemon.kill('SIGTERM');
  await exited(daemon);
});

test('serve: the temporary files of a SIGKILLed daemon are removed at the next start', async () => {
  const root = path.join(dir, 'root-kill');
  mkdirSync(root);
  const sock = path.join(dir, 'kill.sock');
  const first = await serve(['-l', `unix:${sock}`, '--root', root]);
  // An upload that never finishes: its temporary file exists while the daemon is killed.
  const s = net.connect(sock);
  s.on('error', () => {});
  await new Promise((r) => s.once('data', r));
  s.write(JSON.stringify({ cmd: 'upload', opts: { path: 'f', size: 1000 } }) + '\n');
  await new Promise((r) => s.once('data', r));
  assert.equal(readdirSync(root).filter((f) => f.endsWith('.part')).length, 1);
  first.daemon.kill('SIGKILL');
  await exited(first.daemon);
  s.destroy();
  assert.equal(readdirSync(root).filter((f) => f.endsWith('.part')).length, 1);
  const second = await serve(['-l', `unix:${sock}`, '--root', root]);
  assert.deepEqual(readdirSync(root), []);
  // Someone else's file with a temporary file's name but no record is left alone.
  const foreign = tempNameFor(path.join(root, 'x'));
  writeFileSync(foreign, 'x');
  second.daemon.kill('SIGTERM');
  await exited(second.daemon);
  assert.equal(existsSync(foreign), true);
});

test('serve: tcp:// stays plain TCP when --tls-cert is given; only tls:// is TLS', async () => {
  const token = randomBytes(16).toString('hex');
  const { daemon, address } = await serve(['-l', 'tcp://127.0.0.1:0', '-l', 'tls://127.0.0.1:0', '--tls-cert', path.join(TLS_DIR, 'cert.pem'), '--tls-key', path.join(TLS_DIR, 'key.pem')], { WIREKIT_TOKEN: token });
  assert.match(address, /^tcp:\/\//);
  const r = await cli(['ping', '-a', address], { env: { WIREKIT_TOKEN: token } });
  assert.equal(r.code, 0, r.stderr);
  daemon.kill('SIGTERM');
  await exited(daemon);
});

test('tokens: a short $WIREKIT_TOKEN is refused by serve; --token on the command line is warned about', async () => {
  const r = await cli(['serve', '-l', 'tcp://127.0.0.1:0'], { env: { WIREKIT_TOKEN: 'x' } });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /at least 16/);
  const w = await cli(['ping', '-a', 'tcp://127.0.0.1:1', '--token', 'secret-secret-secret']);
  assert.match(w.stderr, /--token on the command line is visible/);
});

/**
 * A mixed fleet end to end: `wirekit hub --overlord-classic`, one `wirekit serve --hub` agent and
 * the Python test ghost (both generations), driven by the built CLI as a user would.
 */
import { waitLine } from '../helpers/cli.js';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';
import { PEERS, skipWithout } from '../helpers/peers.js';
import { GHOST_PY } from './overlord-helpers.js';

const skip = skipWithout(PEERS.python);
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-ovl-e2e-')));
const state = path.join(dir, 'hub-state');
const home = path.join(dir, 'home');
const ghostHome = path.join(dir, 'ghost-home');
const children = new Set<ChildProcess>();
const env = () => ({ ...process.env, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_RUNTIME_DIR: path.join(dir, 'run'), WIREKIT_TOKEN: '', WIREKIT_ADDRESS: '', WIREKIT_HUB: '' });

function cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...env(), ...opts.env }, stdio: 'pipe' });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wirekit ${args.join(' ')} timed out; stderr: ${err}`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout: out, stderr: err });
    });
    child.stdin.end(opts.input ?? '');
  });
}


async function waitListed(ids: string[]): Promise<{ id: string; authenticated: boolean }[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await cli(['ls', '--json']);
    const listed = r.code === 0 ? (JSON.parse(r.stdout) as { id: string; authenticated: boolean }[]) : [];
    if (ids.every((i) => listed.some((a) => a.id === i))) return listed;
    if (Date.now() > deadline) throw new Error(`not listed: ${ids.join(',')}: ${r.stdout} ${r.stderr}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

before(async () => {
  if (skip) return;
  mkdirSync(home);
  mkdirSync(ghostHome);
  const init = await cli(['hub', '--init', '--admin-user', 'root', '--state', state], { env: { WIREKIT_ADMIN_PASS: 'rootpass' } });
  assert.equal(init.code, 0, init.stderr);
  const hub = spawn(process.execPath, [MAIN, 'hub', '--state', state, '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', '127.0.0.1:0', '--overlord-classic', '127.0.0.1:0', '--overlord-allow', '127.0.0.0/8,::1'], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
  children.add(hub);
  const m = await waitLine(hub.stderr!, /agents on (tcp:\/\/127\.0\.0\.1:\d+), users on (tcp:\/\/127\.0\.0\.1:\d+), HTTP API on http:\/\/127\.0\.0\.1:(\d+)[\s\S]*classic on tcp:\/\/127\.0\.0\.1:(\d+)/);
  const login = await cli(['login', m[2]!, '-u', 'root'], { env: { WIREKIT_PASSWORD: 'rootpass' } });
  assert.equal(login.code, 0, login.stderr);
  const agent = spawn(process.execPath, [MAIN, 'serve', '--hub', m[1]!, '--enroll-token-file', path.join(state, 'enrollment-token'), '--id', 'wk1', '--no-local', '--hub-token-file', path.join(dir, 'wk1.hub-token')], { stdio: 'ignore', env: env() });
  children.add(agent);
  for (const [gen, port, mid] of [['classic', m[4]!, 'ghost-classic'], ['current', m[3]!, 'ghost-current']] as const) {
    const g = spawn('/usr/bin/python3', [GHOST_PY, '--gen', gen, '--port', port, '--mid', mid, '--home', ghostHome], { stdio: 'ignore' });
    children.add(g);
  }
  await waitListed(['wk1', 'ghost-classic', 'ghost-current']);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

test('one ls holds the wirekit agent and both ghosts, the ghosts marked unauthenticated', { skip }, async () => {
  const listed = await waitListed(['wk1', 'ghost-classic', 'ghost-current']);
  assert.deepEqual(listed.map((a) => [a.id, a.authenticated]).sort(), [['ghost-classic', false], ['ghost-current', false], ['wk1', true]]);
  const r = await cli(['ls']);
  assert.match(r.stdout, /^ghost-classic .*\(unauthenticated\)/m);
  assert.doesNotMatch(r.stdout, /^wk1 .*\(unauthenticated\)/m);
});

for (const id of ['wk1', 'ghost-classic', 'ghost-current']) {
  test(`wirekit exec and cp reach ${id}`, { skip }, async () => {
    const r = await cli(['exec', `@${id}`, '--', 'sh', '-c', 'read x; echo "got $x"; exit 4'], { input: 'hello\n' });
    assert.equal(r.code, 4, r.stderr);
    assert.equal(r.stdout, 'got hello\n');
    const local = path.join(dir, `${id}.txt`);
    writeFileSync(local, `file for ${id}\n`);
    const remote = path.join(ghostHome, `${id}-copy.txt`);
    const up = await cli(['cp', local, `${id}:${remote}`]);
    assert.equal(up.code, 0, up.stderr);
    const back = path.join(dir, `${id}-back.txt`);
    const down = await cli(['cp', `${id}:${remote}`, back]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(readFileSync(back, 'utf8'), `file for ${id}\n`);
  });
}

for (const id of ['ghost-classic', 'ghost-current']) {
  test(`wirekit shell @${id} in a pty: typed-ahead input, its size, a resize, UTF-8, exit`, { skip }, async () => {
    const term = pty.spawn(process.execPath, [MAIN, 'shell', `@${id}`], { cols: 80, rows: 24, env: { ...env(), TERM: 'xterm' } as Record<string, string> });
    let out = '';
    term.onData((d) => (out += d));
    const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    const waitFor = async (re: RegExp, from: number) => {
      for (let i = 0; i < 1500; i++) {
        if (re.test(out.slice(from))) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`no ${re} in output: ${JSON.stringify(out)}`);
    };
    try {
      term.write('stty size; echo mark-$((6*7))\r');
      await waitFor(/24 80\r*\n[^]*mark-42/, 0);
      for (let i = 0; ; i++) {
        const at = out.length;
        if (i === 0) term.resize(100, 30);
        term.write(`stty size; echo mark2-$((2+${i}))\r`);
        await waitFor(new RegExp(`mark2-${2 + i}\r*\n`), at);
        if (/30 100\r*\n/.test(out.slice(at))) break;
        if (i > 50) throw new Error('resize never arrived');
      }
      term.write('echo "Ѐд-utf8"\r');
      // Classic ghosts take every byte 0x80 as a control (Ѐ is D0 80): the hub sends U+FFFD.
      await waitFor(id === 'ghost-classic' ? /\uFFFDд-utf8\r*\n/ : /Ѐд-utf8\r*\n/, 0);
      term.write('exit\r');
      assert.equal(await exited, 0);
    } finally {
      term.kill();
    }
  });
}

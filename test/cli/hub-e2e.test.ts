/**
 * End-to-end through a fleet hub: `wirekit hub`, three `wirekit serve --hub` agents and the CLI,
 * all as child processes on loopback. The same assertions as the direct tests, through the hub.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readFileSync, realpathSync, writeFileSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';
import pty from 'node-pty';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-hub-e2e-')));
const state = path.join(dir, 'hub-state');
const home = path.join(dir, 'home');
const children = new Set<ChildProcess>();
let hub: ChildProcess;
let agentsUrl = '';
let usersUrl = '';
const agents = new Map<string, ChildProcess>();
const env = () => ({ ...process.env, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_RUNTIME_DIR: path.join(dir, 'run'), WIREKIT_TOKEN: '', WIREKIT_ADDRESS: '', WIREKIT_HUB: '' });

const cli = cliRunner(env, children);

function startAgent(id: string, labels: string[], token = path.join(state, 'enrollment-token')): ChildProcess {
  const a = spawn(process.execPath, [MAIN, 'serve', '--hub', agentsUrl, '--enroll-token-file', token, '--id', id, '--no-local', '--hub-token-file', path.join(dir, `${id}.hub-token`), '-v', ...labels.flatMap((l) => ['--label', l])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env(),
  });
  children.add(a);
  return a;
}

async function waitListed(ids: string[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cli(['ls', '--json']);
    const listed = r.code === 0 ? (JSON.parse(String(r.stdout)) as { id: string }[]).map((a) => a.id) : [];
    if (ids.every((i) => listed.includes(i)) && listed.length === ids.length) return;
    if (Date.now() > deadline) throw new Error(`agents ${ids.join(',')} not listed: ${listed.join(',')} ${r.stderr}`);
    await new Promise((r2) => setTimeout(r2, 100));
  }
}

before(async () => {
  mkdirSync(home);
  const init = await cli(['hub', '--init', '--admin-user', 'root', '--state', state], { env: { WIREKIT_ADMIN_PASS: 'rootpass' } });
  assert.equal(init.code, 0, init.stderr);
  const add = await cli(['hub', 'user', 'add', 'ann', '--state', state], { env: { WIREKIT_PASSWORD: 'annpass' } });
  assert.equal(add.code, 0, add.stderr);
  hub = spawn(process.execPath, [MAIN, 'hub', '--state', state, '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', 'off', '--log-level', 'info', '--keepalive', '300ms'], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
  children.add(hub);
  const m = await waitLine(hub.stderr!, /agents on (tcp:\/\/127\.0\.0\.1:\d+), users on (tcp:\/\/127\.0\.0\.1:\d+)/);
  agentsUrl = m[1]!;
  usersUrl = m[2]!;
  assert.equal(statSync(state).mode & 0o777, 0o700);
  const login = await cli(['login', usersUrl, '-u', 'root'], { env: { WIREKIT_PASSWORD: 'rootpass' } });
  assert.equal(login.code, 0, login.stderr);
  assert.equal(statSync(path.join(home, '.config/wirekit/hubs.json')).mode & 0o777, 0o600);
  agents.set('lab1', startAgent('lab1', ['site=lab', 'rack=1']));
  agents.set('lab2', startAgent('lab2', ['site=lab', 'rack=2']));
  agents.set('fab1', startAgent('fab1', ['site=factory']));
  await waitListed(['fab1', 'lab1', 'lab2']);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
});

test('ls lists every agent and filters by property', async () => {
  const r = await cli(['ls']);
  assert.equal(r.code, 0, r.stderr);
  const lines = String(r.stdout).trim().split('\n');
  assert.match(lines[0]!, /^ID\s+HOSTNAME\s+ADDRESS\s+SINCE\s+PROPERTIES$/);
  assert.deepEqual(lines.slice(1).map((l) => l.split(/\s+/)[0]), ['fab1', 'lab1', 'lab2']);
  const f = await cli(['ls', '--json', '-f', 'site=^lab$', '-f', 'rack=2']);
  assert.deepEqual((JSON.parse(String(f.stdout)) as { id: string; properties: Record<string, string> }[]).map((a) => [a.id, a.properties.rack]), [['lab2', '2']]);
});

test('exec through the hub: argv, stdin, stdout and stderr apart, exit code', async () => {
  const r = await cli(['exec', '@lab1', '--', 'sh', '-c', 'read x; echo "out $x"; echo err >&2; exit 7'], { input: 'typed\n' });
  assert.equal(r.code, 7, r.stderr);
  assert.equal(String(r.stdout), 'out typed\n');
  assert.equal(r.stderr, 'err\n');
  const byFlag = await cli(['exec', '-A', 'fab1', '--', 'printf', '%s', 'hello']);
  assert.equal(String(byFlag.stdout), 'hello');
  const missing = await cli(['exec', '@nope', '--', 'true']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no agent nope/);
});

test('cp through the hub both ways, checksums verified', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const src = path.join(dir, 'up.bin');
  writeFileSync(src, data);
  const remote = path.join(dir, 'remote-copy.bin');
  const up = await cli(['cp', '--json', '--checksum', 'sha256', src, `lab2:${remote}`]);
  assert.equal(up.code, 0, up.stderr);
  const sha = createHash('sha256').update(data).digest('hex');
  assert.equal((JSON.parse(String(up.stdout)) as { sha256: string }).sha256, sha);
  assert.equal(createHash('sha256').update(readFileSync(remote)).digest('hex'), sha);
  const back = path.join(dir, 'down.bin');
  const down = await cli(['cp', '--json', `lab2:${remote}`, back]);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(readFileSync(back), data);
});

test('forward through the hub to a local HTTP server', async () => {
  const server = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const target = (server.address() as net.AddressInfo).port;
  const free = net.createServer();
  free.listen(0, '127.0.0.1');
  await once(free, 'listening');
  const local = (free.address() as net.AddressInfo).port;
  free.close();
  const fwd = spawn(process.execPath, [MAIN, 'forward', '@fab1', `127.0.0.1:${local}:127.0.0.1:${target}`], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
  children.add(fwd);
  await waitLine(fwd.stderr!, /forwarding/);
  const body = await new Promise<string>((resolve, reject) => {
    http.get(`http://127.0.0.1:${local}/through-hub`, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  assert.equal(body, 'hello from /through-hub');
  fwd.kill('SIGINT');
  server.close();
});

test('a user outside an agent allowlist is refused; a wrong enrollment token is refused and the hub goes on', async () => {
  const annHome = path.join(dir, 'ann-home');
  const annEnv = { XDG_CONFIG_HOME: path.join(annHome, '.config') };
  const login = await cli(['login', usersUrl, '-u', 'ann'], { env: { ...annEnv, WIREKIT_PASSWORD: 'annpass' } });
  assert.equal(login.code, 0, login.stderr);
  const ls = await cli(['ls', '--json'], { env: annEnv });
  assert.deepEqual(JSON.parse(String(ls.stdout)), [], 'no agent lists ann');
  const denied = await cli(['exec', '@lab1', '--', 'true'], { env: annEnv });
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /may not open agent lab1/);

  const badToken = path.join(dir, 'bad-token');
  writeFileSync(badToken, 'not-the-enrollment-token\n', { mode: 0o600 });
  const intruder = startAgent('intruder', [], badToken);
  await waitLine(hub.stderr!, /agent "intruder" from 127\.0\.0\.1 refused: wrong token/);
  intruder.kill('SIGKILL');
  await waitListed(['fab1', 'lab1', 'lab2']);
});

test('a duplicate id is refused; an agent killed leaves the list; restarted it comes back', async () => {
  const dup = startAgent('lab1', []);
  await waitLine(dup.stderr!, /duplicate agent id: lab1/);
  dup.kill('SIGKILL');
  agents.get('fab1')!.kill('SIGKILL');
  await waitListed(['lab1', 'lab2']);
  agents.set('fab1', startAgent('fab1', ['site=factory']));
  await waitListed(['fab1', 'lab1', 'lab2']);
});

test('shell through the hub in a real pty: typed input, resize, UTF-8, exit status', async () => {
  const term = pty.spawn(process.execPath, [MAIN, 'shell', '@lab2', '--', '/bin/sh'], {
    cols: 80,
    rows: 24,
    env: { ...env(), TERM: 'xterm', PS1: '$ ' } as Record<string, string>,
  });
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
  const waitFor = async (re: RegExp, from: number) => {
    for (let i = 0; i < 1500; i++) {
      const m = re.exec(out.slice(from));
      if (m) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${re} in output: ${JSON.stringify(out)}`);
  };
  try {
    // Typed before the session is up: it must arrive, in order.
    term.write('stty size; echo mark-$((6*7))\r');
    await waitFor(/24 80\r*\n[^]*mark-42/, 0);
    for (let i = 0; ; i++) {
      const at = out.length;
      if (i === 0) term.resize(100, 30);
      term.write(`stty size; echo mark2-$((2+${i}))\r`);
      await waitFor(new RegExp(`mark2-${2 + i}\r*\n`), at);
      if (/30 100\r*\n/.test(out.slice(at))) break;
      assert.ok(i < 20, 'window size never changed');
    }
    const at = out.length;
    term.write(`printf '%s' 'привет' | od -An -tx1 | tr -d ' \\n'; echo; echo done3\r`);
    const m = await waitFor(/([0-9a-f]{12,})\r*\n[^]*done3/, at);
    assert.equal(m[1], Buffer.from('привет').toString('hex'));
    term.write('exit 5\r');
    assert.equal(await exited, 5);
  } finally {
    try {
      term.kill();
    } catch {
      // exited
    }
  }
});

test('an agent that stops answering (SIGSTOP) is dropped within the keepalive timeout, and its running session ends', async () => {
  const lab2 = agents.get('lab2')!;
  const session = spawn(process.execPath, [MAIN, 'exec', '@lab2', '--', 'sh', '-c', 'echo started; sleep 60'], { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
  children.add(session);
  await waitLine(session.stdout!, /started/);
  const ended = new Promise<number | null>((resolve) => session.on('close', (code) => resolve(code)));
  lab2.kill('SIGSTOP');
  try {
    await waitListed(['fab1', 'lab1'], 10_000);
    assert.notEqual(await ended, 0, 'the session through the silent agent ended (not by the program)');
  } finally {
    lab2.kill('SIGCONT');
  }
  // Back from the stop, it finds its link gone and registers again.
  await waitListed(['fab1', 'lab1', 'lab2'], 15_000);
});

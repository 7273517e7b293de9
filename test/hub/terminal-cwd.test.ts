/**
 * A file uploaded with `terminal_sid` (Overlord's dashboard drops a file on a terminal) lands in
 * that terminal shell's current directory: on a `wirekit serve --hub` agent (the built CLI), one
 * with `--root`, and the Python test ghost. Only the user who opened the terminal may name it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import type { RunningHub } from '../../src/hub/server.js';
import { PEERS, skipWithout } from '../helpers/peers.js';
import { overlordHub, startGhost, waitFor, type Ghost } from './overlord-helpers.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const skipGhost = skipWithout(PEERS.python);
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-termcwd-')));
const root = path.join(dir, 'root');
const children = new Set<ChildProcess>();
let h: Awaited<ReturnType<typeof overlordHub>>;
let hub: RunningHub;
let base: string;
let ghost: Ghost | undefined;
const tokens: Record<string, string> = {};
let agentLog = '';

async function login(username: string, password: string): Promise<string> {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username, password }) });
  return ((await r.json()) as { data: { token: string } }).data.token;
}

function serveAgent(id: string, extra: string[]): void {
  const tokenFile = path.join(dir, 'enroll');
  writeFileSync(tokenFile, hub.hub.enrollmentToken + '\n', { mode: 0o600 });
  const a = hub.agentAddress;
  const env = { ...process.env, XDG_CONFIG_HOME: path.join(dir, `${id}-config`), XDG_RUNTIME_DIR: path.join(dir, `${id}-run`), WIREKIT_TOKEN: '', WIREKIT_ADDRESS: '', WIREKIT_HUB: '', SHELL: '/bin/sh' };
  const child = spawn(process.execPath, [MAIN, 'serve', '--hub', `tcp://${a.host}:${a.port}`, '--enroll-token-file', tokenFile, '--id', id, '--no-local', '--hub-token-file', path.join(dir, `${id}.hub-token`), ...extra], { stdio: ['ignore', 'ignore', 'pipe'], env });
  child.stderr!.on('data', (d: Buffer) => (agentLog += `${id}: ${String(d)}`));
  children.add(child);
}

before(async () => {
  mkdirSync(root);
  h = await overlordHub();
  hub = h.hub;
  await hub.hub.addUser('bob', 'pw-bob', false);
  base = `http://127.0.0.1:${h.httpPort}`;
  writeFileSync(path.join(dir, 'labels.json'), JSON.stringify({ allowlist: ['u/bob'] }));
  serveAgent('wk1', ['--labels-file', path.join(dir, 'labels.json')]);
  serveAgent('wk-root', ['--root', root]);
  const ids = ['wk1', 'wk-root'];
  if (!skipGhost) {
    ghost = startGhost(['--gen', 'current', '--port', String(h.httpPort), '--mid', 'ghost1', '--home', path.join(dir), '--properties', '{"allowlist":["u/bob"]}']);
    ids.push('ghost1');
  }
  await waitFor(() => ids.every((i) => hub.hub.registry.get(i) !== undefined), `agents ${ids.join(', ')} joined; ${agentLog}`, 20_000);
  tokens.ann = await login('ann', 'pw-ann');
  tokens.bob = await login('bob', 'pw-bob');
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await ghost?.kill();
  await h?.close();
});

/** A terminal as Overlord's dashboard opens it: text frames only; the sid frame comes first. */
async function dashboardTerminal(agent: string, user = 'ann'): Promise<{ ws: WebSocket; sid: Promise<string>; type(line: string, mark: string): Promise<void>; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${h.httpPort}/api/agents/${agent}/tty?token=${encodeURIComponent(tokens[user]!)}&cols=80&rows=24`);
  let out = '';
  let resolveSid: (s: string) => void;
  const sid = new Promise<string>((r) => (resolveSid = r));
  ws.on('message', (d: Buffer, binary: boolean) => {
    if (binary) out += d.toString('utf8');
    else {
      const m = JSON.parse(d.toString('utf8')) as { type: string; data: string };
      if (m.type === 'sid') resolveSid(m.data);
    }
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('close', (code, reason) => reject(new Error(`tty closed ${code} ${String(reason)}`)));
  });
  ws.send('\x1b[8;24;80t');
  return {
    ws,
    sid,
    async type(line, mark) {
      const from = out.length;
      ws.send(line + '\r');
      await waitFor(() => out.slice(from).includes(mark), `${JSON.stringify(mark)} in the terminal: ${JSON.stringify(out.slice(-300))}`, 15_000);
    },
    close: () => ws.terminate(),
  };
}

/** Overlord's upload: multipart, field `file`, query dest/terminal_sid. */
async function upload(agent: string, name: string, body: string, query: Record<string, string>, user = 'ann'): Promise<{ status: number; json: { status: string; data: unknown } }> {
  const boundary = 'wkboundary' + Math.random().toString(16).slice(2);
  const data = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), Buffer.from(body), Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const r = await fetch(`${base}/api/agents/${agent}/file?${new URLSearchParams(query)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens[user]}`, 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(data.length) },
    body: data,
  });
  return { status: r.status, json: (await r.json()) as { status: string; data: unknown } };
}

test('wirekit agent: cd in the terminal, then an upload with terminal_sid lands there; dest relative to it; absolute dest wins', async () => {
  const x = path.join(dir, 'x');
  mkdirSync(path.join(x, 'sub'), { recursive: true });
  const t = await dashboardTerminal('wk1');
  try {
    const sid = await t.sid;
    await t.type(`cd ${x} && echo in-$((6*7))`, 'in-42');
    const r = await upload('wk1', 'dropped.txt', 'dropped on the terminal\n', { terminal_sid: sid });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(readFileSync(path.join(x, 'dropped.txt'), 'utf8'), 'dropped on the terminal\n');
    assert.equal((r.json.data as { path: string }).path, path.join(x, 'dropped.txt'));
    assert.equal((await upload('wk1', 'rel.txt', 'rel\n', { terminal_sid: sid, dest: 'sub/' })).status, 200);
    assert.equal(readFileSync(path.join(x, 'sub', 'rel.txt'), 'utf8'), 'rel\n');
    const abs = path.join(dir, 'abs.txt');
    assert.equal((await upload('wk1', 'ignored.txt', 'abs\n', { terminal_sid: sid, dest: abs })).status, 200);
    assert.equal(readFileSync(abs, 'utf8'), 'abs\n');
    // A program running in the foreground in another directory: the file goes where it is.
    const fg = path.join(dir, 'fg');
    mkdirSync(fg);
    await t.type(`(cd ${fg} && echo fg-$((3*3)) && exec sleep 60)`, 'fg-9');
    assert.equal((await upload('wk1', 'fg.txt', 'fg\n', { terminal_sid: sid })).status, 200);
    assert.equal(readFileSync(path.join(fg, 'fg.txt'), 'utf8'), 'fg\n', 'the upload lands in the foreground program’s directory');
    t.ws.send('\x03');
  } finally {
    t.close();
  }
});

test('a terminal sid names only its own user’s terminal, on its own agent, while it is open', async () => {
  const t = await dashboardTerminal('wk1');
  await t.type('echo hi-$((2+2))', 'hi-4');
  const sid = await t.sid;
  try {
    const bob = await upload('wk1', 'bob.txt', 'no\n', { terminal_sid: sid }, 'bob');
    assert.equal(bob.status, 400);
    assert.equal(bob.json.status, 'error');
    assert.match(String(bob.json.data), /no terminal/);
    const other = await upload('wk-root', 'x.txt', 'no\n', { terminal_sid: sid });
    assert.equal(other.status, 400);
  } finally {
    t.close();
  }
  // Once the terminal has ended its sid names nothing.
  let gone = false;
  for (let i = 0; i < 100 && !gone; i++) {
    gone = (await upload('wk1', 'late.txt', 'no\n', { terminal_sid: sid })).status === 400;
    if (!gone) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(gone, 'a closed terminal’s sid is refused');
});

test('a wirekit client (the console) asks for the sid with {"type":"sid"}', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${h.httpPort}/api/agents/wk1/tty?token=${encodeURIComponent(tokens.ann!)}&cols=80&rows=24`);
  ws.on('error', () => {});
  const texts: { type: string; data?: string }[] = [];
  ws.on('message', (d: Buffer, binary: boolean) => {
    if (!binary) texts.push(JSON.parse(d.toString('utf8')) as { type: string; data?: string });
  });
  try {
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'resize', cols: 80, rows: 24 }));
    ws.send(JSON.stringify({ type: 'sid' }));
    await waitFor(() => texts.some((m) => m.type === 'sid'), 'the sid frame');
    assert.match(texts.find((m) => m.type === 'sid')!.data!, /^[0-9a-f-]{36}$/);
  } finally {
    ws.terminate();
  }
});

test('--root: a cwd inside the root is used, one outside falls back to the root', async () => {
  const inside = path.join(root, 'in');
  mkdirSync(inside);
  const t = await dashboardTerminal('wk-root');
  try {
    await t.type(`cd ${inside} && echo root-$((5+5))`, 'root-10');
    const sid = await t.sid;
    const r = await upload('wk-root', 'r.txt', 'inside\n', { terminal_sid: sid });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(readFileSync(path.join(inside, 'r.txt'), 'utf8'), 'inside\n');
    await t.type(`cd ${dir} && echo out-$((5+6))`, 'out-11');
    const r2 = await upload('wk-root', 'o.txt', 'outside\n', { terminal_sid: sid });
    assert.equal(r2.status, 200, JSON.stringify(r2.json));
    assert.equal(readFileSync(path.join(root, 'o.txt'), 'utf8'), 'outside\n');
    assert.ok(!existsSync(path.join(dir, 'o.txt')));
  } finally {
    t.close();
  }
});

test('Overlord ghost: file_upload carries the ghost’s terminal sid, and the file lands in its shell’s cwd', { skip: skipGhost }, async () => {
  const y = path.join(dir, 'y');
  mkdirSync(y);
  const t = await dashboardTerminal('ghost1');
  try {
    await t.type(`cd ${y} && echo ghost-$((7*6))`, 'ghost-42');
    const sid = await t.sid;
    const r = await upload('ghost1', 'g.txt', 'to the ghost\n', { terminal_sid: sid });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const line = await ghost!.waitLine('upload-terminal');
    assert.equal(line, `upload-terminal ${sid} ${y}`);
    await waitFor(() => existsSync(path.join(y, 'g.txt')), 'the file in the ghost terminal’s cwd');
    assert.equal(readFileSync(path.join(y, 'g.txt'), 'utf8'), 'to the ghost\n');
    assert.equal((await upload('ghost1', 'g2.txt', 'no\n', { terminal_sid: sid }, 'bob')).status, 400);
  } finally {
    t.close();
  }
});

/**
 * End-to-end checks of what the client commands do with their local side (issue 12, "Processes"
 * and item 3): a closed local output, interrupts, escapes; against a daemon from the built CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pty from 'node-pty';
import { EscapeScanner } from '../../src/cli/common.js';
import { MAIN, waitLine } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-procs-')));
const sock = path.join(dir, 'agent.sock');
const children = new Set<ChildProcess>();
let daemon: ChildProcess;

before(async () => {
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(daemon);
  await waitLine(daemon.stderr!, /listening on/);
});

after(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `wirekit ARGS` against the test daemon with all three stdio piped. */
function start(args: string[]): { child: ChildProcess; stderr: () => string; closed: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, WIREKIT_ADDRESS: `unix:${sock}` }, stdio: 'pipe' });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const closed = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, stderr: () => err, closed };
}

for (const cmd of [['exec', '--', 'yes'], ['shell', '--', 'yes']]) {
  test(`${cmd[0]} -- yes | head -1: exits quietly with 141 when its stdout is a closed pipe (issue 12 item 3)`, async () => {
    const { child, stderr, closed } = start(cmd);
    await new Promise((resolve) => child.stdout!.once('data', resolve));
    child.stdout!.destroy();
    assert.equal(await closed, 141, stderr());
    assert.equal(stderr(), '');
  });
}

/** A TCP server on loopback running `onConnection`; resolves with its port. */
async function tcpTarget(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server };
}

test('forward: a target that resets closes the local connection (issue 12 item 12)', async () => {
  const { port, server } = await tcpTarget((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  const { child, closed } = start(['forward', `0:127.0.0.1:${port}`]);
  const m = await waitLine(child.stdout!, /listening on (\S+):(\d+)/);
  const local = net.connect(Number(m[2]), '127.0.0.1');
  local.on('error', () => {});
  await once(local, 'connect');
  local.write('hello');
  await once(local, 'close');
  child.kill('SIGTERM');
  assert.equal(await closed, 0);
  server.close();
});

test('forward: 200 clients that send the request and half-close before the reply leave no descriptor in the daemon (issue 12 item 13)', async () => {
  const { port, server } = await tcpTarget((s) => s.on('error', () => {}));
  const fds = () => readdirSync(`/proc/${daemon.pid}/fd`).length;
  const request = JSON.stringify({ cmd: 'forward', opts: { host: '127.0.0.1', port } }) + '\n';
  const halfClose = () =>
    new Promise<void>((resolve, reject) => {
      const c = net.connect(sock, () => c.end(request));
      c.on('data', () => {});
      c.on('error', reject);
      c.on('close', () => resolve()); // the daemon closed it
    });
  await halfClose(); // warm-up
  const before = fds();
  // 20 at a time: a Unix socket's full backlog refuses connections with EAGAIN.
  for (let i = 0; i < 200; i += 20) await Promise.all(Array.from({ length: 20 }, halfClose));
  // The daemon closes the target connection last; wait for its count to come back.
  while (fds() > before) await new Promise((r) => setTimeout(r, 10));
  assert.equal(fds(), before);
  server.close();
});

test('exec: a second Ctrl-C ends the session from the client side when the program goes on (issue 12 item 10)', async () => {
  const { child, stderr, closed } = start(['exec', '--', 'sh', '-c', "trap 'echo got-int' INT; echo ready; while :; do sleep 1; done"]);
  await waitLine(child.stdout!, /ready/);
  child.kill('SIGINT');
  await waitLine(child.stdout!, /got-int/); // passed on, and the program goes on
  // Two Ctrl-C in a row (a few tries, should the machine be slow enough to stretch a pair apart).
  let code: number | null | undefined;
  for (let i = 0; i < 5 && code === undefined; i++) {
    child.kill('SIGINT');
    child.kill('SIGINT');
    const gotInt = new Promise<undefined>((resolve) => {
      const on = (d: Buffer) => {
        if (!d.includes('got-int')) return;
        child.stdout!.off('data', on);
        resolve(undefined);
      };
      child.stdout!.on('data', on);
    });
    code = await Promise.race([closed, gotInt]);
  }
  assert.equal(code, 130, stderr());
  assert.match(stderr(), /interrupted twice/);
});

/** Runs `wirekit ARGS` under a pseudo-terminal; resolves with its output so far and its exit. */
function startInTerminal(args: string[]) {
  const term = pty.spawn(process.execPath, [MAIN, ...args], { cols: 80, rows: 24, env: { ...process.env, WIREKIT_ADDRESS: `unix:${sock}` } as Record<string, string> });
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((resolve) => term.onExit((e) => resolve(e.exitCode)));
  const waitFor = async (re: RegExp) => {
    while (!re.test(out)) await Promise.race([new Promise((r) => term.onData(r)), exited]);
  };
  return { term, exited, waitFor, output: () => out };
}

for (const cmd of ['exec', 'shell']) {
  test(`${cmd}: ~. at the start of a line ends a session whose program ignores its input and signals (issue 12 item 10)`, async () => {
    const { term, exited, waitFor, output } = startInTerminal([cmd, '--', 'sh', '-c', 'trap "" INT HUP; echo ready; exec sleep 1000 </dev/null']);
    await waitFor(/ready/);
    term.write(cmd === 'exec' ? 'x\r~.\r' : 'x\r~.');
    assert.equal(await exited, 255, output());
  });
}

test('EscapeScanner: ~. only at the start of a line; ~~ sends one ~; split across reads', () => {
  const run = (...chunks: string[]) => {
    const e = new EscapeScanner();
    let sent = '';
    for (const c of chunks) {
      const r = e.scan(Buffer.from(c));
      sent += Buffer.from(r.data).toString();
      if (r.escape) return { sent, escape: true };
    }
    return { sent, escape: false };
  };
  assert.deepEqual(run('~.'), { sent: '', escape: true });
  assert.deepEqual(run('ls\r~.rest'), { sent: 'ls\r', escape: true });
  assert.deepEqual(run('a~.'), { sent: 'a~.', escape: false });
  assert.deepEqual(run('\n~', '.'), { sent: '\n', escape: true });
  assert.deepEqual(run('~~.'), { sent: '~.', escape: false });
  assert.deepEqual(run('~x'), { sent: '~x', escape: false });
});

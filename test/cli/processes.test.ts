/**
 * End-to-end checks of what the client commands do with their local side (issue 12, "Processes"
 * and item 3): a closed local output, interrupts, escapes; against a daemon from the built CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pty from 'node-pty';
import { MAIN, waitLine, within } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-procs-')));
const sock = path.join(dir, 'agent.sock');
const children = new Set<ChildProcess>();
const terminals = new Set<pty.IPty>();
const servers = new Set<net.Server>();
const targetSockets = new Set<net.Socket>();
let daemon: ChildProcess;
/** Every test ends in bounded time even when what it checks is broken. */
const T = { timeout: 60_000 };

before(async () => {
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(daemon);
  await waitLine(daemon.stderr!, /listening on/);
});

after(() => {
  for (const t of terminals) t.kill('SIGKILL');
  for (const c of children) c.kill('SIGKILL');
  for (const s of servers) s.close();
  for (const s of targetSockets) s.destroy();
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
  test(`${cmd[0]} -- yes | head -1: exits quietly with 141 when its stdout is a closed pipe (issue 12 item 3)`, T, async () => {
    const { child, stderr, closed } = start(cmd);
    await within(new Promise((resolve) => child.stdout!.once('data', resolve)), 'the first output');
    child.stdout!.destroy();
    assert.equal(await within(closed, `the exit of wirekit ${cmd.join(' ')}`), 141, stderr());
    assert.equal(stderr(), '');
  });
}

/** A TCP server on loopback running `onConnection`; resolves with its port. */
async function tcpTarget(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    targetSockets.add(s);
    s.once('close', () => targetSockets.delete(s));
    onConnection(s);
  });
  servers.add(server);
  server.listen(0, '127.0.0.1');
  await within(once(server, 'listening'), 'a listening target');
  return { port: (server.address() as net.AddressInfo).port, server };
}

test('forward: a target that resets closes the local connection (issue 12 item 12)', T, async () => {
  const { port, server } = await tcpTarget((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  const { child, closed } = start(['forward', `0:127.0.0.1:${port}`]);
  const m = await waitLine(child.stdout!, /listening on (\S+):(\d+)/);
  const local = net.connect(Number(m[2]), '127.0.0.1');
  local.on('error', () => {});
  try {
    await within(once(local, 'connect'), 'the local connection');
    local.write('hello');
    await within(once(local, 'close'), 'the local connection closed after the target reset');
  } finally {
    local.destroy();
  }
  child.kill('SIGTERM');
  assert.equal(await within(closed, 'the exit of wirekit forward'), 0);
  server.close();
});

/** The daemon's socket descriptors, as the inodes of `socket:[N]` in /proc/PID/fd. */
function daemonSockets(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${daemon.pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${daemon.pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

test('forward: 200 clients that send the request and half-close before the reply leave no descriptor in the daemon (issue 12 item 13)', T, async () => {
  const { port, server } = await tcpTarget((s) => s.on('error', () => {}));
  const request = JSON.stringify({ cmd: 'forward', opts: { host: '127.0.0.1', port } }) + '\n';
  const halfClose = () =>
    within(
      new Promise<void>((resolve, reject) => {
        const c = net.connect(sock, () => c.end(request));
        c.on('data', () => {});
        c.on('error', reject);
        c.on('close', () => resolve()); // the daemon closed it
      }),
      'the daemon closing a half-closed forward client',
    );
  // Only the sockets the daemon opens from here on count (its listener, and whatever earlier tests
  // left closing, are not this test's): each client's connection and its target connection.
  const before = daemonSockets();
  const leaked = () => [...daemonSockets()].filter((inode) => !before.has(inode));
  // 20 at a time: a Unix socket's full backlog refuses connections with EAGAIN.
  for (let i = 0; i < 200; i += 20) await Promise.all(Array.from({ length: 20 }, halfClose));
  // The daemon closes the target connection last: wait (bounded) for every new socket to go.
  for (let i = 0; i < 500 && leaked().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(leaked(), [], 'sockets the daemon still holds');
  server.close();
});

test('exec: a second Ctrl-C ends the session from the client side when the program goes on (issue 12 item 10)', T, async () => {
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
    code = await within(Promise.race([closed, gotInt]), 'the exit or the program\'s got-int after two Ctrl-C');
  }
  assert.equal(code, 130, stderr());
  assert.match(stderr(), /interrupted twice/);
});

/** Runs `wirekit ARGS` under a pseudo-terminal: its output so far, its exit, and a bounded wait for output. */
function startInTerminal(args: string[]) {
  const term = pty.spawn(process.execPath, [MAIN, ...args], { cols: 80, rows: 24, env: { ...process.env, WIREKIT_ADDRESS: `unix:${sock}` } as Record<string, string> });
  terminals.add(term);
  let out = '';
  let wake: (() => void) | undefined;
  term.onData((d) => {
    out += d;
    wake?.();
  });
  const exited = within(
    new Promise<number>((resolve) =>
      term.onExit((e) => {
        terminals.delete(term);
        wake?.();
        resolve(e.exitCode);
      }),
    ),
    `the exit of wirekit ${args.join(' ')} in a terminal`,
  );
  exited.catch(() => {});
  let gone = false;
  void exited.finally(() => (gone = true)).catch(() => {});
  const waitFor = (re: RegExp) =>
    within(
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(out)) resolve();
          else if (gone) reject(new Error(`exited without ${re}: ${out}`));
        };
        wake = check;
        check();
      }),
      () => `${re} in: ${out}`,
    ).finally(() => (wake = undefined));
  return { term, exited, waitFor, output: () => out };
}

for (const cmd of [['exec', '-t'], ['shell']]) {
  test(`${cmd.join(' ')}: ~. at the start of a line ends a session whose program ignores its input and signals (issue 12 item 10)`, T, async () => {
    const { term, exited, waitFor, output } = startInTerminal([...cmd, '--', 'sh', '-c', 'trap "" INT HUP; echo ready; exec sleep 1000 </dev/null']);
    await waitFor(/ready/);
    term.write('x\r~.');
    assert.equal(await exited, 255, output());
  });
}

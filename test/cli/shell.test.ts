/**
 * `wirekit shell` driven through a real pseudo-terminal on the client side (node-pty), against a
 * daemon started from the built CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-shell-'));
const sock = path.join(dir, 'agent.sock');
let daemon: ChildProcess;

before(async () => {
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`daemon did not start: ${buf}`)), 10_000);
    daemon.stderr!.on('data', (d) => {
      buf += d;
      if (buf.includes('listening on')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
});

after(() => {
  daemon.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('shell: type a command, resize, UTF-8 with byte 0x80, exit status', async () => {
  const term = pty.spawn(process.execPath, [MAIN, 'shell', '-a', sock, '--', '/bin/sh'], {
    cols: 80,
    rows: 24,
    env: { ...process.env, TERM: 'xterm', PS1: '$ ' } as Record<string, string>,
  });
  let out = '';
  term.onData((d) => (out += d));
  const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
  const waitFor = async (re: RegExp, from: number) => {
    for (let i = 0; i < 1000; i++) {
      const m = re.exec(out.slice(from));
      if (m) return m;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no ${re} in output: ${JSON.stringify(out)}`);
  };
  try {
    let mark = out.length;
    term.write('stty size; echo mark-$((6*7))\r');
    await waitFor(/24 80\r*\n[^]*mark-42/, mark);
    mark = out.length;
    term.resize(132, 43); // SIGWINCH to the client, which sends a RESIZE frame
    // The signal reaches the client asynchronously: ask until the new size shows (bounded).
    for (let i = 0; ; i++) {
      const at = out.length;
      term.write(`stty size; echo mark2-$((2+${i}))\r`);
      await waitFor(new RegExp(`mark2-${2 + i}\r*\n`), at);
      if (/43 132\r*\n/.test(out.slice(at))) break;
      assert.ok(i < 20, 'window size never changed');
    }
    mark = out.length;
    const text = 'Ѐ€π\u0080ok'; // UTF-8 holds 0x80 bytes (D0 80, E2 82 AC, C2 80)
    assert.ok(Buffer.from(text).includes(0x80));
    term.write(`printf '%s' '${text}' | od -An -tx1 | tr -d ' \\n'; echo; echo done3\r`);
    const m = await waitFor(/([0-9a-f]{20,})\r*\n[^]*done3/, mark);
    assert.equal(m[1], Buffer.from(text).toString('hex'));
    term.write('exit 7\r');
    assert.equal(await exited, 7);
  } finally {
    try {
      term.kill();
    } catch {
      // exited
    }
  }
});

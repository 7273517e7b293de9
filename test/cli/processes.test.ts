/**
 * End-to-end checks of what the client commands do with their local side (issue 12, "Processes"
 * and item 3): a closed local output, interrupts, escapes; against a daemon from the built CLI.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

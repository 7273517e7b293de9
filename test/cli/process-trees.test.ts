/**
 * Nothing outlives its session (issue 12 items 8 and 9): a daemon stopped by SIGINT or SIGTERM,
 * or killed by SIGKILL, leaves no process of its exec and terminal sessions; a session's end (the
 * client gone, a detach, the program's exit) ends its whole process tree. Processes are found in
 * /proc by their Unix session (each session's program leads one), and only those carrying this
 * test's mark in their environment count or are killed: with other test files running beside this
 * one, a session id may be reused by someone else's process once the session is gone.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { sessionMembers } from '../../src/agent/sessions/process.js';
import { MAIN, waitLine, within } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-trees-')));
const children = new Set<ChildProcess>();
let counter = 0;
/** Every test ends in bounded time even when what it checks is broken. */
const T = { timeout: 60_000 };
/** In the environment of every program this file starts (inherited by all they start). */
const MARK = `WK_TREES_MARK=${randomBytes(8).toString('hex')}`;
const env = { WK_TREES_MARK: MARK.slice(MARK.indexOf('=') + 1) };

/** Whether process `pid` is alive and carries MARK (so is one of this file's programs). */
function marked(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(MARK);
  } catch {
    return false; // gone, or another user's
  }
}

/** Live processes of the Unix session `sid` that this file started. */
function ours(sid: number): number[] {
  return (sessionMembers(sid) ?? []).filter(marked);
}

after(() => {
  for (const c of children) c.kill('SIGKILL');
  // Whatever this file started and is still alive (only after a failure), and nothing else.
  for (const name of readdirSync('/proc')) {
    if (/^\d+$/.test(name) && marked(Number(name))) {
      try {
        process.kill(Number(name), 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startDaemon(): Promise<{ daemon: ChildProcess; client: AgentClient; closed: Promise<unknown> }> {
  const sock = path.join(dir, `agent-${++counter}.sock`);
  const daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(daemon);
  const closed = new Promise((resolve) => daemon.once('close', resolve));
  await waitLine(daemon.stderr!, /listening on/);
  return { daemon, client: new AgentClient({ address: `unix:${sock}` }), closed };
}

/** Resolves when the Unix session `sid` has `n` live processes of ours (at least `n`; 0 means none); rejects after 20 s. */
async function members(sid: number, n: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const m = ours(sid);
    if (n === 0 ? m.length === 0 : m.length >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`session ${sid}: processes ${JSON.stringify(ours(sid))}, expected ${n === 0 ? 'none' : n}`);
}

/** A program that ignores every signal a session's end may send, with a background child. */
const STUBBORN = 'trap "" HUP INT TERM; sleep 1000 & wait';

/** An exec session of STUBBORN; resolves with its session id once both processes run. */
async function stubbornExec(client: AgentClient): Promise<{ sid: number; close: () => void }> {
  const s = await within(client.exec(['sh', '-c', STUBBORN], { env }), 'an exec session');
  await members(s.pid!, 2);
  return { sid: s.pid!, close: () => s.close() };
}

/** A terminal session of STUBBORN; resolves with its session id (printed by the shell) once both run. */
async function stubbornTerminal(client: AgentClient): Promise<{ sid: number; close: () => void }> {
  const t = await within(client.terminal({ argv: ['sh', '-c', `echo "sid=$$"; ${STUBBORN}`], env }), 'a terminal session');
  let out = '';
  const sid = await within(
    new Promise<number>((resolve) =>
      t.output.on('data', (d: Buffer) => {
        out += d;
        const m = /sid=(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      }),
    ),
    () => `the terminal's sid in: ${out}`,
  );
  await members(sid, 2);
  return { sid, close: () => t.close() };
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  test(`a daemon stopped by ${sig} leaves no process of its exec and terminal sessions (issue 12 item 8)`, T, async () => {
    const { daemon, client, closed } = await startDaemon();
    const sessions = [await stubbornExec(client), await stubbornExec(client), await stubbornTerminal(client)];
    daemon.kill(sig);
    await within(closed, `the daemon's exit after ${sig}`);
    for (const s of sessions) await members(s.sid, 0);
  });
}

test('exec: a program ignoring SIGINT with a background child: the client gone ends the whole tree (issue 12 item 9)', T, async () => {
  const { client } = await startDaemon();
  const s = await within(client.exec(['sh', '-c', 'trap "" INT; sleep 1000 & wait'], { env }), 'an exec session');
  await members(s.pid!, 2);
  s.signal('SIGINT');
  s.close();
  await members(s.pid!, 0);
});

test('exec: a background child holding stdout after the program exited is ended with the session; its output arrives (issue 12 item 9)', T, async () => {
  const { client } = await startDaemon();
  const s = await within(client.exec(['sh', '-c', '(echo late; exec sleep 1000) & echo started'], { env }), 'an exec session');
  let out = '';
  s.stdout.on('data', (d: Buffer) => (out += d));
  assert.deepEqual(await within(s.exit, 'the exit status'), { code: 0, signal: null });
  assert.match(out, /started/);
  assert.match(out, /late/);
  await members(s.pid!, 0);
});

test('terminal: a detach ends the whole tree, also children ignoring SIGHUP (issue 12 item 9)', T, async () => {
  const { client } = await startDaemon();
  const t = await stubbornTerminal(client);
  t.close();
  await members(t.sid, 0);
});

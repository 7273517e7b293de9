/**
 * Nothing outlives its session (issue 12 items 8 and 9): a daemon stopped by SIGINT or SIGTERM,
 * or killed by SIGKILL, leaves no process of its exec and terminal sessions; a session's end (the
 * client gone, a detach, the program's exit) ends its whole process tree. Processes are found in
 * /proc by their Unix session (each session's program leads one).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../src/agent/client.js';
import { sessionMembers } from '../../src/agent/sessions/process.js';
import { MAIN, waitLine } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-trees-')));
const children = new Set<ChildProcess>();
const sids = new Set<number>();
let counter = 0;

after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const sid of sids) for (const pid of sessionMembers(sid) ?? []) process.kill(pid, 'SIGKILL');
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

/** Resolves when the Unix session `sid` has `n` live processes (at least one: `n` 0 means none). */
async function members(sid: number, n: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    const m = sessionMembers(sid) ?? [];
    if (n === 0 ? m.length === 0 : m.length >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`session ${sid}: processes ${JSON.stringify(sessionMembers(sid))}, expected ${n === 0 ? 'none' : n}`);
}

/** A program that ignores every signal a session's end may send, with a background child. */
const STUBBORN = 'trap "" HUP INT TERM; sleep 1000 & wait';

/** An exec session of STUBBORN; resolves with its session id once both processes run. */
async function stubbornExec(client: AgentClient): Promise<{ sid: number; close: () => void }> {
  const s = await client.exec(['sh', '-c', STUBBORN]);
  sids.add(s.pid!);
  await members(s.pid!, 2);
  return { sid: s.pid!, close: () => s.close() };
}

/** A terminal session of STUBBORN; resolves with its session id (printed by the shell) once both run. */
async function stubbornTerminal(client: AgentClient): Promise<{ sid: number; close: () => void }> {
  const t = await client.terminal({ argv: ['sh', '-c', `echo "sid=$$"; ${STUBBORN}`] });
  let out = '';
  const sid = await new Promise<number>((resolve) =>
    t.output.on('data', (d: Buffer) => {
      out += d;
      const m = /sid=(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    }),
  );
  sids.add(sid);
  await members(sid, 2);
  return { sid, close: () => t.close() };
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
  test(`a daemon stopped by ${sig} leaves no process of its exec and terminal sessions (issue 12 item 8)`, async () => {
    const { daemon, client, closed } = await startDaemon();
    const sessions = [await stubbornExec(client), await stubbornExec(client), await stubbornTerminal(client)];
    daemon.kill(sig);
    await closed;
    for (const s of sessions) await members(s.sid, 0);
  });
}

test('exec: a program ignoring SIGINT with a background child: the client gone ends the whole tree (issue 12 item 9)', async () => {
  const { client } = await startDaemon();
  const s = await client.exec(['sh', '-c', 'trap "" INT; sleep 1000 & wait']);
  sids.add(s.pid!);
  await members(s.pid!, 2);
  s.signal('SIGINT');
  s.close();
  await members(s.pid!, 0);
});

test('exec: a background child holding stdout after the program exited is ended with the session; its output arrives (issue 12 item 9)', async () => {
  const { client } = await startDaemon();
  const s = await client.exec(['sh', '-c', '(echo late; exec sleep 1000) & echo started']);
  sids.add(s.pid!);
  let out = '';
  s.stdout.on('data', (d: Buffer) => (out += d));
  assert.deepEqual(await s.exit, { code: 0, signal: null });
  assert.match(out, /started/);
  assert.match(out, /late/);
  await members(s.pid!, 0);
});

test('terminal: a detach ends the whole tree, also children ignoring SIGHUP (issue 12 item 9)', async () => {
  const { client } = await startDaemon();
  const t = await stubbornTerminal(client);
  t.close();
  await members(t.sid, 0);
});

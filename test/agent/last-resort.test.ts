/**
 * The last-resort handler (issue 12, "Crashes"): an error nobody caught in one session is logged
 * with its stack and ends that session only; the daemon keeps serving the others.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../src/agent/client.js';
import { waitLine } from '../helpers/cli.js';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/agent/boom-daemon.js');
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-last-resort-')));
const sock = path.join(dir, 'agent.sock');
const daemon = spawn(process.execPath, [FIXTURE, sock], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
daemon.stderr!.on('data', (d: Buffer) => (log += d));

after(() => {
  daemon.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('an uncaught error in one session ends that session only, logged with its stack; the daemon serves on', async () => {
  await waitLine(daemon.stderr!, /listening/);
  const client = new AgentClient({ address: `unix:${sock}` });
  const other = await client.exec(['sh', '-c', 'read x; echo "got $x"']);
  const conn = await client.connect();
  const { stream } = await conn.open('boom', {});
  stream.resume();
  await Promise.race([once(stream, 'end'), once(stream, 'close')]); // the daemon ended the boom session
  stream.destroy();
  let out = '';
  other.stdout.on('data', (d: Buffer) => (out += d));
  other.stdin.end('still here\n');
  assert.deepEqual(await other.exit, { code: 0, signal: null });
  assert.equal(out, 'got still here\n');
  await client.ping();
  assert.equal(daemon.exitCode, null);
  assert.match(log, /unexpected error \(uncaught exception\) in boom session of unix: Error: boom in a timer\n\s+at /);
  assert.match(log, /ending boom session of unix; serving on/);
});

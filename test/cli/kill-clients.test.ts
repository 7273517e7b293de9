/**
 * Clients killed at random points of every session kind (exec, terminal, forward, upload,
 * download): the daemon keeps serving (issue 12, "Crashes"). The points come from a seeded
 * generator (the seed is in the test's name, to replay a failure).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient, dial } from '../../src/agent/client.js';
import { MAIN, waitLine, within } from '../helpers/cli.js';

const SEED = Number(process.env.WK_KILL_SEED ?? 12);
const ROUNDS = 8;
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-kill-')));
const sock = path.join(dir, 'agent.sock');
let daemon: ChildProcess | undefined;
let echo: net.Server | undefined;
const echoSockets = new Set<net.Socket>();
let log = '';

after(() => {
  daemon?.kill('SIGKILL');
  echo?.close();
  for (const s of echoSockets) s.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** A small seeded generator (mulberry32): the same kill points on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test(`clients killed at random points of every session kind leave the daemon serving (seed ${SEED})`, { timeout: 120_000 }, async () => {
  daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemon.stderr!.on('data', (d: Buffer) => (log += d));
  await waitLine(daemon.stderr!, /listening on/);
  echo = net.createServer((s) => {
    echoSockets.add(s);
    s.once('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await within(once(echo, 'listening'), 'the echo server');
  const port = (echo.address() as net.AddressInfo).port;
  const big = path.join(dir, 'big');
  writeFileSync(big, randomBytes(4 * 1024 * 1024));
  const rnd = random(SEED);
  /** A client whose connections are destroyed after `delay` ms (0 to 40: before, during or after the session's start). */
  const killing = (delay: number) => {
    return new AgentClient({
      address: `unix:${sock}`,
      dial: async () => {
        const s = await dial({ kind: 'unix', path: sock }, {}, 10_000);
        setTimeout(() => s.destroy(), delay);
        return s;
      },
    });
  };
  const kinds: Record<string, (c: AgentClient) => Promise<unknown>> = {
    // A killed connection fails the session's streams too: their errors are expected here.
    exec: async (c) => {
      const s = await c.exec(['sh', '-c', 'cat; seq 1 100000']);
      for (const stream of [s.stdin, s.stdout, s.stderr]) stream.on('error', () => {});
      s.stdout.resume();
      s.stdin.write(randomBytes(256 * 1024));
      return s.exit;
    },
    terminal: async (c) => {
      const t = await c.terminal({ argv: ['sh', '-c', 'seq 1 100000; sleep 5'] });
      t.output.on('error', () => {});
      t.output.resume();
      return t.exit;
    },
    forward: async (c) => {
      const f = await c.forward('127.0.0.1', port);
      f.on('error', () => {});
      f.resume();
      f.end(randomBytes(512 * 1024));
      if (!f.destroyed) await once(f, 'close');
    },
    upload: (c) => c.upload(big, path.join(dir, `up-${rnd()}`)),
    download: (c) => c.download(big, path.join(dir, `down-${rnd()}`)),
  };
  for (let round = 0; round < ROUNDS; round++) {
    await Promise.all(
      Object.entries(kinds).map(([kind, run]) => {
        const delay = Math.floor(rnd() * 40);
        // A killed client's session must still end (settle) on its side: bounded, and named when it does not.
        return within(
          run(killing(delay)).catch(() => {}),
          `round ${round}: the ${kind} client killed after ${delay} ms never settled`,
        );
      }),
    );
  }
  // Still serving: every kind works from a client that stays.
  const client = new AgentClient({ address: `unix:${sock}` });
  await within(client.ping(), 'a ping');
  const s = await within(client.exec(['echo', 'alive']), 'an exec');
  let out = '';
  s.stdout.on('data', (d: Buffer) => (out += d));
  assert.deepEqual(await within(s.exit, 'the exec\'s exit'), { code: 0, signal: null });
  assert.equal(out, 'alive\n');
  const result = await within(client.upload(big, path.join(dir, 'final')), 'an upload');
  assert.equal(result.size, 4 * 1024 * 1024);
  assert.equal(daemon.exitCode, null, log);
  // Serving on is not enough: no error may have reached the last-resort handler either.
  assert.doesNotMatch(log, /unexpected error/, log);
});

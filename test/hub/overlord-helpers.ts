/** Shared setup of the Overlord compatibility tests: a hub with ghosts turned on, the Python test ghost, clients. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/agent/log.js';
import { AgentClient } from '../../src/agent/client.js';
import { connectHub } from '../../src/hub/hub-client.js';
import { startHub, type HubServerOptions, type RunningHub } from '../../src/hub/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The test ghost (the built test tree has no .py files: use the source tree's). */
export const GHOST_PY = ((): string => {
  for (let dir = here; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const p = path.join(dir, 'test', 'peers', 'overlord', 'ghost.py');
    if (existsSync(p)) return p;
  }
  throw new Error('test/peers/overlord/ghost.py not found');
})();

export async function overlordHub(overlord: NonNullable<HubServerOptions['overlord']> = {}): Promise<{ hub: RunningHub; dir: string; classicPort: number; httpPort: number; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-ovl-'));
  const hub = await startHub({
    stateDir: path.join(dir, 'state'),
    logger: createLogger(process.env.WK_TEST_LOG === '1' ? 'debug' : 'silent'),
    scryptCost: { logN: 10, r: 8, p: 1 },
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    overlord: { classic: { host: '127.0.0.1', port: 0 }, keepaliveTimeoutMs: 20_000, downloadDelayMs: 20, ...overlord },
  });
  await hub.hub.addUser('ann', 'pw-ann', true);
  return { hub, dir, classicPort: hub.overlordClassicAddress!.port, httpPort: hub.httpAddress!.port, close: () => hub.close() };
}

export interface Ghost {
  proc: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line starting with `prefix` (from the start of its output). */
  waitLine(prefix: string): Promise<string>;
  kill(): Promise<void>;
}

export function startGhost(args: string[], env: NodeJS.ProcessEnv = {}): Ghost {
  const proc = spawn('/usr/bin/python3', [GHOST_PY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const lines: string[] = [];
  const waiters: { prefix: string; resolve(l: string): void }[] = [];
  let buf = '';
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += String(d)));
  proc.stdout!.on('data', (d: Buffer) => {
    buf += String(d);
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) if (line.startsWith(w.prefix)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    proc,
    lines,
    waitLine(prefix) {
      const found = lines.find((l) => l.startsWith(prefix));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve });
        proc.once('exit', () => setImmediate(() => reject(new Error(`ghost exited before "${prefix}"; output: ${lines.join(' | ')}; stderr: ${stderr}`))));
      });
    },
    kill: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGKILL');
      }),
  };
}

/** An AgentClient that reaches `agent` through the hub's user port as user ann. */
export function clientVia(hub: RunningHub, agent: string): AgentClient {
  const a = hub.userAddress;
  return new AgentClient({
    address: { kind: 'tcp', host: a.host, port: a.port, tls: false },
    label: `agent ${agent} via hub`,
    timeoutMs: 10_000,
    dial: async () => {
      const session = await connectHub({ host: a.host, port: a.port }, { username: 'ann', password: 'pw-ann' });
      return session.route(agent);
    },
  });
}

export function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitLine } from '../helpers/cli.js';
import { overlordHub } from './overlord-helpers.js';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

async function listener(): Promise<{ port: number; next(): Promise<string>; close(): void }> {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    port: (s.address() as { port: number }).port,
    next: () =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no LAN announcement within 10 s')), 10_000);
        s.once('message', (m: Buffer) => {
          clearTimeout(t);
          resolve(m.toString('latin1'));
        });
      }),
    close: () => s.close(),
  };
}

test('wirekit hub --lan-discovery --lan-discovery-to 127.0.0.1:P: Overlord announcements (OVERLORD :<the /connect port>) on loopback', async () => {
  const l = await listener();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-ovl-lan-'));
  const hub = spawn(process.execPath, [MAIN, 'hub', '--state', path.join(dir, 'state'), '--agents', '127.0.0.1:0', '--users', '127.0.0.1:0', '--http', '127.0.0.1:0', '--overlord', '--lan-discovery', '--lan-discovery-to', `127.0.0.1:${l.port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const first = l.next();
    const m = await waitLine(hub.stderr!, /HTTP API on http:\/\/127\.0\.0\.1:(\d+)/);
    assert.equal(await first, `OVERLORD :${m[1]}`);
  } finally {
    hub.kill('SIGKILL');
    l.close();
  }
});

test('LAN discovery from code: the announced ip, repeated at the interval; none without the option', async () => {
  const l = await listener();
  const h = await overlordHub({ current: false, lanDiscovery: { host: '127.0.0.1', port: l.port, ip: '10.1.2.3', intervalMs: 20 } });
  try {
    assert.equal(await l.next(), `OVERLORD 10.1.2.3:${h.classicPort}`);
    assert.equal(await l.next(), `OVERLORD 10.1.2.3:${h.classicPort}`);
  } finally {
    await h.close();
    l.close();
  }
});

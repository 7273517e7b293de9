/** Forward sessions against an in-process daemon: how they end. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../../src/agent/client.js';
import { AgentDaemon } from '../../../src/agent/daemon.js';
import { RemoteCommandError } from '../../../src/protocols/control/errors.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-forward-')));
const daemon = new AgentDaemon();
const sock = path.join(dir, 'agent.sock');
await daemon.listenUnix(sock);
const client = new AgentClient({ address: `unix:${sock}` });

after(async () => {
  await daemon.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A target server that runs `onConnection` for each connection; resolves with its port. */
async function target(onConnection: (s: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer({ allowHalfOpen: true }, onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, server };
}

/** Resolves when the daemon runs no session any more. */
async function noSessions(): Promise<void> {
  while (daemon.sessions > 0) await new Promise((r) => setImmediate(r));
}

test('forward: a target that resets ends the session with an error; the client duplex closes (issue 12 item 12)', async () => {
  const { port, server } = await target((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  const remote = await client.forward('127.0.0.1', port);
  const errored = once(remote, 'error');
  remote.write('hello');
  const [err] = (await errored) as [RemoteCommandError];
  assert.ok(err instanceof RemoteCommandError);
  assert.equal(err.remoteCode, 'WK_CONNECT');
  if (!remote.destroyed) await once(remote, 'close');
  await noSessions();
  server.close();
});

test('forward: a target that closes both ways ends the session; the client reads everything, then the end', async () => {
  const { port, server } = await target((s) => s.end('bye'));
  const remote = await client.forward('127.0.0.1', port);
  const chunks: Buffer[] = [];
  remote.on('data', (d: Buffer) => chunks.push(d));
  await once(remote, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'bye');
  remote.end();
  if (!remote.destroyed) await once(remote, 'close');
  await noSessions();
  server.close();
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, lchownSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseAddress } from '../../src/agent/address.js';
import { AgentClient } from '../../src/agent/client.js';
import { WirekitError } from '../../src/errors.js';

test('addresses parse', () => {
  assert.deepEqual(parseAddress('tcp://127.0.0.1:7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000, tls: false });
  assert.deepEqual(parseAddress('tls://[::1]:7000'), { kind: 'tcp', host: '::1', port: 7000, tls: true });
  assert.deepEqual(parseAddress('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
  assert.throws(() => parseAddress('http://x:1'));
});

/** A listener at `sock` that counts the connections it gets (a squatter's daemon). */
async function squatter(sock: string): Promise<{ server: net.Server; connections: () => number }> {
  let n = 0;
  const server = net.createServer((s) => {
    n++;
    s.end('{"version":"wirekit-agent/1","auth":"none"}\n');
  });
  server.listen(sock);
  await once(server, 'listening');
  return { server, connections: () => n };
}

const refused = (err: unknown) => err instanceof WirekitError && err.code === 'WK_UNSAFE_PATH' && /^refusing to connect/.test(err.message);

test('clients refuse a Unix socket in a directory others may write to, without connecting (issue 12 item 21)', async () => {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-addr-')));
  try {
    const dir = path.join(base, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const { server, connections } = await squatter(path.join(dir, 'agent.sock'));
    await assert.rejects(new AgentClient({ address: `unix:${path.join(dir, 'agent.sock')}` }).ping(), refused);
    // A symbolic link to it does not help.
    symlinkSync(dir, path.join(base, 'link'));
    await assert.rejects(new AgentClient({ address: `unix:${path.join(base, 'link', 'agent.sock')}` }).ping(), refused);
    assert.equal(connections(), 0);
    server.close();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test("clients refuse a directory or a socket that is another user's (a squatted /tmp/wirekit-<uid>) (issue 12 item 21)", async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to give files to another uid');
  const other = 4242;
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-addr-')));
  try {
    const theirs = path.join(base, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    const a = await squatter(path.join(theirs, 'agent.sock'));
    lchownSync(theirs, other, other);
    await assert.rejects(new AgentClient({ address: `unix:${path.join(theirs, 'agent.sock')}` }).ping(), refused);
    const mine = path.join(base, 'mine');
    mkdirSync(mine, { mode: 0o700 });
    const b = await squatter(path.join(mine, 'agent.sock'));
    lchownSync(path.join(mine, 'agent.sock'), other, other);
    await assert.rejects(new AgentClient({ address: `unix:${path.join(mine, 'agent.sock')}` }).ping(), refused);
    assert.equal(a.connections() + b.connections(), 0);
    a.server.close();
    b.server.close();
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

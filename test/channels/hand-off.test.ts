import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { handOff } from '../../src/channels/hand-off.js';

/** A connected pair of Unix sockets (server side first). */
async function socketPair(): Promise<{ server: net.Socket; client: net.Socket; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wk-hand-off-'));
  const p = path.join(dir, 's.sock');
  const srv = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => srv.listen(p, r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect({ path: p, allowHalfOpen: true });
  await new Promise<void>((r) => client.once('connect', r));
  const server = await accepted;
  return {
    server,
    client,
    async close() {
      client.destroy();
      server.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readAll(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
}

test('handOff before the end: the socket itself, leftover first, then the live bytes', async () => {
  const t = await socketPair();
  try {
    const raw = handOff(t.server, [new TextEncoder().encode('left'), new TextEncoder().encode('over|')]);
    assert.equal(raw, t.server);
    const all = readAll(raw);
    t.client.end('live');
    assert.equal(await all, 'leftover|live');
  } finally {
    await t.close();
  }
});

test('handOff after the end: leftover then end; writes and end reach the peer; destroy() destroys the socket', async () => {
  const t = await socketPair();
  try {
    t.client.end();
    await new Promise<void>((r) => {
      t.server.on('data', () => {});
      t.server.once('end', r);
    });
    t.server.removeAllListeners('data');
    const raw = handOff(t.server, new TextEncoder().encode('tail'));
    assert.notEqual(raw, t.server);
    assert.equal(await readAll(raw), 'tail');
    const got = readAll(t.client);
    raw.end('bye');
    assert.equal(await got, 'bye');
    const closed = new Promise<void>((r) => (t.server.destroyed ? r() : t.server.once('close', () => r())));
    raw.destroy();
    assert.equal(t.server.destroyed, true, 'destroy() after both directions ended still destroys the socket');
    await closed;
  } finally {
    await t.close();
  }
});

test('handOff after the end: destroy() while writing destroys the socket; a socket closing destroys the wrapper', async () => {
  const t = await socketPair();
  try {
    t.client.end();
    await new Promise<void>((r) => {
      t.server.resume();
      t.server.once('end', r);
    });
    const raw = handOff(t.server);
    raw.on('error', () => {});
    raw.resume();
    raw.destroy();
    assert.equal(t.server.destroyed, true);

    const u = await socketPair();
    try {
      u.client.end();
      await new Promise<void>((r) => {
        u.server.resume();
        u.server.once('end', r);
      });
      const raw2 = handOff(u.server);
      raw2.on('error', () => {});
      const gone = new Promise<void>((r) => raw2.once('close', () => r()));
      u.server.destroy();
      await gone;
      assert.equal(raw2.destroyed, true);
    } finally {
      await u.close();
    }
  } finally {
    await t.close();
  }
});

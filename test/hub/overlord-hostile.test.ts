import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { PEERS, skipWithout } from '../helpers/peers.js';
import { GHOST_PY, clientVia, overlordHub, startGhost } from './overlord-helpers.js';

/** A raw classic ghost connection: write lines, read reply lines. */
async function raw(port: number) {
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.on('error', () => {});
  let buf = '';
  const waiters: ((l: string) => void)[] = [];
  const lines: string[] = [];
  s.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(buf.slice(0, i).replace(/\r$/, ''));
      buf = buf.slice(i + 1);
    }
    while (waiters.length && lines.length) waiters.shift()!(lines.shift()!);
  });
  const closed = new Promise<boolean>((resolve) => s.once('close', () => resolve(true)));
  return {
    s,
    closed,
    send: (m: unknown) => s.write(JSON.stringify(m) + '\r\n'),
    line: (): Promise<Record<string, unknown>> => (lines.length ? Promise.resolve(lines.shift()!) : new Promise<string>((r) => waiters.push(r))).then((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const register = (rid: string, payload: Record<string, unknown>) => ({ rid, timeout: 60, name: 'register', params: payload });

test('garbage before register is skipped; a register without sid gets no reply; one with a bad mode is refused', async () => {
  const h = await overlordHub();
  try {
    const a = await raw(h.classicPort);
    a.s.write('GET / HTTP/1.0\r\n\x00\xff\xfe not json\r\n[1,2]\r\n{"rid":"x","response":"success"}\r\n');
    a.send(register('r1', { mode: 1, mid: 'g1', properties: {} })); // no sid: no reply
    a.send(register('r2', { mode: 1, mid: 'g1', sid: 's1', properties: { k: 'v' } }));
    const reply = await a.line();
    assert.deepEqual(reply, { rid: 'r2', response: 'success', params: null });
    assert.equal(h.hub.hub.registry.get('g1')?.authenticated, false);
    assert.equal(h.hub.hub.registry.get('g1')?.properties.k, 'v');

    const b = await raw(h.classicPort);
    b.send(register('r3', { mode: 9, mid: 'g2', sid: 's2' }));
    assert.deepEqual(await b.line(), { rid: 'r3', response: 'unknown client mode', params: null });
    await b.closed;

    const c = await raw(h.classicPort);
    c.s.write(JSON.stringify({ rid: 'r4', timeout: 60, name: 'register', params: 'not an object' }) + '\r\n');
    assert.equal((await c.line()).rid, 'r4');
    await c.closed;
    a.s.destroy();
  } finally {
    await h.close();
  }
});

test('a TLS probe on the classic port is closed at once', async () => {
  const h = await overlordHub();
  try {
    const a = await raw(h.classicPort);
    a.s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
    await a.closed;
  } finally {
    await h.close();
  }
});

test('a 100 MB line is never buffered: the connection is closed and the hub goes on', async () => {
  const h = await overlordHub();
  try {
    const a = await raw(h.classicPort);
    const block = Buffer.alloc(1024 * 1024, 0x61);
    let sent = 0;
    let closed = false;
    void a.closed.then(() => (closed = true));
    while (!closed && sent < 100 * 1024 * 1024) {
      if (!a.s.write(block)) await Promise.race([new Promise((r) => a.s.once('drain', r)), a.closed]);
      sent += block.length;
    }
    await a.closed;
    const b = await raw(h.classicPort);
    b.send(register('r', { mode: 1, mid: 'after', sid: 's', properties: {} }));
    assert.equal((await b.line()).response, 'success');
    b.s.destroy();
  } finally {
    await h.close();
  }
});

test('a child whose sid nobody waits for is refused and closed', async () => {
  const h = await overlordHub();
  try {
    const a = await raw(h.classicPort);
    a.send(register('r', { mode: 2, mid: 'x', sid: 'nobody-waits', properties: {} }));
    assert.deepEqual(await a.line(), { rid: 'r', response: 'client nobody-waits registered without context', params: null });
    await a.closed;
  } finally {
    await h.close();
  }
});

test('a ghost cannot take the id of a connected authenticated agent, nor of an enrolled one', async () => {
  const h = await overlordHub();
  try {
    const link = { dial() {}, close() {} };
    h.hub.hub.registry.register({ id: 'real', hostname: 'r', properties: {}, address: '127.0.0.1', version: 'x', capabilities: [], authenticated: true }, link, Date.now());
    const a = await raw(h.classicPort);
    a.send(register('r', { mode: 1, mid: 'real', sid: 's', properties: {} }));
    assert.deepEqual(await a.line(), { rid: 'r', response: 'duplicate machine ID: real', params: null });
    await a.closed;
    // An id a wirekit agent enrolled under stays its own while that agent is away.
    const hub = h.hub.hub;
    await hub.registerAgent({ type: 'register', id: 'enrolled', hostname: 'e', version: 'x', capabilities: [], properties: {}, token: hub.enrollmentToken }, '127.0.0.1', link);
    hub.agentGone('enrolled', link);
    const b = await raw(h.classicPort);
    b.send(register('r', { mode: 1, mid: 'enrolled', sid: 's', properties: {} }));
    assert.match(String((await b.line()).response), /belongs to an enrolled wirekit agent/);
    await b.closed;
    assert.equal(hub.registry.get('enrolled'), undefined);
  } finally {
    await h.close();
  }
});

test('a ghost that stops reading its link is dropped', async () => {
  const h = await overlordHub({ maxQueuedBytes: 64 * 1024 });
  try {
    const a = await raw(h.classicPort);
    a.send(register('r', { mode: 1, mid: 'deaf', sid: 's', properties: {} }));
    assert.equal((await a.line()).response, 'success');
    a.s.pause(); // never reads again
    const ping = Buffer.from(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ rid: `p${i}`, timeout: 5, name: 'ping', params: {} }) + '\r\n').join(''));
    let closed = false;
    void a.closed.then(() => (closed = true));
    while (!closed) {
      if (!a.s.write(ping)) await Promise.race([new Promise((r) => a.s.once('drain', r)), a.closed]);
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(h.hub.hub.registry.get('deaf'), undefined);
  } finally {
    await h.close();
  }
});

test('a session whose ghost never dials back fails in time; an error reply fails it at once', async () => {
  const h = await overlordHub({ childTimeoutMs: 300 });
  try {
    const a = await raw(h.classicPort);
    a.send(register('r', { mode: 1, mid: 'lazy', sid: 's', properties: {} }));
    assert.equal((await a.line()).response, 'success');
    const c = clientVia(h.hub, 'lazy');
    const pending = assert.rejects(c.exec(['true']), /did not dial back/);
    const req = await a.line();
    assert.equal(req.name, 'shell');
    a.send({ rid: req.rid, response: 'success', params: null });
    await pending;
    const refused = assert.rejects(c.download('/etc/nothing', '/tmp/never-written'), /no such file here/);
    const req2 = await a.line();
    assert.equal(req2.name, 'file_download');
    a.send({ rid: req2.rid, response: 'no such file here', params: null });
    await refused;
    a.s.destroy();
  } finally {
    await h.close();
  }
});

test('bytes typed ahead of a classic shell child\'s session reach it first (Python ghost)', { skip: skipWithout(PEERS.python) }, async () => {
  const h = await overlordHub();
  const g = startGhost(['--port', String(h.classicPort), '--mid', 'py']);
  try {
    await g.waitLine('registered');
    const c = clientVia(h.hub, 'py');
    const e = await c.exec(['cat'], { input: Buffer.from('ahead\n'), endInput: true });
    let out = '';
    e.stdout.on('data', (d: Buffer) => (out += String(d)));
    assert.equal((await e.exit).code, 0);
    assert.equal(out, 'ahead\n');
  } finally {
    await g.kill();
    await h.close();
  }
});

test('--overlord-allow: ghosts from other addresses are closed before their register (classic) or refused 403 (/connect)', async () => {
  const h = await overlordHub({ allowFrom: ['10.0.0.0/8'] });
  try {
    const a = await raw(h.classicPort);
    await a.closed;
    const s = net.connect(h.httpPort, '127.0.0.1');
    s.write('GET /connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    let reply = '';
    s.on('data', (d: Buffer) => (reply += String(d)));
    await new Promise((r) => s.once('close', r));
    assert.match(reply, /^HTTP\/1\.1 403 /);
  } finally {
    await h.close();
  }
});

test('/connect: the 101 carries the accept key and nothing follows it before the register; the head is the start of the stream', async () => {
  const h = await overlordHub();
  try {
    const s = net.connect(h.httpPort, '127.0.0.1');
    await once(s, 'connect');
    const reg = JSON.stringify({ rid: 'r1', timeout: 60, name: 'register', payload: { mode: 1, mid: 'headfirst', sid: 's', properties: {} } }) + '\r\n';
    // The register in the same write as the request: it arrives as the upgrade's head.
    s.write('GET /connect HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' + reg);
    let got = '';
    await new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        got += String(d);
        if (got.includes('"rid":"r1"')) resolve();
      });
    });
    const [head, rest] = got.split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.match(head!, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
    assert.deepEqual(JSON.parse(rest!.trim()), { rid: 'r1', status: 'success', payload: null });
    s.destroy();
  } finally {
    await h.close();
  }
});

test('classic port with a certificate: a TLS ghost and a plain one on the same port', async () => {
  const fixtures = path.resolve(GHOST_PY, '../../../fixtures/tls');
  const h = await overlordHub({ tls: { cert: readFileSync(path.join(fixtures, 'cert.pem')), key: readFileSync(path.join(fixtures, 'key.pem')) } });
  try {
    const s = tls.connect({ host: '127.0.0.1', port: h.classicPort, rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    await once(s, 'secureConnect');
    s.write(JSON.stringify(register('r', { mode: 1, mid: 'secure', sid: 's', properties: {} })) + '\r\n');
    const [d] = (await once(s, 'data')) as [Buffer];
    assert.equal(JSON.parse(String(d)).response, 'success');
    assert.equal(h.hub.hub.registry.get('secure')?.properties.ip, '127.0.0.1');
    const p = await raw(h.classicPort);
    p.send(register('r', { mode: 1, mid: 'plain', sid: 's', properties: {} }));
    assert.equal((await p.line()).response, 'success');
    s.destroy();
    p.s.destroy();
  } finally {
    await h.close();
  }
});

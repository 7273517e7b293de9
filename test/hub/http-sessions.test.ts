import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { AgentDaemon } from '../../src/agent/daemon.js';
import { HubDialer } from '../../src/agent/dial-out.js';
import { createLogger } from '../../src/agent/log.js';
import { liveSessions } from '../../src/hub/http-sessions.js';
import { startHub, type RunningHub } from '../../src/hub/server.js';

const quiet = createLogger('silent');
const MiB = 1024 * 1024;

let dir: string;
let running: RunningHub;
let daemon: AgentDaemon;
let dialers: HubDialer[] = [];
let proxy: net.Server;
let base: string;
let wsBase: string;
let annToken: string;
let rootToken: string;

/** An agent that runs the real daemon, served through a HubDialer as `wirekit serve --hub` does. */
function agent(id: string, properties: Record<string, unknown>, serve?: HubDialer['options']['serve']): HubDialer {
  return new HubDialer({
    hub: running.agentAddress,
    register: { id, hostname: `${id}.test`, version: 't', capabilities: ['exec', 'terminal', 'upload', 'download', 'forward'], properties },
    enrollmentToken: running.hub.enrollmentToken,
    tokenFile: path.join(dir, `${id}.token`),
    logger: quiet,
    serve: serve ?? ((stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user}`, leftover })),
  });
}

async function login(username: string, password: string): Promise<string> {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', body: JSON.stringify({ username, password }) });
  return ((await r.json()) as { data: { token: string } }).data.token;
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'wk-hub-sess-'));
  running = await startHub({
    stateDir: path.join(dir, 'state'),
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    logger: quiet,
    scryptCost: { logN: 10, r: 8, p: 1 },
  });
  await running.hub.addUser('root', 'rootpass', true);
  await running.hub.addUser('ann', 'annpass', false);
  base = `http://127.0.0.1:${running.httpAddress!.port}`;
  wsBase = `ws://127.0.0.1:${running.httpAddress!.port}`;
  daemon = new AgentDaemon({ logger: quiet });
  // The "bad" agent flips one byte of what it sends past offset 10000: file data, so the digest will not match.
  proxy = net.createServer({ allowHalfOpen: true }, (s) => daemon.serveConnection(s, { peer: 'proxy' }));
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  const proxyPort = (proxy.address() as net.AddressInfo).port;
  const corrupting: HubDialer['options']['serve'] = (stream, leftover) => {
    const c = net.connect({ port: proxyPort, host: '127.0.0.1', allowHalfOpen: true });
    c.on('error', () => stream.destroy());
    stream.on('error', () => c.destroy());
    stream.on('close', () => c.destroy());
    if (leftover.length) c.write(leftover);
    stream.pipe(c);
    let offset = 0;
    c.on('data', (d: Buffer) => {
      const at = 10_000 - offset;
      if (at >= 0 && at < d.length) {
        d = Buffer.from(d);
        d[at] ^= 0xff;
      }
      offset += d.length;
      stream.write(d);
    });
    c.on('end', () => stream.end());
    c.on('close', () => stream.destroy());
  };
  dialers = [agent('dev1', { allowlist: ['u/ann'] }), agent('other', {}), agent('bad', { allowlist: ['u/ann'] }, corrupting)];
  const all = new Promise<void>((resolve) => running.hub.on('joined', () => running.hub.registry.size === 3 && resolve()));
  for (const d of dialers) await d.start();
  await all;
  annToken = await login('ann', 'annpass');
  rootToken = await login('root', 'rootpass');
});

after(async () => {
  for (const d of dialers) d.stop();
  await running.close();
  await daemon.close();
  proxy.close();
});

// ---- helpers ----

function openWs(pathAndQuery: string, token = annToken, origin?: string): WebSocket {
  const sep = pathAndQuery.includes('?') ? '&' : '?';
  return new WebSocket(`${wsBase}${pathAndQuery}${sep}token=${encodeURIComponent(token)}`, origin ? { origin } : {});
}

interface Collected {
  binary: Buffer[];
  text: Record<string, unknown>[];
  order: ('b' | 't')[];
  closed: Promise<{ code: number; reason: string }>;
  bytes(): Buffer;
  waitFor(pred: (all: Buffer) => boolean): Promise<void>;
}

function collect(ws: WebSocket): Collected {
  const c: Collected = {
    binary: [],
    text: [],
    order: [],
    closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) }))),
    bytes: () => Buffer.concat(c.binary),
    waitFor: (pred) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (pred(c.bytes())) {
            ws.off('message', check);
            resolve();
          }
        };
        ws.on('message', check);
        ws.once('close', () => (pred(c.bytes()) ? resolve() : reject(new Error(`closed before expected output; got ${JSON.stringify(c.bytes().toString('utf8').slice(-300))}`))));
        check();
      }),
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      c.binary.push(data);
      c.order.push('b');
    } else {
      c.text.push(JSON.parse(String(data)) as Record<string, unknown>);
      c.order.push('t');
    }
  });
  return c;
}

/** Resolves once `cond()` holds, checking on every turn of a short interval (no fixed sleep). */
function until(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - started > limitMs) {
        clearInterval(t);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 5);
  });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// ---- tests ----

test('tty: typed input runs in a pty, resize is its own message, UTF-8 both ways, a JSON text frame that is not control is ignored, other text is typed (Overlord), exit then close 1000', async () => {
  const ws = openWs(`/api/agents/dev1/tty?cols=100&rows=30&command=${encodeURIComponent(JSON.stringify(['/bin/sh']))}`);
  const c = collect(ws);
  await once(ws, 'open');
  // Typed ahead of the session's start (the agent's terminal is not open yet): queued, not lost.
  ws.send(Buffer.from('echo $((6*7))\r'));
  await c.waitFor((b) => b.toString('utf8').includes('42\r\n'));
  ws.send(Buffer.from('stty size\r'));
  await c.waitFor((b) => b.toString('utf8').includes('30 100'));
  ws.send(JSON.stringify({ type: 'resize', cols: 123, rows: 45 }));
  ws.send(Buffer.from('stty size\r'));
  await c.waitFor((b) => b.toString('utf8').includes('45 123'));
  ws.send(JSON.stringify({ type: 'echo IN""BAND' })); // a JSON object that is no known control message: never typed
  ws.send(JSON.stringify({ type: 'resize', cols: 'x', rows: 1 })); // invalid control: ignored
  // Overlord's clients: other text frames are keystrokes, and ESC [ 8 ; rows ; cols t a resize.
  ws.send('\x1b[8;50;132t');
  for (const ch of 'echo TEXT""TYPED; stty size\r') ws.send(ch);
  await c.waitFor((b) => b.toString('utf8').includes('TEXTTYPED\r\n50 132'));
  ws.send(Buffer.from('echo "h\u00e9llo \u2192 \u2713"\r'));
  await c.waitFor((b) => b.toString('utf8').includes('h\u00e9llo \u2192 \u2713\r\n'));
  ws.send(Buffer.from('exit 3\r'));
  const closed = await c.closed;
  assert.equal(closed.code, 1000);
  assert.ok(!c.bytes().toString('utf8').includes('INBAND'));
  assert.deepEqual(c.text, [{ type: 'exit', code: 3, signal: null }]);
  assert.equal(c.order.at(-1), 't', 'the exit message comes after all output');
});

test("tty as Overlord's dashboard speaks it (only text frames: the ESC [ 8 ; rows ; cols t resize, then keys): the sid frame, output, then close 1000 with no exit frame, which the dashboard would print", async () => {
  const ws = openWs(`/api/agents/dev1/tty?cols=69&rows=22&command=${encodeURIComponent(JSON.stringify(['/bin/sh']))}`);
  const c = collect(ws);
  await once(ws, 'open');
  // The dashboard's onopen: fit, then the resize as a text frame; xterm's onData: text frames.
  ws.send('\x1b[8;22;69t');
  ws.send('stty size; echo dash-$((40+2))\r');
  await c.waitFor((b) => b.toString('utf8').includes('22 69\r\ndash-42\r\n'));
  ws.send('exit 4\r');
  const closed = await c.closed;
  assert.equal(closed.code, 1000);
  // As overlordd: the terminal's sid (the hub's, for a wirekit agent), and nothing else: no exit frame.
  assert.equal(c.text.length, 1, `only the sid frame: ${JSON.stringify(c.text)}`);
  assert.equal(c.text[0]!.type, 'sid');
  assert.match(String(c.text[0]!.data), /^[0-9a-f-]{36}$/);
});

test('tty: a bad command parameter is an error message and close 1002', async () => {
  const ws = openWs('/api/agents/dev1/tty?command=sh');
  const c = collect(ws);
  const closed = await c.closed;
  assert.equal(closed.code, 1002);
  assert.equal(c.text[0]?.type, 'error');
  assert.equal(c.text[0]?.code, 'WK_USAGE');
});

test('exec: stdout and stderr apart (channel byte), stdin with stdinClose, the exit code', async () => {
  const argv = ['sh', '-c', 'echo out; echo err >&2; cat; exit 7'];
  const ws = openWs(`/api/agents/dev1/exec?argv=${encodeURIComponent(JSON.stringify(argv))}&cwd=${encodeURIComponent(dir)}`);
  const c = collect(ws);
  await once(ws, 'open');
  ws.send(Buffer.from('typed\n'));
  ws.send(JSON.stringify({ type: 'stdinClose' }));
  const closed = await c.closed;
  assert.equal(closed.code, 1000);
  const ch = (n: number) => Buffer.concat(c.binary.filter((b) => b[0] === n).map((b) => b.subarray(1))).toString();
  assert.equal(ch(1), 'out\ntyped\n');
  assert.equal(ch(2), 'err\n');
  assert.deepEqual(c.text, [{ type: 'exit', code: 7, signal: null }]);

  const missing = collect(openWs(`/api/agents/dev1/exec?argv=${encodeURIComponent(JSON.stringify(['/nonexistent/prog']))}`));
  assert.equal((await missing.closed).code, 1011);
  assert.equal(missing.text[0]?.type, 'error');
  assert.match(String(missing.text[0]?.code), /^WK_/);
});

test("shell (Overlord's shape): sh -c command, output merged, stdin_close half-closes, the hub closes when it ends, no text frames", async () => {
  const ws = openWs(`/api/agents/dev1/shell?command=${encodeURIComponent('cat; echo tail >&2')}`);
  const c = collect(ws);
  await once(ws, 'open');
  ws.send(Buffer.from('abc\n'));
  ws.send(JSON.stringify({ type: 'stdin_close' }));
  const closed = await c.closed;
  assert.equal(closed.code, 1000);
  assert.equal(c.bytes().toString(), 'abc\ntail\n');
  assert.deepEqual(c.text, []);
  const none = collect(openWs('/api/agents/dev1/shell'));
  assert.deepEqual(await none.closed, { code: 1002, reason: 'no command specified' });
});

test('forward to a local HTTP server; a bad port closes 1002 with Overlord\'s reasons', async () => {
  const server = http.createServer((_req, res) => res.end('hello through the hub'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const ws = openWs(`/api/agents/dev1/forward?host=127.0.0.1&port=${port}`);
  const c = collect(ws);
  await once(ws, 'open');
  ws.send(Buffer.from('GET / HTTP/1.0\r\nHost: x\r\n\r\n'));
  const closed = await c.closed;
  assert.equal(closed.code, 1000);
  assert.match(c.bytes().toString(), /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhello through the hub$/);
  server.close();
  assert.deepEqual(await collect(openWs('/api/agents/dev1/forward')).closed, { code: 1002, reason: 'no port specified' });
  assert.deepEqual(await collect(openWs('/api/agents/dev1/forward?port=99999')).closed, { code: 1002, reason: 'invalid port' });
  assert.deepEqual(await collect(openWs('/api/agents/dev1/forward?port=12ab')).closed, { code: 1002, reason: 'invalid port' });
});

test('download: headers, body and SHA-256; the digest as a trailer with TE: trailers; 400 for a missing name or file', async () => {
  const data = randomBytes(3 * MiB + 17);
  const file = path.join(dir, 'down "quoted".bin');
  writeFileSync(file, data);
  const url = `${base}/api/agents/dev1/file?filename=${encodeURIComponent(file)}`;
  const auth = { authorization: `Bearer ${annToken}` };
  const r = await fetch(url, { headers: auth });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-disposition'), 'attachment; filename="down quoted.bin"');
  assert.equal(r.headers.get('content-length'), String(data.length));
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(sha256(body), sha256(data));

  const withTrailer = await new Promise<{ body: Buffer; trailers: NodeJS.Dict<string>; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    http.get(url, { headers: { ...auth, te: 'trailers' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ body: Buffer.concat(parts), trailers: res.trailers, headers: res.headers }));
      res.on('error', reject);
    }).on('error', reject);
  });
  assert.equal(withTrailer.headers.trailer, 'X-Checksum-Sha256');
  assert.equal(withTrailer.trailers['x-checksum-sha256'], sha256(data));
  assert.equal(sha256(withTrailer.body), sha256(data));

  const noName = await fetch(`${base}/api/agents/dev1/file`, { headers: auth });
  assert.deepEqual([noName.status, await noName.json()], [400, { status: 'error', data: 'filename required' }]);
  const noFile = await fetch(`${base}/api/agents/dev1/file?filename=${encodeURIComponent(path.join(dir, 'nope'))}`, { headers: auth });
  assert.equal(noFile.status, 400);
  assert.equal(((await noFile.json()) as { status: string }).status, 'error');
});

test('download: a digest that does not match destroys the response before it completes', async () => {
  const data = randomBytes(MiB + 5);
  const file = path.join(dir, 'corrupt.bin');
  writeFileSync(file, data);
  const r = await fetch(`${base}/api/agents/bad/file?filename=${encodeURIComponent(file)}`, { headers: { authorization: `Bearer ${annToken}` } });
  assert.equal(r.status, 200);
  await assert.rejects(r.arrayBuffer(), 'the client sees a failed download');
});

test('upload: a raw body and Overlord\'s multipart (to a directory: the part\'s file name), SHA-256 checked, mode set; a bad multipart leaves nothing', async () => {
  const auth = { authorization: `Bearer ${annToken}` };
  const updir = path.join(dir, 'up');
  mkdirSync(updir);
  const raw = randomBytes(2 * MiB + 3);
  const dest = path.join(updir, 'raw.bin');
  const r1 = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(dest)}&perm=0600`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: raw });
  const j1 = (await r1.json()) as { status: string; data: { path: string; size: number; sha256: string } };
  assert.equal(r1.status, 200, JSON.stringify(j1));
  assert.deepEqual(j1, { status: 'success', data: { path: dest, size: raw.length, sha256: sha256(raw) } });
  assert.equal(sha256(readFileSync(dest)), sha256(raw));
  assert.equal(statSync(dest).mode & 0o777, 0o600);

  // ovl's body, byte for byte in its shape: one part, field "file", its own boundary.
  const boundary = '-----------9246f080c855a69012707ab53489b921';
  const content = randomBytes(MiB + 11);
  const multipart = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="ovl.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const r2 = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(updir)}&perm=0644`, { method: 'POST', headers: { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, body: multipart });
  const j2 = (await r2.json()) as { data: { path: string; sha256: string } };
  assert.equal(r2.status, 200, JSON.stringify(j2));
  assert.equal(j2.data.path, path.join(updir, 'ovl.bin'));
  assert.equal(j2.data.sha256, sha256(content));
  assert.equal(sha256(readFileSync(path.join(updir, 'ovl.bin'))), sha256(content));
  assert.equal(statSync(path.join(updir, 'ovl.bin')).mode & 0o777, 0o644);

  // A browser's FormData (undici's boundary and layout).
  const form = new FormData();
  const small = Buffer.from('form data \u2713\n');
  form.append('file', new Blob([small]), 'form.txt');
  const r3 = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(updir + '/')}`, { method: 'POST', headers: auth, body: form });
  assert.equal(r3.status, 200, await r3.clone().text());
  assert.equal(readFileSync(path.join(updir, 'form.txt'), 'utf8'), small.toString());

  // Two parts: refused, and no temporary file stays behind.
  const two = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="two.bin"\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\nmore\r\n--${boundary}--\r\n`),
  ]);
  const r4 = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(updir)}`, { method: 'POST', headers: { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` }, body: two });
  assert.equal(r4.status, 400);
  assert.equal(((await r4.json()) as { status: string }).status, 'error');
  await until(() => readdirSync(updir).every((f) => !f.endsWith('.part')), 'the agent to remove its temporary file');
  assert.deepEqual(readdirSync(updir).sort(), ['form.txt', 'ovl.bin', 'raw.bin']);

  const wrongField = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(updir)}`, {
    method: 'POST',
    headers: { ...auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="other"; filename="a"\r\n\r\nx\r\n--${boundary}--\r\n`),
  });
  assert.equal(wrongField.status, 400);
});

test('upload: a refusal by the agent reaches the client as JSON; a body cut short leaves no file behind', async () => {
  const auth = { authorization: `Bearer ${annToken}` };
  const big = randomBytes(4 * MiB);
  const r = await fetch(`${base}/api/agents/dev1/file?dest=${encodeURIComponent(path.join(dir, 'no-such-dir', 'f.bin'))}`, { method: 'POST', headers: auth, body: big });
  assert.equal(r.status, 400);
  assert.equal(((await r.json()) as { status: string }).status, 'error');

  const cutdir = path.join(dir, 'cut');
  mkdirSync(cutdir);
  const sock = net.connect(running.httpAddress!.port, '127.0.0.1');
  await once(sock, 'connect');
  sock.write(`POST /api/agents/dev1/file?dest=${encodeURIComponent(path.join(cutdir, 'x.bin'))} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ${annToken}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${MiB}\r\n\r\n`);
  sock.write(randomBytes(100_000));
  await until(() => readdirSync(cutdir).some((f) => f.endsWith('.part')), 'the agent to start receiving');
  sock.destroy();
  await until(() => readdirSync(cutdir).length === 0, 'the agent to remove its temporary file');
});

test('flow control: a flood to a slow browser keeps the hub\'s buffer bounded and arrives whole', async () => {
  const argv = ['sh', '-c', 'yes | head -c 50000000'];
  const ws = openWs(`/api/agents/dev1/exec?argv=${encodeURIComponent(JSON.stringify(argv))}`);
  await once(ws, 'open');
  ws.pause(); // the browser reads nothing for now
  let maxToBrowser = 0;
  const sampler = setInterval(() => {
    for (const s of liveSessions(running.api!)) maxToBrowser = Math.max(maxToBrowser, s.toBrowser);
  }, 2);
  await until(() => liveSessions(running.api!).some((s) => s.kind === 'exec' && !s.readingAgent), 'the hub to stop reading the agent');
  const stalled = liveSessions(running.api!).find((s) => s.kind === 'exec')!;
  assert.ok(stalled.toBrowser <= 2 * MiB + 64 * 1024, `buffered towards the browser: ${stalled.toBrowser}`);
  let stdout = 0;
  let exit: unknown;
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) exit = JSON.parse(String(data));
    else if (data[0] === 1) stdout += data.length - 1;
    // A slow reader: stop now and then and let the hub wait.
    if (stdout % (8 * MiB) < data.length) {
      ws.pause();
      setTimeout(() => ws.resume(), 20);
    }
  });
  ws.resume();
  assert.equal(await closed, 1000);
  clearInterval(sampler);
  assert.equal(stdout, 50_000_000);
  assert.deepEqual(exit, { type: 'exit', code: 0, signal: null });
  assert.ok(maxToBrowser <= 2 * MiB + 64 * 1024, `largest buffer towards the browser: ${maxToBrowser}`);
});

test('flow control: a terminal flood (seq) to a paused browser stays bounded', async () => {
  const ws = openWs(`/api/agents/dev1/tty?command=${encodeURIComponent(JSON.stringify(['seq', '1', '2000000']))}`);
  await once(ws, 'open');
  ws.pause();
  await until(() => liveSessions(running.api!).some((s) => s.kind === 'tty' && !s.readingAgent), 'the hub to stop reading the terminal');
  const s = liveSessions(running.api!).find((x) => x.kind === 'tty')!;
  assert.ok(s.toBrowser <= 2 * MiB + 64 * 1024, `buffered towards the browser: ${s.toBrowser}`);
  const c = collect(ws);
  ws.resume();
  assert.equal((await c.closed).code, 1000);
  assert.ok(c.bytes().toString().endsWith('1999999\r\n2000000\r\n'));
  assert.deepEqual(c.text, [{ type: 'exit', code: 0, signal: null }]);
});

test('flow control: a slow agent side stops the hub reading the WebSocket; the bytes arrive whole', async () => {
  let target: net.Socket | undefined;
  const received = createHash('sha256');
  let count = 0;
  const gotAll = new Promise<void>((resolve) => {
    const server = net.createServer((s) => {
      target = s;
      s.pause(); // reads nothing until told
      s.on('data', (d: Buffer) => {
        received.update(d);
        count += d.length;
      });
      s.on('end', () => {
        s.end();
        server.close();
        resolve();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      void run(port);
    });
  });
  const total = 48 * MiB;
  const sent = createHash('sha256');
  let ws!: WebSocket;
  let stallSeen = false;
  let maxToAgent = 0;
  const sampler = setInterval(() => {
    for (const s of liveSessions(running.api!)) if (s.kind === 'forward') maxToAgent = Math.max(maxToAgent, s.toAgent);
  }, 2);
  async function run(port: number) {
    ws = openWs(`/api/agents/dev1/forward?port=${port}`);
    await once(ws, 'open');
    let offset = 0;
    const chunk = 256 * 1024;
    const pump = () => {
      while (offset < total && ws.bufferedAmount < 8 * MiB) {
        const part = randomBytes(chunk);
        sent.update(part);
        offset += chunk;
        ws.send(part, () => pump());
      }
      if (offset >= total) {
        // All handed to the WebSocket; the target's end is what ends the test.
      }
    };
    pump();
  }
  await until(() => target !== undefined && liveSessions(running.api!).some((s) => s.kind === 'forward' && !s.readingBrowser), 'the hub to stop reading the WebSocket');
  stallSeen = true;
  const s = liveSessions(running.api!).find((x) => x.kind === 'forward')!;
  assert.ok(s.toAgent <= 2 * MiB + 512 * 1024, `buffered towards the agent: ${s.toAgent}`);
  target!.resume();
  await until(() => count === total, 'all bytes at the target', 60_000);
  ws.close();
  clearInterval(sampler);
  await gotAll;
  assert.ok(stallSeen);
  assert.equal(received.digest('hex'), sent.digest('hex'));
  assert.ok(maxToAgent <= 2 * MiB + 512 * 1024, `largest buffer towards the agent: ${maxToAgent}`);
});

test('refusals before the upgrade: not on the allowlist (401), a foreign Origin (403), no token (401), no such agent (404)', async () => {
  const status = async (ws: WebSocket) => {
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    ws.on('error', () => {});
    res.resume();
    return res.statusCode;
  };
  assert.equal(await status(openWs('/api/agents/other/tty')), 401);
  assert.equal(await status(openWs('/api/agents/dev1/tty', annToken, 'http://evil.example')), 403);
  const noToken = new WebSocket(`${wsBase}/api/agents/dev1/exec?argv=["true"]`);
  assert.equal(await status(noToken), 401);
  assert.equal(await status(openWs('/api/agents/nope/shell?command=true')), 404);
  const file = await fetch(`${base}/api/agents/other/file?filename=/etc/hostname`, { headers: { authorization: `Bearer ${annToken}` } });
  assert.deepEqual([file.status, await file.json()], [401, { status: 'error', data: 'Unauthorized' }]);
  // The admin may open any agent, and the same origin is allowed.
  const ok = openWs(`/api/agents/other/shell?command=${encodeURIComponent('echo root here')}`, rootToken, base);
  const c = collect(ok);
  assert.equal((await c.closed).code, 1000);
  assert.equal(c.bytes().toString(), 'root here\n');
  await until(() => liveSessions(running.api!).length === 0, `every session to end (live: ${JSON.stringify(liveSessions(running.api!))})`);
});

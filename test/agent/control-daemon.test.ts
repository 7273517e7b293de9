/**
 * The daemon's control phase (seed 003 through `protocols/control`'s ServerSession), driven by a
 * raw socket: greeting, pipelined requests, error replies with codes, authentication, and the
 * switch to a session with the bytes sent behind the request delivered first.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AgentDaemon, AGENT_PROTOCOL_VERSION, type AgentDaemonOptions } from '../../src/agent/daemon.js';
import type { Logger } from '../../src/agent/log.js';
import { decodeExit, FrameType, sessionCodec, type SessionFrame } from '../../src/agent/session-frames.js';
import { FrameReader, encodeToBytes } from '../../src/codecs/codec.js';
import { ndjson } from '../../src/codecs/lines.js';
import { splitAt } from '../helpers/chunks.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-ctl-daemon-')));
let counter = 0;
const daemons: AgentDaemon[] = [];

after(async () => {
  await Promise.all(daemons.map((d) => d.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** A logger that keeps its records. */
function memoryLogger(): Logger & { records: string[] } {
  const records: string[] = [];
  const rec = (level: string) => (msg: string) => void records.push(`${level} ${msg}`);
  return { records, error: rec('error'), warn: rec('warn'), info: rec('info'), debug: rec('debug') };
}

async function startDaemon(options: AgentDaemonOptions = {}): Promise<{ daemon: AgentDaemon; sock: string }> {
  const daemon = new AgentDaemon({ logger: memoryLogger(), ...options });
  daemons.push(daemon);
  const sock = path.join(dir, `d${counter++}.sock`);
  await daemon.listenUnix(sock);
  return { daemon, sock };
}

/** A raw client socket that keeps everything it receives. */
class Peer {
  private chunks: Buffer[] = [];
  private waiters: Array<() => void> = [];
  ended = false;
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(to: string | { port: number; host: string }): Promise<Peer> {
    const socket = typeof to === 'string' ? net.connect({ path: to, allowHalfOpen: true }) : net.connect({ ...to, allowHalfOpen: true });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new Peer(socket)));
      socket.once('error', reject);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Waits (event-driven) until `cond` holds; fails if the connection closes first without it. */
  async until(cond: () => boolean, what = 'condition'): Promise<void> {
    while (!cond()) {
      if (this.closed) throw new Error(`connection closed before ${what}; got ${JSON.stringify(this.bytes.toString('latin1'))}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** The first `n` JSON lines (waiting for them). */
  async lines(n: number): Promise<Record<string, unknown>[]> {
    let got: Record<string, unknown>[] = [];
    await this.until(() => {
      const r = new FrameReader(ndjson<Record<string, unknown>>());
      got = [];
      r.feed(this.bytes);
      while (got.length < n) {
        const v = r.next();
        if (v === undefined) break;
        got.push(v);
      }
      return got.length >= n;
    }, `${n} lines`);
    return got;
  }

  /** Waits for the end of the connection. */
  async end(): Promise<void> {
    await new Promise<void>((resolve) => {
      const check = () => (this.ended || this.closed ? resolve() : this.waiters.push(check));
      check();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

const codec = sessionCodec();
const frame = (type: SessionFrame['type'], payload: Uint8Array = new Uint8Array(0)) => Buffer.from(encodeToBytes(codec, { type, payload }));
const line = (v: unknown) => Buffer.from(JSON.stringify(v) + '\n');

/** Splits a byte transcript after `lineCount` JSON lines into those lines and the session frames. */
function splitTranscript(bytes: Buffer, lineCount: number): { lines: Record<string, unknown>[]; frames: SessionFrame[] } {
  const r = new FrameReader(ndjson<Record<string, unknown>>());
  r.feed(bytes);
  const lines: Record<string, unknown>[] = [];
  for (let i = 0; i < lineCount; i++) lines.push(r.next()!);
  return { lines, frames: r.switchTo(sessionCodec()).end() };
}

test('greeting bytes: version and whether a token is required', async () => {
  const { daemon, sock } = await startDaemon();
  const p = await Peer.connect(sock);
  await p.lines(1);
  assert.equal(p.bytes.toString(), `{"version":"${AGENT_PROTOCOL_VERSION}","auth":"none"}\n`);
  p.socket.destroy();
  const tcp = await daemon.listenTcp('127.0.0.1', 0, { token: 'secret' });
  const port = Number(/:(\d+)$/.exec(tcp.address)![1]);
  const t = await Peer.connect({ port, host: '127.0.0.1' });
  await t.lines(1);
  assert.equal(t.bytes.toString(), `{"version":"${AGENT_PROTOCOL_VERSION}","auth":"token"}\n`);
  t.socket.destroy();
});

const badInput = Buffer.concat([
  line({ cmd: 'ping' }),
  Buffer.from('not json\n'),
  Buffer.from('[1,2]\n'),
  line({ cmd: 'ping', opts: 5 }),
  Buffer.from('{"cmd":"' + 'x'.repeat(3000) + '"}\n'),
  line({ cmd: 'nope', opts: null }),
  Buffer.from('\r\n'),
  line({ cmd: 'auth' }),
]);
const expected = [
  { status: true },
  { status: false, message: 'syntax error, expected a valid JSON', code: 'WK_MALFORMED' },
  { status: false, message: 'invalid request, expected {"cmd": <name>, "opts": <params>}', code: 'WK_PROTOCOL' },
  { status: false, message: 'invalid request, "opts" must be an object', code: 'WK_PROTOCOL' },
  { status: false, message: 'request line too long, over 1024 bytes', code: 'WK_FRAME_TOO_LARGE' },
  { status: false, message: "unknown command 'nope'", code: 'WK_PROTOCOL' },
  { status: true, response: { authenticated: true } },
];

test('a session command whose opts are not an object is answered like a bad line; the connection goes on', async () => {
  const { sock } = await startDaemon();
  const p = await Peer.connect(sock);
  p.socket.write(Buffer.concat([line({ cmd: 'exec', opts: [1] }), line({ cmd: 'auth' })]));
  const got = await p.lines(3);
  assert.deepEqual(got.slice(1), [
    { status: false, message: 'invalid request, "opts" must be an object', code: 'WK_PROTOCOL' },
    { status: true, response: { authenticated: true } },
  ]);
  p.socket.destroy();
});

test('serveConnection: a connection that arrived another way (with bytes already read) is served like an accepted one', async () => {
  const { daemon } = await startDaemon();
  const relaySock = path.join(dir, 'relay.sock');
  const relay = net.createServer({ allowHalfOpen: true }, (s) => daemon.serveConnection(s, { peer: 'relay', leftover: line({ cmd: 'ping' }) }));
  await new Promise<void>((r) => relay.listen(relaySock, r));
  try {
    const p = await Peer.connect(relaySock);
    p.socket.write(line({ cmd: 'auth' }));
    const [greeting, pong, auth] = await p.lines(3);
    assert.deepEqual(greeting, { version: AGENT_PROTOCOL_VERSION, auth: 'none' });
    assert.equal((pong!.response as { pong: boolean }).pong, true);
    assert.deepEqual(auth, { status: true, response: { authenticated: true } });
    p.socket.destroy();
  } finally {
    relay.close();
  }
});

function shape(v: Record<string, unknown>): Record<string, unknown> {
  return v.status === true && (v.response as { pong?: boolean } | undefined)?.pong ? { status: true } : v;
}

test('pipelined requests and bad lines are answered in order with WK_ codes; the connection goes on', async () => {
  const { sock } = await startDaemon({ maxMessageBytes: 1024 });
  const p = await Peer.connect(sock);
  p.socket.write(badInput);
  const got = await p.lines(1 + expected.length);
  assert.deepEqual(got.slice(1).map(shape), expected);
  p.socket.write(line({ cmd: 'ping' }));
  const more = await p.lines(2 + expected.length);
  assert.equal((more.at(-1)!.response as { pong: boolean }).pong, true);
  p.socket.destroy();
});

test('the same replies however the requests are split across reads', async () => {
  const { sock } = await startDaemon({ maxMessageBytes: 1024 });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(), { maxLength: 8 }), async (cuts) => {
      const p = await Peer.connect(sock);
      try {
        for (const c of splitAt(badInput, cuts)) {
          p.socket.write(c);
          await new Promise((r) => setImmediate(r));
        }
        const got = await p.lines(1 + expected.length);
        assert.deepEqual(got.slice(1).map(shape), expected);
      } finally {
        p.socket.destroy();
      }
    }),
    { numRuns: 25 },
  );
});

test('exec: stdin frames sent behind the request reach the program first, however the bytes are split', async () => {
  const { sock } = await startDaemon();
  const stdin = randomBytes(5000);
  const input = Buffer.concat([line({ cmd: 'exec', opts: { argv: ['cat'] } }), frame(FrameType.DATA, stdin), frame(FrameType.EOF)]);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.nat(), { maxLength: 6 }), async (cuts) => {
      const p = await Peer.connect(sock);
      try {
        for (const c of splitAt(input, cuts)) {
          p.socket.write(c);
          await new Promise((r) => setImmediate(r));
        }
        await p.end(); // the daemon ends the connection after EXIT
        const { lines, frames } = splitTranscript(p.bytes, 2);
        assert.equal(lines[1]!.status, true);
        assert.equal(typeof (lines[1]!.response as { pid: number }).pid, 'number');
        const out = Buffer.concat(frames.filter((f) => f.type === FrameType.STDOUT).map((f) => f.payload));
        assert.ok(out.equals(stdin));
        assert.equal(frames.at(-1)!.type, FrameType.EXIT);
        assert.deepEqual(decodeExit(frames.at(-1)!.payload), { code: 0, signal: null });
      } finally {
        p.socket.destroy();
      }
    }),
    { numRuns: 12 },
  );
});

test('TCP: auth, exec and its stdin in one write; the session starts from the buffered bytes', async () => {
  const { daemon } = await startDaemon();
  const tcp = await daemon.listenTcp('127.0.0.1', 0, { token: 'tok-123' });
  const port = Number(/:(\d+)$/.exec(tcp.address)![1]);
  const p = await Peer.connect({ port, host: '127.0.0.1' });
  p.socket.write(
    Buffer.concat([
      line({ cmd: 'auth', opts: { token: 'tok-123' } }),
      line({ cmd: 'exec', opts: { argv: ['sh', '-c', 'cat; echo done >&2'] } }),
      frame(FrameType.DATA, Buffer.from('héllo\n')),
      frame(FrameType.EOF),
    ]),
  );
  await p.end();
  const { lines, frames } = splitTranscript(p.bytes, 3);
  assert.equal(lines[0]!.auth, 'token');
  assert.deepEqual(lines[1], { status: true, response: { authenticated: true } });
  assert.equal(lines[2]!.status, true);
  const of = (t: number) => Buffer.concat(frames.filter((f) => f.type === t).map((f) => f.payload)).toString();
  assert.equal(of(FrameType.STDOUT), 'héllo\n');
  assert.equal(of(FrameType.STDERR), 'done\n');
  p.socket.destroy();
});

test('authentication: a wrong token, a command before auth, or a bad line before auth get an error reply and the end; others are served', async () => {
  const logger = memoryLogger();
  const { daemon } = await startDaemon({ logger });
  const tcp = await daemon.listenTcp('127.0.0.1', 0, { token: 'right' });
  const port = Number(/:(\d+)$/.exec(tcp.address)![1]);
  const cases: Array<[string, RegExp]> = [
    [JSON.stringify({ cmd: 'auth', opts: { token: 'wrong' } }) + '\n' + JSON.stringify({ cmd: 'ping' }) + '\n', /invalid token/],
    [JSON.stringify({ cmd: 'exec', opts: { argv: ['id'] } }) + '\n', /authentication required/],
    ['{"cmd": nope\n', /syntax error/],
  ];
  for (const [input, message] of cases) {
    const p = await Peer.connect({ port, host: '127.0.0.1' });
    p.socket.write(input);
    await p.end();
    const text = p.bytes.toString().trimEnd().split('\n');
    assert.equal(text.length, 2, `one reply only: ${text.join(' | ')}`);
    const reply = JSON.parse(text[1]!) as Record<string, unknown>;
    assert.equal(reply.status, false);
    assert.match(String(reply.message), message);
    assert.match(String(reply.code), /^WK_(AUTH|MALFORMED)$/);
    p.socket.destroy();
  }
  assert.equal(logger.records.filter((r) => r.startsWith('warn') && r.includes('refused')).length, 3);
  const ok = await Peer.connect({ port, host: '127.0.0.1' });
  ok.socket.write(line({ cmd: 'auth', opts: { token: 'right' } }) + JSON.stringify({ cmd: 'ping' }) + '\n');
  const got = await ok.lines(3);
  assert.equal((got[2]!.response as { pong: boolean }).pong, true);
  ok.socket.destroy();
});

test('a failed session command is answered with its code and ends the connection: bytes behind it are not read as requests', async () => {
  const root = path.join(dir, 'root-fail');
  mkdirSync(root);
  const { sock } = await startDaemon({ root, maxSessions: 1 });
  const attempts: Array<[unknown, RegExp]> = [
    [{ cmd: 'exec', opts: { argv: ['definitely-not-a-program-xyz'] } }, /^WK_(NO_PROGRAM|SPAWN)$/],
    [{ cmd: 'upload', opts: { path: '../escape.bin', size: 1 } }, /^WK_PATH_ESCAPE$/],
    [{ cmd: 'download', opts: { path: 'missing.bin' } }, /^WK_/],
    [{ cmd: 'exec', opts: { argv: [] } }, /^WK_PROTOCOL$/],
  ];
  for (const [req, code] of attempts) {
    const p = await Peer.connect(sock);
    p.socket.write(Buffer.concat([line(req), line({ cmd: 'ping' })]));
    await p.end();
    const text = p.bytes.toString().trimEnd().split('\n');
    assert.equal(text.length, 2, `no reply to the ping behind ${JSON.stringify(req)}: ${text.join(' | ')}`);
    const reply = JSON.parse(text[1]!) as { status: boolean; code: string };
    assert.equal(reply.status, false);
    assert.match(reply.code, code);
    p.socket.destroy();
  }
  // Session limit: one session runs, the next is refused with WK_LIMIT, control commands still work.
  const holder = await Peer.connect(sock);
  holder.socket.write(line({ cmd: 'exec', opts: { argv: ['cat'] } }));
  await holder.lines(2);
  const refused = await Peer.connect(sock);
  refused.socket.write(line({ cmd: 'terminal', opts: {} }));
  await refused.end();
  assert.match(refused.bytes.toString(), /"status":false,.*"code":"WK_LIMIT"/);
  const ping = await Peer.connect(sock);
  ping.socket.write(line({ cmd: 'ping' }));
  assert.equal((await ping.lines(2))[1]!.status, true);
  for (const p of [holder, refused, ping]) p.socket.destroy();
  assert.deepEqual(readdirSync(root), [], 'nothing created for refused transfers');
});

test('upload and download over the raw socket; --fsync flushes the file before the rename', async () => {
  // Count flushes of the upload's temp file handle.
  const probe = await open(path.join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void>; sync(): Promise<void> };
  await probe.close();
  const { datasync, sync } = proto;
  let flushes = 0;
  proto.datasync = function (this: unknown) {
    flushes++;
    return datasync.call(this);
  };
  proto.sync = function (this: unknown) {
    flushes++;
    return sync.call(this);
  };
  try {
    for (const fsync of [false, true]) {
      const root = path.join(dir, `root-up-${fsync}`);
      mkdirSync(root);
      const { sock } = await startDaemon({ root, fsync });
      const data = randomBytes(200_000);
      const digest = createHash('sha256').update(data).digest();
      flushes = 0;
      const up = await Peer.connect(sock);
      up.socket.write(line({ cmd: 'upload', opts: { path: 'f.bin', size: data.length, mode: 0o640 } }));
      const [, first] = await up.lines(2);
      // The path as the client named it, under the root: the daemon's own location stays private.
      assert.deepEqual(first, { status: true, response: { path: '/f.bin' } });
      up.socket.write(Buffer.concat([data, digest]));
      const [, , final] = await up.lines(3);
      assert.deepEqual(final, { status: true, response: { path: '/f.bin', size: data.length, sha256: digest.toString('hex') } });
      assert.ok(readFileSync(path.join(root, 'f.bin')).equals(data));
      assert.equal(flushes > 0, fsync, `fsync ${fsync}: ${flushes} flushes`);
      up.socket.destroy();

      const down = await Peer.connect(sock);
      down.socket.write(line({ cmd: 'download', opts: { path: 'f.bin' } }));
      await down.end();
      const bytes = down.bytes;
      const r = new FrameReader(ndjson<Record<string, unknown>>());
      r.feed(bytes);
      r.next();
      assert.deepEqual(r.next(), { status: true, response: { path: '/f.bin', size: data.length, mode: 0o640 } });
      const rest = Buffer.from(r.takeRemaining());
      assert.ok(rest.subarray(0, data.length).equals(data));
      assert.ok(rest.subarray(data.length).equals(digest));
      down.socket.destroy();
    }
  } finally {
    proto.datasync = datasync;
    proto.sync = sync;
  }
});

test('a half-closed client gets every reply, then the end; an idle one is closed', async () => {
  const { sock } = await startDaemon({ idleTimeoutMs: 50 });
  const p = await Peer.connect(sock);
  p.socket.end(Buffer.concat([line({ cmd: 'ping' }), line({ cmd: 'auth' }), Buffer.from('{"cmd":"partial"')]));
  await p.end();
  const replies = p.bytes.toString().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  // Greeting, ping, auth, and the unterminated last line, answered too (it is not JSON: an error).
  assert.equal(replies.length, 4);
  assert.equal(replies[2]!.status, true);
  assert.equal(replies[3]!.status, false);
  const idle = await Peer.connect(sock);
  await idle.end();
  assert.equal(idle.bytes.toString().split('\n').length, 2, 'only the greeting');
});

test('the connection closes while a session command is being prepared: the session ends at once', async () => {
  // The logger sees `connection ...: <cmd>` just before the daemon runs the command: closing the
  // daemon there closes the connection while the command is being prepared.
  let daemon: AgentDaemon | undefined;
  const logger = memoryLogger();
  const debug = logger.debug;
  logger.debug = (msg: string) => {
    debug(msg);
    if (/: (exec|upload)$/.test(msg)) void daemon!.close();
  };
  const root = path.join(dir, 'root-closing');
  mkdirSync(root);
  const poll = async (what: string, cond: () => boolean) => {
    for (let i = 0; !cond(); i++) {
      assert.ok(i < 1000, what);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  // An upload: its temp file is removed and its slot freed (transfers have no keepalive).
  const up = await startDaemon({ logger, root });
  daemon = up.daemon;
  const u = await Peer.connect(up.sock);
  u.socket.write(line({ cmd: 'upload', opts: { path: 'f.bin', size: 1000 } }));
  await u.end();
  await poll('upload session still counted', () => daemon!.sessions === 0 && readdirSync(root).length === 0);

  // An exec: the program is killed, not left running until the keepalive gives up.
  const ex = await startDaemon({ logger, root });
  daemon = ex.daemon;
  const p = await Peer.connect(ex.sock);
  p.socket.write(line({ cmd: 'exec', opts: { argv: ['sleep', '1000'], cwd: '/' } }));
  await p.end();
  const pidOf = () => logger.records.map((r) => /exec \["sleep","1000"\] pid (\d+)/.exec(r)).find((m) => m)?.[1];
  await poll('the program was never started', () => pidOf() !== undefined);
  const pid = Number(pidOf());
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  await poll(`program ${pid} still running`, () => !alive() && daemon!.sessions === 0);
});

test('wirekit serve --fsync: documented in --help, accepted, uploads work', async () => {
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  const run = (args: string[]) => spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WIREKIT_TOKEN: '' } });
  const help = run(['serve', '--help']);
  let text = '';
  help.stdout!.on('data', (d: Buffer) => (text += d));
  await new Promise((r) => help.once('close', r));
  assert.match(text, /--fsync\s+flush each uploaded file/);
  const sock = path.join(dir, 'cli-fsync.sock');
  const daemon = run(['serve', '--fsync', '-l', sock]);
  try {
    await new Promise<void>((resolve, reject) => {
      let log = '';
      daemon.stderr!.on('data', (d: Buffer) => {
        log += d;
        if (log.includes('listening on')) resolve();
      });
      daemon.once('close', (code) => reject(new Error(`serve --fsync exited ${code}: ${log}`)));
    });
    const data = randomBytes(10_000);
    const p = await Peer.connect(sock);
    p.socket.write(line({ cmd: 'upload', opts: { path: path.join(dir, 'cli-fsync.bin'), size: data.length } }));
    await p.lines(2);
    p.socket.write(Buffer.concat([data, createHash('sha256').update(data).digest()]));
    const [, , final] = await p.lines(3);
    assert.equal(final!.status, true);
    assert.ok(readFileSync(path.join(dir, 'cli-fsync.bin')).equals(data));
    p.socket.destroy();
  } finally {
    const closed = new Promise((r) => daemon.once('close', r));
    daemon.kill('SIGTERM');
    await closed;
  }
});

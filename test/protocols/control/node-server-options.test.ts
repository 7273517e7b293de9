/**
 * The ControlServer options a daemon needs (authentication step, idle timeout, error replies
 * with codes, closing after a reply), ControlClient's backpressure and one-request-at-a-time
 * mode, and the raw stream handed over after the client's end of input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import {
  CommandError,
  ControlClient,
  ControlServer,
  RemoteCommandError,
  UnknownCommandError,
  type ControlServerOptions,
} from '../../../src/protocols/control/node.js';
import { WirekitError } from '../../../src/errors.js';
import { RawPeer, recordingLogger, tmpSocketPath } from './helpers.js';

async function setup(configure: (s: ControlServer) => void, options: ControlServerOptions = {}) {
  const logger = recordingLogger();
  const server = new ControlServer({ logger, ...options });
  configure(server);
  const tmp = tmpSocketPath();
  const listener = await server.listen({ path: tmp.path });
  const peers: RawPeer[] = [];
  return {
    server,
    logger,
    path: tmp.path,
    async peer() {
      const p = await RawPeer.connect({ path: tmp.path });
      peers.push(p);
      return p;
    },
    async close() {
      for (const p of peers) p.close();
      await listener.close();
      await server.close();
      tmp.cleanup();
    },
  };
}

const TOKEN = 'secret-token';
function tokenMatches(opts: unknown): boolean {
  const given = (opts as { token?: unknown }).token;
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(TOKEN);
  return a.length === b.length && timingSafeEqual(a, b);
}

test('authenticate: every other command is refused with WK_AUTH until the credentials are accepted', async () => {
  const t = await setup((s) => s.command('ping', () => 'pong'), {
    authenticate: { command: 'auth', verify: tokenMatches },
  });
  try {
    const p = await t.peer();
    p.write('{"cmd":"ping"}\n{"cmd":"auth","opts":{"token":"wrong"}}\n{"cmd":"auth","opts":{"token":"secret-token"}}\n{"cmd":"ping"}\n{"cmd":"auth"}\n');
    assert.deepEqual(await p.lines(5), [
      { status: false, message: "authentication required: send 'auth' first", code: 'WK_AUTH' },
      { status: false, message: 'authentication failed', code: 'WK_AUTH' },
      { status: true, response: true },
      { status: true, response: 'pong' },
      // Once authenticated the command is served like any other: none is registered here.
      { status: false, message: "unknown command 'auth'" },
    ]);
    for (const c of t.server.connections) assert.equal(c.authenticated, true);
  } finally {
    await t.close();
  }
});

test("authenticate: the agent daemon's wire behaviour (greeting, messages, async verify, refusal closes)", async () => {
  const t = await setup((s) => {
    s.command('auth', () => ({ authenticated: true }));
    s.command('ping', () => ({ pong: true }));
  }, { version: 'wirekit-agent/1' });
  const tcpLike = {
    greeting: { auth: 'token' },
    authenticate: {
      command: 'auth',
      verify: async (opts: unknown) => tokenMatches(opts),
      response: { authenticated: true },
      failedMessage: 'invalid token',
      requiredMessage: 'authentication required: send {"cmd":"auth","opts":{"token":...}} first',
      closeOnFailure: true,
    },
  };
  const unix = t.server;
  const tmp = tmpSocketPath();
  const l = await unix.listen({ path: tmp.path }, tcpLike);
  try {
    const ok = await RawPeer.connect({ path: tmp.path });
    ok.write('{"cmd":"auth","opts":{"token":"secret-token"}}\n{"cmd":"ping"}\n{"cmd":"auth","opts":{}}\n');
    assert.deepEqual(await ok.lines(4), [
      { version: 'wirekit-agent/1', auth: 'token' },
      { status: true, response: { authenticated: true } },
      { status: true, response: { pong: true } },
      { status: true, response: { authenticated: true } },
    ]);
    ok.close();

    const wrong = await RawPeer.connect({ path: tmp.path });
    wrong.write('{"cmd":"auth","opts":{"token":"nope"}}\n{"cmd":"ping"}\n');
    assert.deepEqual(await wrong.lines(2), [
      { version: 'wirekit-agent/1', auth: 'token' },
      { status: false, message: 'invalid token', code: 'WK_AUTH' },
    ]);
    await wrong.waitEnd();

    const early = await RawPeer.connect({ path: tmp.path });
    early.write('{"cmd":"ping"}\n');
    assert.deepEqual(await early.lines(2), [
      { version: 'wirekit-agent/1', auth: 'token' },
      { status: false, message: 'authentication required: send {"cmd":"auth","opts":{"token":...}} first', code: 'WK_AUTH' },
    ]);
    await early.waitEnd();

    // The server's other listener has no authentication step.
    const plain = await t.peer();
    plain.write('{"cmd":"ping"}\n');
    assert.deepEqual(await plain.lines(2), [{ version: 'wirekit-agent/1' }, { status: true, response: { pong: true } }]);
  } finally {
    await l.close();
    tmp.cleanup();
    await t.close();
  }
});

test('authenticate with closeOnFailure: a bad line before authentication ends the connection too', async () => {
  const t = await setup(() => {}, {
    authenticate: { command: 'auth', verify: tokenMatches, closeOnFailure: true },
    rejectFields: () => ({ code: 'WK_MALFORMED' }),
  });
  try {
    const p = await t.peer();
    p.write('not json\n{"cmd":"auth","opts":{"token":"secret-token"}}\n');
    assert.deepEqual(await p.lines(1), [{ status: false, message: 'syntax error, expected a valid JSON', code: 'WK_MALFORMED' }]);
    await p.waitEnd();
  } finally {
    await t.close();
  }
});

test('error replies carry the code of the error thrown; plain CommandError bytes are unchanged', async () => {
  const t = await setup((s) => {
    s.command('missing', () => {
      throw new WirekitError('WK_NOT_FOUND', 'no such container', { origin: 'local' });
    });
    s.command('coded', async () => {
      throw new CommandError('busy', { code: 'WK_BUSY' });
    });
    s.command('plain', () => {
      throw new CommandError('plain failure');
    });
    s.command('bug', () => {
      throw new TypeError('boom');
    });
  });
  try {
    const p = await t.peer();
    p.write('{"cmd":"missing"}\n{"cmd":"coded"}\n{"cmd":"plain"}\n{"cmd":"bug"}\n{"cmd":"nope"}\n');
    const text = await p.raw(
      '{"status":false,"message":"no such container","code":"WK_NOT_FOUND"}\n'.length +
        '{"status":false,"message":"busy","code":"WK_BUSY"}\n'.length +
        '{"status":false,"message":"plain failure"}\n'.length +
        '{"status":false,"message":"internal error"}\n'.length +
        `{"status":false,"message":"unknown command 'nope'"}\n`.length,
    );
    assert.equal(
      text,
      '{"status":false,"message":"no such container","code":"WK_NOT_FOUND"}\n' +
        '{"status":false,"message":"busy","code":"WK_BUSY"}\n' +
        '{"status":false,"message":"plain failure"}\n' +
        '{"status":false,"message":"internal error"}\n' +
        `{"status":false,"message":"unknown command 'nope'"}\n`,
    );
    assert.equal(t.logger.errors.length, 1, 'only the TypeError is logged');

    const c = await ControlClient.connect({ path: t.path });
    const err = await c.call('missing').catch((e: unknown) => e);
    assert.ok(err instanceof RemoteCommandError);
    assert.equal(err.remoteCode, 'WK_NOT_FOUND');
    assert.deepEqual(err.extra, { code: 'WK_NOT_FOUND' });
    const plain = await c.call('plain').catch((e: unknown) => e);
    assert.ok(plain instanceof RemoteCommandError);
    assert.equal(plain.remoteCode, undefined);
    c.close();
  } finally {
    await t.close();
  }
});

test('errorReply: every failure mapped (codes for unknown commands and internal errors), close after a reply, checkOptions', async () => {
  const t = await setup(
    (s) => {
      s.command('exec', () => {
        throw new Error('spawn failed');
      });
      s.command('ping', () => 'pong');
    },
    {
      errorReply: (err, cmd) => ({
        message: err instanceof Error ? err.message : String(err),
        code: err instanceof UnknownCommandError ? 'WK_PROTOCOL' : err instanceof WirekitError ? err.code : 'WK_INTERNAL',
        close: cmd === 'exec',
      }),
      checkOptions: (opts) => {
        if (typeof opts !== 'object' || Array.isArray(opts)) throw new WirekitError('WK_PROTOCOL', 'invalid request, "opts" must be an object', { origin: 'remote' });
      },
    },
  );
  try {
    const p = await t.peer();
    p.write('{"cmd":"nope"}\n{"cmd":"ping","opts":[1]}\n{"cmd":"ping"}\n{"cmd":"exec"}\nsession bytes, not requests\n');
    assert.deepEqual(await p.lines(4), [
      { status: false, message: "unknown command 'nope'", code: 'WK_PROTOCOL' },
      { status: false, message: 'invalid request, "opts" must be an object', code: 'WK_PROTOCOL' },
      { status: true, response: 'pong' },
      { status: false, message: 'spawn failed', code: 'WK_INTERNAL' },
    ]);
    await p.waitEnd();
    assert.equal(t.logger.errors.length, 0, 'a mapped failure is not logged');
  } finally {
    await t.close();
  }
});

test('idle timeout: a connection without requests is closed; a running command is not cut', async () => {
  let release!: () => void;
  const t = await setup(
    (s) => {
      s.command('ping', () => 'pong');
      // Resolves when the test says so, after the idle timer would have fired several times.
      s.command('hold', () => new Promise<string>((r) => (release = () => r('held'))));
    },
    { idleTimeout: 30 },
  );
  try {
    const idle = await t.peer();
    idle.write('{"cmd":"ping"}\n');
    assert.deepEqual(await idle.lines(1), [{ status: true, response: 'pong' }]);
    await idle.waitEnd();

    const busy = await t.peer();
    busy.write('{"cmd":"hold"}\n');
    // A connection opened after the command started is closed for idleness: had the running
    // command's connection an idle timer, it would have fired before.
    const later = await t.peer();
    await later.waitEnd();
    assert.equal(busy.ended, false, 'the connection running a command stays open');
    release();
    assert.deepEqual(await busy.lines(1), [{ status: true, response: 'held' }]);
    await busy.waitEnd();
  } finally {
    await t.close();
  }
});

test('client pipeline: false sends one request at a time, each after the previous reply', async () => {
  const reads: string[] = [];
  let onRead: (() => void) | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d: Buffer) => {
      reads.push(d.toString());
      onRead?.();
    });
    s.on('error', () => {});
  });
  const tmp = tmpSocketPath();
  await new Promise<void>((r) => server.listen(tmp.path, r));
  const nextRead = () => new Promise<string>((resolve) => {
    const have = reads.length;
    const check = () => {
      if (reads.length > have) {
        onRead = undefined;
        resolve(reads[have]!);
      }
    };
    onRead = check;
    check();
  });
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  let sock: net.Socket | undefined;
  try {
    const first = nextRead();
    const c = await ControlClient.connect({ path: tmp.path }, { pipeline: false });
    sock = await accepted;
    const results = [c.call('a'), c.call('b', { n: 2 }).catch((e: unknown) => e), c.call('c')];
    assert.equal(await first, '{"cmd":"a","opts":{}}\n', 'only the first request is sent');
    const second = nextRead();
    sock.write('{"status":true,"response":1}\n');
    assert.equal(await second, '{"cmd":"b","opts":{"n":2}}\n');
    const third = nextRead();
    sock.write('{"status":true,"progress":"half"}\n{"status":false,"message":"no"}\n');
    assert.equal(await third, '{"cmd":"c","opts":{}}\n');
    sock.write('{"status":true,"response":3}\n');
    assert.equal(await results[0], 1);
    assert.ok((await results[1]) instanceof RemoteCommandError);
    assert.equal(await results[2], 3);
    assert.equal(reads.length, 3, 'one read per request');
    c.close();
  } finally {
    sock?.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    tmp.cleanup();
  }
});

test('client backpressure: reading stops while maxQueued events wait, and resumes as they are consumed', async () => {
  const TOTAL = 2000;
  let sent = 0;
  const t = await setup((s) =>
    s.command('events', async (_o, ctx) => {
      await ctx.reply('subscribed');
      for (let i = 0; i < TOTAL; i++) {
        await ctx.send({ i, pad: 'x'.repeat(2048) });
        sent++;
      }
    }),
  );
  try {
    const c = await ControlClient.connect({ path: t.path }, { maxQueued: 8 });
    const paused = new Promise<void>((r) => c.stream.once('pause', () => r()));
    const sub = await c.subscribe<{ i: number }>('events');
    assert.equal(sub.response, 'subscribed');
    await paused; // the client stopped reading: nobody consumes the events
    assert.ok(c.queuedMessages <= 8, `queued ${c.queuedMessages}`);
    assert.ok(sent < TOTAL, 'the server is held back too');
    for (let i = 0; i < TOTAL; i++) {
      const e = await sub.next({ timeout: 5000 });
      assert.equal(e?.i, i);
      assert.ok(c.queuedMessages <= 8, `queued ${c.queuedMessages}`);
    }
    sub.close();
  } finally {
    await t.close();
  }
});

test('hand-off after the client ended: leftover then end, writes reach the client, destroy() closes the socket', async () => {
  let hijacked!: (s: Duplex) => void;
  const hijackedP = new Promise<Duplex>((r) => (hijacked = r));
  let serverSocket!: Duplex;
  const t = await setup(
    (s) =>
      s.command('forward', async (_o, ctx) => {
        const stream = ctx.connection.stream;
        serverSocket = stream;
        if (!stream.readableEnded) await new Promise((r) => stream.once('end', r));
        await ctx.reply('ok');
        hijacked(ctx.hijack());
      }),
    { onEnd: 'serve' },
  );
  try {
    const p = await t.peer();
    p.socket.end('{"cmd":"forward"}\nrest');
    const raw = await hijackedP;
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => {
      raw.on('data', (c: Buffer) => chunks.push(c));
      raw.on('end', resolve);
    });
    assert.equal(Buffer.concat(chunks).toString(), 'rest');
    raw.write('out');
    assert.deepEqual(await p.lines(1), [{ status: true, response: 'ok' }]);
    assert.equal(await p.raw(3), 'out');
    // Both directions over, then destroy(): the socket must be closed (issue 12, item 13).
    await new Promise<void>((r) => raw.end(r));
    const closed = new Promise<void>((r) => (serverSocket.destroyed ? r() : serverSocket.once('close', () => r())));
    raw.destroy();
    assert.equal(serverSocket.destroyed, true);
    await closed;
    await p.waitEnd();
    for (const c of t.server.connections) assert.fail(`connection ${c.id} still served`);
  } finally {
    await t.close();
  }
});

test('before authentication: a small line limit and buffer, an auth timeout, connection caps global and per address', async () => {
  const logger = recordingLogger();
  const server = new ControlServer({
    logger,
    version: '1',
    maxLineLength: 1024 * 1024,
    preAuthMaxLineLength: 64,
    authTimeout: 150,
    maxConnections: 3,
    maxConnectionsPerAddress: 2,
    authenticate: { command: 'auth', verify: tokenMatches },
  });
  server.command('echo', (o: unknown) => o);
  const listener = await server.listen({ host: '127.0.0.1', port: 0 });
  const port = (listener.address as net.AddressInfo).port;
  const peers: RawPeer[] = [];
  const peer = async () => {
    const p = await RawPeer.connect({ host: '127.0.0.1', port });
    peers.push(p);
    return p;
  };
  try {
    // A line over the pre-auth limit is refused as too long (the full limit is 1 MiB).
    const a = await peer();
    assert.deepEqual(await a.lines(1), [{ version: '1' }]);
    a.write(`{"cmd":"auth","opts":{"token":"${'x'.repeat(100)}"}}\n`);
    assert.match(((await a.lines(1))[0] as { message: string }).message, /too long, over 64 bytes/);
    // Authenticated: the full limit applies, and the auth timeout no longer does.
    a.write(`{"cmd":"auth","opts":{"token":"${TOKEN}"}}\n`);
    assert.deepEqual(await a.lines(1), [{ status: true, response: true }]);
    a.write(`{"cmd":"echo","opts":{"v":"${'y'.repeat(10_000)}"}}\n`);
    assert.equal(((await a.lines(1))[0] as { response: { v: string } }).response.v.length, 10_000);
    // A second connection from the same address; a third is one too many for it.
    const b = await peer();
    assert.deepEqual(await b.lines(1), [{ version: '1' }]);
    const c = await peer();
    assert.deepEqual(await c.lines(2), [{ version: '1' }, { status: false, message: 'too many connections from 127.0.0.1 (limit 2)', code: 'WK_LIMIT' }]);
    await c.waitEnd();
    // b never authenticates: it is refused when the auth timeout passes, then closed.
    assert.deepEqual(await b.lines(1), [{ status: false, message: 'not authenticated within 150 ms', code: 'WK_TIMEOUT' }]);
    await b.waitEnd();
    // The authenticated one is still served, after its auth timeout.
    a.write('{"cmd":"echo","opts":1}\n');
    assert.deepEqual(await a.lines(1), [{ status: true, response: 1 }]);
  } finally {
    for (const p of peers) p.close();
    await listener.close();
    await server.close();
  }
});

test('maxConnections counts every network connection, whatever its address; Unix-socket ones are not counted', async () => {
  const server = new ControlServer({ logger: recordingLogger(), version: '1', maxConnections: 2 });
  const listener = await server.listen({ host: '127.0.0.1', port: 0 });
  const port = (listener.address as net.AddressInfo).port;
  const tmp = tmpSocketPath();
  const unix = await server.listen({ path: tmp.path });
  const peers: RawPeer[] = [];
  try {
    // From several loopback addresses (127.0.0.0/8 is all loopback on Linux).
    for (const localAddress of ['127.0.0.1', '127.0.0.2']) {
      const p = await RawPeer.connect({ host: '127.0.0.1', port, localAddress } as { host: string; port: number });
      peers.push(p);
      assert.deepEqual(await p.lines(1), [{ version: '1' }]);
    }
    const over = await RawPeer.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' } as { host: string; port: number });
    peers.push(over);
    assert.deepEqual(await over.lines(2), [{ version: '1' }, { status: false, message: 'too many connections (limit 2)', code: 'WK_LIMIT' }]);
    await over.waitEnd();
    const local = await RawPeer.connect({ path: tmp.path });
    peers.push(local);
    local.write('{"cmd":"nope"}\n');
    assert.equal(((await local.lines(2))[1] as { status: boolean }).status, false);
    assert.equal(local.ended, false);
  } finally {
    for (const p of peers) p.close();
    await listener.close();
    await unix.close();
    await server.close();
    tmp.cleanup();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { ControlServer, CommandError, INTERNAL_ERROR_MESSAGE, SYNTAX_ERROR_MESSAGE, type CommandContext } from '../../../src/protocols/control/node.js';
import { RawPeer, recordingLogger, tmpSocketPath } from './helpers.js';

let lastPath = '';

async function setup(configure: (s: ControlServer) => void, options: ConstructorParameters<typeof ControlServer>[0] = {}) {
  const logger = recordingLogger();
  const server = new ControlServer({ version: '9.9', logger, ...options });
  configure(server);
  const tmp = tmpSocketPath();
  const listener = await server.listen({ path: tmp.path });
  lastPath = tmp.path;
  const peers: RawPeer[] = [];
  return {
    server,
    logger,
    async peer() {
      const p = await RawPeer.connect({ path: tmp.path });
      peers.push(p);
      assert.deepEqual(await p.lines(1), [{ version: '9.9' }]);
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

test('pipelined commands in one write are all served in order', async () => {
  const t = await setup((s) => {
    s.command('add', ({ a, b }: { a: number; b: number }) => a + b);
    s.command('later', async ({ v }: { v: number }) => {
      await new Promise((r) => setImmediate(r));
      return v;
    });
  });
  try {
    const p = await t.peer();
    p.write('{"cmd":"add","opts":{"a":1,"b":2}}\n{"cmd":"later","opts":{"v":"x"}}\n{"cmd":"add","opts":{"a":3,"b":4}}\n');
    assert.deepEqual(await p.lines(3), [
      { status: true, response: 3 },
      { status: true, response: 'x' },
      { status: true, response: 7 },
    ]);
  } finally {
    await t.close();
  }
});

test('invalid JSON, invalid requests, oversize lines and unknown commands get error replies; the connection goes on', async () => {
  const t = await setup((s) => s.command('ping', () => 'pong'), { maxLineLength: 100 });
  try {
    const p = await t.peer();
    p.write('{"cmd": oops}\n');
    p.write('[1]\n{"cmd":5}\n');
    p.write('{"cmd":"' + 'x'.repeat(300) + '"}\n{"cmd":"ping"}\n');
    p.write('{"cmd":"nope","opts":{}}\n{"cmd":"ping"}\n');
    const replies = await p.lines(7);
    assert.deepEqual(replies[0], { status: false, message: SYNTAX_ERROR_MESSAGE });
    assert.equal((replies[1] as { status: boolean }).status, false);
    assert.equal((replies[2] as { status: boolean }).status, false);
    assert.deepEqual(replies[3], { status: false, message: 'request line too long, over 100 bytes' });
    assert.deepEqual(replies[4], { status: true, response: 'pong' });
    assert.deepEqual(replies[5], { status: false, message: "unknown command 'nope'" });
    assert.deepEqual(replies[6], { status: true, response: 'pong' });
  } finally {
    await t.close();
  }
});

test('an oversize line arriving in pieces is discarded without buffering it all', async () => {
  const t = await setup((s) => s.command('ping', () => 'pong'), { maxLineLength: 1000 });
  try {
    const p = await t.peer();
    for (let i = 0; i < 50; i++) p.write('y'.repeat(10_000));
    p.write('\n{"cmd":"ping"}\n');
    assert.deepEqual(await p.lines(2), [
      { status: false, message: 'request line too long, over 1000 bytes' },
      { status: true, response: 'pong' },
    ]);
    for (const c of t.server.connections) assert.ok(c.session.bufferedBytes < 2000);
  } finally {
    await t.close();
  }
});

test('handler exceptions: CommandError message goes out, anything else is "internal error" and logged', async () => {
  const t = await setup((s) => {
    s.command('fail', () => {
      throw new CommandError('container not found');
    });
    s.command('crash', () => {
      throw new TypeError('boom');
    });
    s.command('crash-async', async () => {
      await Promise.resolve();
      throw new RangeError('async boom');
    });
    s.command('bigint', () => 10n);
    s.command('ping', () => 'pong');
  });
  try {
    const p = await t.peer();
    p.write('{"cmd":"fail"}\n{"cmd":"crash"}\n{"cmd":"crash-async"}\n{"cmd":"bigint"}\n{"cmd":"ping"}\n');
    assert.deepEqual(await p.lines(5), [
      { status: false, message: 'container not found' },
      { status: false, message: INTERNAL_ERROR_MESSAGE },
      { status: false, message: INTERNAL_ERROR_MESSAGE },
      { status: false, message: INTERNAL_ERROR_MESSAGE },
      { status: true, response: 'pong' },
    ]);
    assert.equal(t.logger.errors.length, 3);
    assert.match(String((t.logger.errors[0]!.err as Error).stack), /TypeError: boom/);
    assert.match(t.logger.errors[1]!.message, /crash-async/);
  } finally {
    await t.close();
  }
});

test('progress updates come before the final reply', async () => {
  const t = await setup((s) =>
    s.command('build', async (_o, ctx) => {
      for (let i = 1; i <= 3; i++) {
        ctx.progress(`step ${i}`);
        await new Promise((r) => setImmediate(r));
      }
      return 'built';
    }),
  );
  try {
    const p = await t.peer();
    p.write('{"cmd":"build","opts":{}}\n');
    assert.deepEqual(await p.lines(4), [
      { status: true, progress: 'step 1' },
      { status: true, progress: 'step 2' },
      { status: true, progress: 'step 3' },
      { status: true, response: 'built' },
    ]);
  } finally {
    await t.close();
  }
});

test('client disconnect during a long command fires its AbortSignal; queued commands are dropped', async () => {
  let aborted: ((reason: unknown) => void) | undefined;
  const abortedP = new Promise<unknown>((r) => (aborted = r));
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  let ran = 0;
  const t = await setup((s) => {
    s.command('wait', (_o, ctx: CommandContext) => {
      started();
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => {
          aborted!(ctx.signal.reason);
          reject(ctx.signal.reason);
        });
      });
    });
    s.command('after', () => ran++);
  });
  try {
    const p = await t.peer();
    p.write('{"cmd":"wait"}\n{"cmd":"after"}\n');
    await startedP;
    p.close();
    const reason = await abortedP;
    assert.equal((reason as { code: string }).code, 'WK_CONNECTION_CLOSED');
    for (const c of [...t.server.connections]) await c.closed;
    assert.equal(ran, 0);
    assert.equal(t.logger.errors.length, 0, 'an aborted command is not an internal error');
  } finally {
    await t.close();
  }
});

test('onEnd "serve": commands received before a half-close are still served', async () => {
  const t = await setup((s) => s.command('echo', (o: unknown) => o), { onEnd: 'serve' });
  try {
    const p = await t.peer();
    p.socket.end('{"cmd":"echo","opts":1}\n{"cmd":"echo","opts":2}\n');
    assert.deepEqual(await p.lines(2), [
      { status: true, response: 1 },
      { status: true, response: 2 },
    ]);
    await p.waitEnd();
  } finally {
    await t.close();
  }
});

test('onEnd "serve": a last request without its newline is answered (as osctld does)', async () => {
  const t = await setup((s) => s.command('echo', (o: unknown) => o), { onEnd: 'serve' });
  try {
    const p = await t.peer();
    p.socket.end('{"cmd":"echo","opts":1}\n{"cmd":"echo","opts":2}');
    assert.deepEqual(await p.lines(2), [
      { status: true, response: 1 },
      { status: true, response: 2 },
    ]);
    await p.waitEnd();
    // Alone, and an unterminated bad line gets its error reply.
    const q = await t.peer();
    q.socket.end('{"cmd":"echo","opts":3}');
    assert.deepEqual(await q.lines(1), [{ status: true, response: 3 }]);
    await q.waitEnd();
    const r = await t.peer();
    r.socket.end('{"cmd":');
    assert.equal(((await r.lines(1))[0] as { status: boolean }).status, false);
    await r.waitEnd();
  } finally {
    await t.close();
  }
});

test('hijack after a reply, with data in flight in both directions', async () => {
  let hijacked!: (s: Duplex) => void;
  const hijackedP = new Promise<Duplex>((r) => (hijacked = r));
  const t = await setup((s) =>
    s.command('console', async (_o, ctx) => {
      ctx.progress('attaching');
      await ctx.reply('continue');
      const raw = ctx.hijack();
      // Server output written right away, together with the reply in the same flush.
      raw.write('SERVER-HELLO\n');
      hijacked(raw);
    }),
  );
  try {
    const p = await t.peer();
    // The client sends the command and raw bytes in one write, before seeing the reply.
    p.write(Buffer.from('{"cmd":"console"}\n{"keys":"aGk="}\nRAW\x00\xff{"cmd":"console"}\n', 'latin1'));
    assert.deepEqual(await p.lines(2), [
      { status: true, progress: 'attaching' },
      { status: true, response: 'continue' },
    ]);
    assert.equal(await p.raw('SERVER-HELLO\n'.length), 'SERVER-HELLO\n');
    const raw = await hijackedP;
    raw.on('error', () => {});
    const got: Buffer[] = [];
    const expected = Buffer.from('{"keys":"aGk="}\nRAW\x00\xff{"cmd":"console"}\nLIVE', 'latin1');
    const all = new Promise<void>((resolve) =>
      raw.on('data', (d: Buffer) => {
        got.push(d);
        if (Buffer.concat(got).length >= expected.length) resolve();
      }),
    );
    p.write(Buffer.from('LIVE'));
    await all;
    assert.deepEqual(Buffer.concat(got), expected);
    assert.equal(t.server.connections.size, 0, 'a hijacked connection is no longer served');
    raw.write('BYE');
    assert.equal(await p.raw(3), 'BYE');
    raw.destroy();
  } finally {
    await t.close();
  }
});

test('hijack instead of a reply (osctld :handled); leftovers reach the handler even after EOF', async () => {
  let hijacked!: (s: Duplex) => void;
  const hijackedP = new Promise<Duplex>((r) => (hijacked = r));
  const t = await setup(
    (s) =>
      s.command('exec', async (_o, ctx) => {
        // Hijack once the client's end of input has arrived.
        const stream = ctx.connection.stream;
        if (!stream.readableEnded) await new Promise((r) => stream.once('end', r));
        hijacked(ctx.hijack());
      }),
    { onEnd: 'serve' },
  );
  try {
    const p = await t.peer();
    p.socket.end('{"cmd":"exec"}\nstdin-data');
    const raw = await hijackedP;
    const chunks: Buffer[] = [];
    // Not `for await`: it would destroy the stream (and the socket behind it) at the end.
    await new Promise<void>((resolve) => {
      raw.on('data', (c: Buffer) => chunks.push(c));
      raw.on('end', resolve);
    });
    assert.equal(Buffer.concat(chunks).toString(), 'stdin-data');
    raw.end('done');
    assert.equal(await p.raw(4), 'done');
    raw.destroy();
  } finally {
    await t.close();
  }
});

test('event stream: reply, then events until the client goes away', async () => {
  let stopped!: () => void;
  const stoppedP = new Promise<void>((r) => (stopped = r));
  const t = await setup((s) =>
    s.command('events', async (_o, ctx) => {
      await ctx.reply('subscribed');
      let n = 0;
      try {
        while (!ctx.signal.aborted) {
          await ctx.send({ n: n++ });
          await new Promise((r) => setTimeout(r, 1));
        }
      } catch {
        // send() rejects once the client is gone
      }
      stopped();
    }),
  );
  try {
    const p = await t.peer();
    p.write('{"cmd":"events"}\n');
    const got = await p.lines(4);
    assert.deepEqual(got, [
      { status: true, response: 'subscribed' },
      { status: true, response: { n: 0 } },
      { status: true, response: { n: 1 } },
      { status: true, response: { n: 2 } },
    ]);
    p.close();
    await stoppedP;
  } finally {
    await t.close();
  }
});

test('serve() over an already-accepted stream with leftover bytes and per-connection data', async () => {
  const server = new ControlServer<{ user: string }>({ logger: recordingLogger() });
  server.command('whoami', (_o, ctx) => ctx.connection.data.user);
  const [a, b] = duplexPair();
  const conn = server.serve(a, { leftover: new TextEncoder().encode('{"cmd":"whoami"}\n{"cmd":'), data: { user: 'alice' } });
  const peer = readLines(b);
  b.write('"whoami"}\n');
  assert.deepEqual(await peer.next(2), [
    { status: true, response: 'alice' },
    { status: true, response: 'alice' },
  ]);
  b.end();
  assert.equal(await conn.closed, 'closed');
  await server.close();
});

test('TCP listener on loopback', async () => {
  const server = new ControlServer({ logger: recordingLogger() });
  server.command('ping', () => 'pong');
  const l = await server.listen({ port: 0 });
  try {
    const addr = l.address as net.AddressInfo;
    assert.equal(addr.address, '127.0.0.1');
    const p = await RawPeer.connect({ port: addr.port });
    p.write('{"cmd":"ping"}\n');
    assert.deepEqual(await p.lines(1), [{ status: true, response: 'pong' }]);
    p.close();
  } finally {
    await l.close();
    await server.close();
  }
});

test('a client that pipelines without reading is throttled (bounded buffering)', async () => {
  const t = await setup((s) => s.command('big', () => 'z'.repeat(16 * 1024)), { highWaterMark: 64 * 1024 });
  // Watch every write of the server: the largest write buffer seen, and the first write refused.
  let maxBuffered = 0;
  let blocked!: () => void;
  const blockedP = new Promise<void>((r) => (blocked = r));
  const serve = t.server.serve.bind(t.server);
  t.server.serve = (stream, options) => {
    const write = stream.write.bind(stream) as (chunk: unknown) => boolean;
    (stream as { write: (chunk: unknown) => boolean }).write = (chunk: unknown) => {
      const ok = write(chunk);
      maxBuffered = Math.max(maxBuffered, stream.writableLength);
      if (!ok) blocked();
      return ok;
    };
    return serve(stream, options);
  };
  try {
    const s = await RawPeerSocket(t);
    s.pause();
    s.write('{"cmd":"big"}\n'.repeat(1000));
    await blockedP; // the server met backpressure while the client does not read
    let lines = 0;
    await new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => {
        for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
        if (lines >= 1000) resolve();
      });
      s.resume();
    });
    assert.ok(lines >= 1000, 'every reply arrives once the client reads');
    assert.ok(maxBuffered < 1024 * 1024, `server write buffer reached ${maxBuffered}`);
    s.destroy();
  } finally {
    await t.close();
  }
});

async function RawPeerSocket(t: { server: ControlServer }): Promise<net.Socket> {
  void t;
  const p = await RawPeer.connect({ path: lastPath });
  p.socket.removeAllListeners('data');
  p.socket.on('error', () => {});
  return p.socket;
}

/** Two connected in-memory duplex streams. */
function duplexPair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  return [Duplex.from({ readable: ba, writable: ab }), Duplex.from({ readable: ab, writable: ba })];
}

function readLines(s: Duplex) {
  let buf = '';
  const waiters: Array<() => void> = [];
  s.on('data', (d: Buffer) => {
    buf += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  return {
    async next(n: number): Promise<unknown[]> {
      while (buf.split('\n').length - 1 < n) await new Promise<void>((r) => waiters.push(r));
      const parts = buf.split('\n');
      buf = parts.slice(n).join('\n');
      return parts.slice(0, n).map((l) => JSON.parse(l));
    },
  };
}

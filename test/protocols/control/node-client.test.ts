import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import {
  ControlServer,
  ControlClient,
  CommandError,
  RemoteCommandError,
  VersionMismatchError,
  AddressInUseError,
  ControlStateError,
  consoleClient,
  serveConsole,
  satisfiesVersion,
} from '../../../src/protocols/control/node.js';
import { ConnectionClosedError, TimeoutError, AbortedError } from '../../../src/errors.js';
import { recordingLogger, tmpSocketPath } from './helpers.js';

async function withServer(configure: (s: ControlServer) => void, fn: (path: string, server: ControlServer) => Promise<void>, version = '1.4.2') {
  const server = new ControlServer({ version, logger: recordingLogger() });
  configure(server);
  const tmp = tmpSocketPath();
  const l = await server.listen({ path: tmp.path });
  try {
    await fn(tmp.path, server);
  } finally {
    await l.close();
    await server.close();
    tmp.cleanup();
  }
}

test('call: responses, typed remote errors, progress callback and async iterable, pipelining', async () => {
  await withServer(
    (s) => {
      s.command('double', ({ n }: { n: number }) => n * 2);
      s.command('fail', () => {
        throw new CommandError('no such thing');
      });
      s.command('steps', async (_o, ctx) => {
        for (let i = 0; i < 3; i++) {
          ctx.progress({ step: i });
          await new Promise((r) => setImmediate(r));
        }
        return 'done';
      });
    },
    async (path) => {
      const c = await ControlClient.connect(path, { requireVersion: '>=1.2 <2' });
      assert.equal(c.version, '1.4.2');
      const results = await Promise.all(Array.from({ length: 200 }, (_, n) => c.call<number>('double', { n })));
      assert.deepEqual(results, Array.from({ length: 200 }, (_, n) => n * 2));
      const err = await c.call('fail').catch((e: unknown) => e);
      assert.ok(err instanceof RemoteCommandError);
      assert.equal(err.serverMessage, 'no such thing');
      assert.equal(err.command, 'fail');
      const seen: unknown[] = [];
      assert.equal(await c.call('steps', {}, { onProgress: (m) => seen.push(m) }), 'done');
      assert.deepEqual(seen, [{ step: 0 }, { step: 1 }, { step: 2 }]);
      const call = c.start('steps');
      const iterated: unknown[] = [];
      for await (const m of call.progress) iterated.push(m);
      assert.deepEqual(iterated, seen);
      assert.equal(await call.response, 'done');
      c.close();
    },
  );
});

test('version requirement: mismatch closes with a clear error', async () => {
  await withServer(
    () => {},
    async (path) => {
      await assert.rejects(ControlClient.connect(path, { requireVersion: '^2.0.0' }), (e: unknown) => e instanceof VersionMismatchError && /1\.4\.2.*\^2\.0\.0/.test(e.message));
      await assert.rejects(ControlClient.connect(path, { requireVersion: (v) => v === '0.1' }), VersionMismatchError);
    },
  );
  assert.ok(satisfiesVersion('1.4.2', '1.x'));
  assert.ok(satisfiesVersion('1.4.2', '~1.4.0'));
  assert.ok(!satisfiesVersion('1.5.0', '~1.4.0'));
  assert.ok(satisfiesVersion('0.2.5', '^0.2.1'));
  assert.ok(!satisfiesVersion('0.3.0', '^0.2.1'));
  assert.ok(satisfiesVersion('3.0.0', '<2 || >=3'));
  assert.ok(!satisfiesVersion('2.0.0-rc1', '>=2.0.0'));
});

test('a closed connection rejects every pending call at once', async () => {
  let started!: () => void;
  const startedP = new Promise<void>((r) => (started = r));
  await withServer(
    (s) => {
      s.command('hang', () => {
        started();
        return new Promise(() => {});
      });
    },
    async (path, server) => {
      const c = await ControlClient.connect(path);
      const calls = [c.call('hang'), c.call('hang'), c.call('hang')].map((p) => p.catch((e: unknown) => e));
      await startedP;
      for (const conn of server.connections) conn.close();
      const errs = await Promise.all(calls);
      for (const e of errs) assert.ok(e instanceof ConnectionClosedError, String(e));
      await assert.rejects(c.call('hang'), ConnectionClosedError);
    },
  );
});

test('timeouts and abort signals; an abandoned call keeps the reply order', async () => {
  await withServer(
    (s) => {
      s.command('slow', async ({ v }: { v: number }) => {
        await new Promise((r) => setTimeout(r, 50));
        return v;
      });
      s.command('fast', ({ v }: { v: number }) => v);
    },
    async (path) => {
      const c = await ControlClient.connect(path);
      const slow = c.call('slow', { v: 1 }, { timeout: 5 });
      const fast = c.call('fast', { v: 2 });
      await assert.rejects(slow, TimeoutError);
      assert.equal(await fast, 2, 'the late reply of the abandoned call is not given to the next one');
      const ac = new AbortController();
      const aborted = c.call('slow', { v: 3 }, { signal: ac.signal });
      ac.abort();
      await assert.rejects(aborted, AbortedError);
      assert.equal(await c.call('fast', { v: 4 }), 4);
      c.close();
    },
  );
  // Connecting to nothing fails promptly.
  const tmp = tmpSocketPath();
  await assert.rejects(ControlClient.connect(tmp.path, { timeout: 1000 }));
  tmp.cleanup();
});

test('client hijack: bytes in the same read as the reply come first, then live bytes; console helpers', async () => {
  await withServer(
    (s) => {
      s.command('console', async (_o, ctx) => {
        // Reply and the first terminal output leave in one write.
        ctx.connection.session.respond('continue');
        const raw = ctx.hijack();
        raw.on('error', () => {});
        raw.write('PROMPT$ ');
        const con = serveConsole(raw, {
          keys: async (data) => {
            await con.write(new TextEncoder().encode(`echo:${new TextDecoder().decode(data)};`));
          },
          resize: async (rows, cols) => {
            await con.write(new TextEncoder().encode(`size:${rows}x${cols};`));
          },
        });
        await con.done;
        raw.end();
        // The handler owns the stream now; its return value is ignored.
      });
    },
    async (path) => {
      const c = await ControlClient.connect(path);
      await assert.rejects(c.call('nope'), RemoteCommandError);
      const { response, stream } = await c.hijack('console', { id: 'ct1' });
      assert.equal(response, 'continue');
      await assert.rejects(c.call('x'), ControlStateError);
      const con = consoleClient(stream);
      let out = '';
      const done = new Promise<void>((resolve) => {
        stream.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('size:')) resolve();
        });
      });
      await con.keys('ls');
      await con.resize(24, 80);
      await done;
      assert.equal(out, 'PROMPT$ echo:ls;size:24x80;');
      stream.destroy();
    },
  );
});

test('subscribe: events until the client closes', async () => {
  let gone!: () => void;
  const goneP = new Promise<void>((r) => (gone = r));
  await withServer(
    (s) => {
      s.command('events', async (_o, ctx) => {
        await ctx.reply({ subscribed: true });
        ctx.signal.addEventListener('abort', () => gone());
        for (let i = 0; i < 1000 && !ctx.signal.aborted; i++) {
          await ctx.send({ i }).catch(() => {});
          await new Promise((r) => setImmediate(r));
        }
      });
    },
    async (path) => {
      const c = await ControlClient.connect(path);
      const sub = await c.subscribe('events');
      assert.deepEqual(sub.response, { subscribed: true });
      const got: unknown[] = [];
      for await (const ev of sub) {
        got.push(ev);
        if (got.length === 3) break;
      }
      assert.deepEqual(got, [{ i: 0 }, { i: 1 }, { i: 2 }]);
      sub.close();
      await goneP;
    },
  );
});

test('subscribe: leaving the loop early closes the connection (the handler sees its signal)', async () => {
  let gone!: () => void;
  const goneP = new Promise<void>((r) => (gone = r));
  await withServer(
    (s) => {
      s.command('events', async (_o, ctx) => {
        await ctx.reply(true);
        ctx.signal.addEventListener('abort', () => gone());
        for (let i = 0; !ctx.signal.aborted; i++) {
          await ctx.send({ i }).catch(() => {});
          await new Promise((r) => setImmediate(r));
        }
      });
    },
    async (path) => {
      const c = await ControlClient.connect(path);
      const sub = await c.subscribe<{ i: number }>('events');
      for await (const ev of sub) if (ev.i === 2) break;
      await goneP; // without sub.close(): the loop's end unsubscribed
    },
  );
});

test('listen: socket is 0600, a live socket is refused, a stale one replaced, a non-socket kept', async () => {
  const tmp = tmpSocketPath();
  try {
    const a = new ControlServer({ logger: recordingLogger() });
    const la = await a.listen({ path: tmp.path });
    assert.equal(fs.statSync(tmp.path).mode & 0o777, 0o600);
    const b = new ControlServer({ logger: recordingLogger() });
    await assert.rejects(b.listen({ path: tmp.path }), AddressInUseError);
    assert.ok(fs.existsSync(tmp.path), 'the live server keeps its socket');
    await la.close();
    assert.ok(!fs.existsSync(tmp.path), 'close removes the socket file');
    // A stale socket: bound by a process that exited without removing it.
    execFileSync('/usr/bin/python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', tmp.path]);
    assert.ok(fs.lstatSync(tmp.path).isSocket());
    const lb = await b.listen({ path: tmp.path });
    await new Promise<void>((resolve, reject) => net.connect({ path: tmp.path }).once('connect', function (this: net.Socket) { this.destroy(); resolve(); }).once('error', reject));
    await lb.close();
    fs.writeFileSync(tmp.path, 'not a socket');
    await assert.rejects(b.listen({ path: tmp.path }), AddressInUseError);
    assert.equal(fs.readFileSync(tmp.path, 'utf8'), 'not a socket');
    assert.deepEqual(fs.readdirSync(tmp.dir).filter((f) => f.startsWith('.wirekit-')), [], 'no temporary directory left');
    await a.close();
    await b.close();
  } finally {
    tmp.cleanup();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ControlServer,
  ControlClient,
  CommandError,
  RemoteCommandError,
  consoleClient,
  serveConsole,
} from '../../../src/protocols/control/node.js';
import { recordingLogger, tmpSocketPath } from './helpers.js';
import { PEERS, skipWithout } from '../../helpers/peers.js';

// Compiled to dist/ or .build/<name>/: the peers stay in the source tree, found by walking up.
function findPeers(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'test/peers/control/server.rb');
    if (fs.existsSync(candidate)) return path.dirname(candidate);
    const up = path.dirname(dir);
    if (up === dir) throw new Error('test/peers/control not found');
    dir = up;
  }
}
const peers = findPeers();
const RUBY = 'ruby';

test('wirekit client against the Ruby server: greeting, progress, errors, pipelining, console hijack', { skip: skipWithout(PEERS.ruby) }, async () => {
  const tmp = tmpSocketPath();
  const child = spawn(RUBY, [path.join(peers, 'server.rb'), tmp.path], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('READY') && resolve());
      child.once('exit', (code) => reject(new Error(`ruby server exited with ${code}`)));
    });
    const c = await ControlClient.connect(tmp.path, { requireVersion: '^2.3', timeout: 5000 });
    assert.equal(c.version, '2.3.4');
    assert.deepEqual(await c.call('echo', { text: 'héllo', list: [1, { a: null }] }), { text: 'héllo', list: [1, { a: null }] });
    const progress: unknown[] = [];
    assert.equal(await c.call('progress', { n: 4 }, { onProgress: (m) => progress.push(m) }), 'finished');
    assert.deepEqual(progress, ['step 1', 'step 2', 'step 3', 'step 4']);
    const err = await c.call('fail').catch((e: unknown) => e);
    assert.ok(err instanceof RemoteCommandError && err.serverMessage === 'container not found');
    assert.deepEqual(await Promise.all([c.call('echo', 1), c.call('echo', 2), c.call('echo', 3)]), [1, 2, 3]);
    const { response, stream } = await c.hijack('console', { id: 'ct' });
    assert.equal(response, 'continue');
    const con = consoleClient(stream);
    let out = '';
    const done = new Promise<void>((resolve) =>
      stream.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('size:')) resolve();
      }),
    );
    await con.keys('ls -l');
    await con.resize(40, 132);
    await done;
    // 'PROMPT$ ' was written right after the reply line: it must not be lost.
    assert.equal(out, 'PROMPT$ echo:ls -l;size:40x132;');
    stream.destroy();
  } finally {
    child.kill();
    tmp.cleanup();
  }
});

test('Ruby client against the wirekit server: greeting, progress, errors, pipelining, console hijack with data in flight', { skip: skipWithout(PEERS.ruby) }, async () => {
  const server = new ControlServer({ version: '2.3.4', logger: recordingLogger() });
  server.command('echo', (opts: unknown) => opts);
  server.command('progress', async ({ n }: { n: number }, ctx) => {
    for (let i = 1; i <= n; i++) {
      ctx.progress(`step ${i}`);
      await new Promise((r) => setImmediate(r));
    }
    return 'finished';
  });
  server.command('fail', () => {
    throw new CommandError('container not found');
  });
  server.command('console', async (_o, ctx) => {
    // Reply and first terminal output in one write, as a hurried server would.
    ctx.connection.session.respond('continue');
    const raw = ctx.hijack();
    raw.on('error', () => {});
    raw.write('PROMPT$ ');
    const con = serveConsole(raw, {
      keys: (data) => con.write(new TextEncoder().encode(`echo:${new TextDecoder().decode(data)};`)),
      resize: (rows, cols) => con.write(new TextEncoder().encode(`size:${rows}x${cols};`)),
    });
    await con.done;
    raw.destroy();
  });
  const tmp = tmpSocketPath();
  const l = await server.listen({ path: tmp.path });
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = execFile(RUBY, [path.join(peers, 'client.rb'), tmp.path], { timeout: 20_000 }, (err, out, errOut) => {
        if (err) reject(new Error(`${err.message}\n${errOut}`));
        else resolve(out);
      });
      void child;
    });
    const seen = JSON.parse(stdout);
    assert.deepEqual(seen.greeting, { version: '2.3.4' });
    assert.deepEqual(seen.echo, { reply: { status: true, response: { text: 'héllo', n: [1, 2] } }, progress: [] });
    assert.deepEqual(seen.progress, { reply: { status: true, response: 'finished' }, progress: ['step 1', 'step 2', 'step 3'] });
    assert.deepEqual(seen.unknown.reply, { status: false, message: "unknown command 'no-such-command'" });
    assert.deepEqual(
      seen.pipelined.map((p: { reply: unknown }) => p.reply),
      [
        { status: true, response: 1 },
        { status: true, response: 2 },
      ],
    );
    assert.deepEqual(seen.console.reply, { status: true, response: 'continue' });
    // The keys line sent together with the command reached the console (leftover bytes).
    assert.equal(seen.console_output, 'PROMPT$ echo:ls;size:24x80;');
  } finally {
    await l.close();
    await server.close();
    tmp.cleanup();
  }
});

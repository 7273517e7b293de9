import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import {
  FrameClient,
  FrameHttpClient,
  FrameHttpServer,
  FrameSocketServer,
  commandFrames,
  encodeFrame,
  type CommandHandler,
} from '../../../src/protocols/frames/node.js';
import { repoRoot } from '../../helpers/paths.js';

// Compiled to dist/ or .build/<name>/; the peer stays in the source tree.
const root = repoRoot();
const PEER = path.join(root, 'test', 'peers', 'frames', 'peer.py');
const PYTHON = process.env.PYTHON ?? 'python3';
const td = new TextDecoder();
const te = new TextEncoder();

const handler: CommandHandler = (cmd) => {
  switch (cmd.name) {
    case 'echo':
      return cmd.args.value ?? '';
    case 'args':
      return Object.keys(cmd.args)
        .sort()
        .map((k) => `${k}=${td.decode(cmd.args[k])}`)
        .join(',');
    case 'len':
      return String(cmd.data?.length ?? 0);
    case 'big':
      return new Uint8Array(70000).fill(0x7a);
    case 'fail':
      throw new Error('python says no');
    default:
      throw new Error(`unknown command ${cmd.name}`);
  }
};

const EXPECTED = [
  { ok: true, len: 17, text: 'hello from python' },
  { ok: true, len: 20, text: 'alpha=2,mid=3,zeta=1' },
  { ok: true, len: 6, text: '131072' },
  { ok: true, len: 1, text: '0' },
  { ok: false, kind: 'application', message: 'python says no' },
  { ok: true, len: 70000, text: 'z'.repeat(64) },
];

function runPeer(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [PEER, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function startPeer(mode: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(PYTHON, [PEER, mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, port: Number(line.toString().trim()) };
}

async function stopPeer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.stdin!.end();
  const t = setTimeout(() => child.kill(), 2000);
  await once(child, 'exit');
  clearTimeout(t);
}

test('python peer: request frames built independently are byte-identical', async () => {
  const requests: { name: string; args?: Record<string, string>; data?: string }[] = [
    { name: 'heads' },
    { name: 'known', args: { nodes: 'abc', b: '', a: 'x' } },
    { name: 'unbundle', args: { heads: 'h' }, data: Buffer.alloc(32768 * 2, 5).toString('hex') },
    { name: 'push', data: Buffer.from('some data').toString('hex') },
    { name: 'empty', data: '' },
  ];
  const lines = (await runPeer(['build'], JSON.stringify(requests))).trim().split('\n');
  const ours: string[] = [];
  for (const r of requests) {
    for (const f of commandFrames(r.name, r.args, r.data === undefined ? undefined : Buffer.from(r.data, 'hex'))) ours.push(Buffer.from(encodeFrame(f)).toString('hex'));
  }
  assert.deepEqual(ours, lines);
});

test('python client against the TypeScript socket server', async () => {
  const server = new FrameSocketServer(handler);
  const { port } = (await server.listen({ host: '127.0.0.1', port: 0 })) as net.AddressInfo;
  try {
    assert.deepEqual(JSON.parse(await runPeer(['client-socket', String(port)])), EXPECTED);
  } finally {
    await server.close();
  }
});

test('python client against the TypeScript HTTP server', async () => {
  const server = new FrameHttpServer(handler);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    assert.deepEqual(JSON.parse(await runPeer(['client-http', `http://127.0.0.1:${port}/frames`])), EXPECTED);
  } finally {
    await server.close();
  }
});

test('TypeScript socket client against the python server', async () => {
  const { child, port } = await startPeer('server-socket');
  try {
    const client = await FrameClient.connect({ host: '127.0.0.1', port }, { timeout: 5000 });
    assert.equal(td.decode(await client.call('echo', { value: 'hi' }, { timeout: 5000 })), 'hi');
    assert.equal(td.decode(await client.call('args', { z: '1', a: '2' })), 'a=2,z=1');
    assert.equal(td.decode(await client.call('len', {}, { data: new Uint8Array(100_000) })), '100000');
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield new Uint8Array(10_000);
    }
    assert.equal(td.decode(await client.call('len', {}, { data: chunks() })), '100000');
    assert.equal((await client.call('big')).length, 70000);
    await assert.rejects(client.call('fail'), { kind: 'application', serverMessage: 'python says no' });
    // Argument continuation, understood by the peer.
    assert.equal(td.decode(await client.call('echo', { value: 'v'.repeat(50000) })).length, 50000);
    await client.end();
  } finally {
    await stopPeer(child);
  }
});

test('TypeScript HTTP client against the python server', async () => {
  const { child, port } = await startPeer('server-http');
  try {
    const client = new FrameHttpClient(`http://127.0.0.1:${port}/frames`);
    const results = await client.batch([{ name: 'echo', args: { value: 'x' } }, { name: 'fail' }, { name: 'len', data: te.encode('abcd') }, { name: 'big' }], { timeout: 5000 });
    assert.deepEqual(results[0], { ok: true, body: te.encode('x') });
    assert.equal(results[1]!.ok, false);
    assert.equal(results[2]!.ok && td.decode(results[2]!.body), '4');
    assert.equal(results[3]!.ok && results[3]!.body.length, 70000);
  } finally {
    await stopPeer(child);
  }
});

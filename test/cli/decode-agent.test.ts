/**
 * `wirekit decode -c agent` on real captures of wirekit's own agent traffic (through the built
 * CLI, recorded by a proxy in front of the daemon): control lines, then the session frames or file
 * bytes the session command switched to, from byte 0 in both directions; text as text; JSON
 * output names frame types as the text output does.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MAIN, cliRunner, waitLine } from '../helpers/cli.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-decode-agent-')));
const sock = path.join(dir, 'agent.sock');
const proxySock = path.join(dir, 'proxy.sock');
const children = new Set<ChildProcess>();
const cli = cliRunner(() => ({ ...process.env, WIREKIT_ADDRESS: `unix:${proxySock}`, WIREKIT_TOKEN: '' }), children);
let proxy: net.Server;
/** Per proxied connection: bytes client to daemon, daemon to client. */
const captures: { up: Buffer[]; down: Buffer[] }[] = [];

before(async () => {
  const daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`, '--root', dir], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WIREKIT_TOKEN: '' } });
  children.add(daemon);
  await waitLine(daemon.stderr!, /listening on/);
  proxy = net.createServer((c) => {
    const cap = { up: [] as Buffer[], down: [] as Buffer[] };
    captures.push(cap);
    const d = net.connect(sock);
    c.on('data', (b: Buffer) => (cap.up.push(b), d.write(b)));
    d.on('data', (b: Buffer) => (cap.down.push(b), c.write(b)));
    c.on('end', () => d.end());
    d.on('end', () => c.end());
    c.on('error', () => d.destroy());
    d.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => proxy.listen(proxySock, r));
});

after(() => {
  proxy?.close();
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a command through the proxy and returns its connection's two captures as files. */
async function capture(args: string[], input = '', code = 0): Promise<{ up: string; down: string }> {
  const first = captures.length;
  const r = await cli(args, { input });
  assert.equal(r.code, code, r.stderr);
  assert.equal(captures.length, first + 1);
  await new Promise((res) => setTimeout(res, 100)); // the proxy's last bytes
  const cap = captures[first]!;
  const up = path.join(dir, `up-${first}.bin`);
  const down = path.join(dir, `down-${first}.bin`);
  writeFileSync(up, Buffer.concat(cap.up));
  writeFileSync(down, Buffer.concat(cap.down));
  return { up, down };
}

async function decode(file: string, json = false): Promise<string[]> {
  const r = await cli(['decode', '-c', 'agent', ...(json ? ['--json'] : []), file]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString().trimEnd().split('\n');
}

test('an exec capture decodes from byte 0: control lines, then session frames, both directions', async () => {
  const { up, down } = await capture(['exec', '--', 'sh', '-c', 'cat; echo err >&2; exit 3'], 'hello\n', 3);
  const u = await decode(up);
  const execAt = u.findIndex((l) => /^#\d+ control \{"cmd":"exec"/.test(l));
  assert.ok(execAt >= 0, u.join('\n'));
  assert.ok(u.slice(0, execAt).every((l) => / control \{/.test(l)), u.join('\n'));
  assert.ok(u.slice(execAt + 1).some((l) => /^#\d+ DATA 6 B "hello\\x0a"$/.test(l)), u.join('\n'));
  assert.ok(u.slice(execAt + 1).some((l) => /^#\d+ EOF 0 B ""$/.test(l)), u.join('\n'));

  const d = await decode(down);
  assert.match(d[0]!, /^#1 control \{"version":/);
  assert.ok(d.some((l) => /^#\d+ STDOUT 6 B "hello\\x0a"$/.test(l)), d.join('\n'));
  assert.ok(d.some((l) => /^#\d+ STDERR 4 B "err\\x0a"$/.test(l)), d.join('\n'));
  assert.match(d.at(-1)!, /^#\d+ EXIT \d+ B "\{\\x22code\\x22:3/);

  const j = (await decode(down, true)).map((l) => JSON.parse(l) as { n: number; offset: number; frame: { control?: unknown; type?: string; payload?: string } });
  assert.deepEqual(j[0]!.frame.control !== undefined, true);
  assert.equal(j[0]!.offset, 0);
  const types = j.filter((x) => x.frame.type !== undefined).map((x) => x.frame.type);
  assert.ok(types.includes('STDOUT') && types.includes('STDERR') && types.at(-1) === 'EXIT', JSON.stringify(types));
  const out = j.find((x) => x.frame.type === 'STDOUT')!;
  assert.equal(Buffer.from(out.frame.payload!, 'base64').toString(), 'hello\n');
  // The text output and the JSON output name the same frames.
  assert.deepEqual(d.map((l) => / (STDOUT|STDERR|EXIT|DATA|EOF|PING|PONG) /.exec(l)?.[1]).filter(Boolean), types);
});

test('an upload capture: the request line, the file bytes and digest, then control lines again', async () => {
  const src = path.join(dir, 'data.txt');
  writeFileSync(src, 'x'.repeat(1000));
  const { up, down } = await capture(['cp', '--no-progress', src, ':copy.txt']);
  const u = await decode(up);
  const at = u.findIndex((l) => /control \{"cmd":"upload"/.test(l));
  assert.ok(at >= 0, u.join('\n'));
  const files = u.slice(at + 1).filter((l) => / file /.test(l));
  const bytes = files.reduce((n, l) => n + Number(/ file (\d+) B/.exec(l)![1]), 0);
  assert.equal(bytes, 1000 + 32, u.join('\n'));
  assert.ok(u.slice(at + 1).every((l) => / (file|control) /.test(l)), u.join('\n'));
  const d = await decode(down);
  assert.ok(d.every((l) => / control \{/.test(l)), d.join('\n'));
});

test('a download capture: the reply announces the size, the file bytes follow', async () => {
  writeFileSync(path.join(dir, 'get.txt'), 'y'.repeat(3000));
  const { down } = await capture(['cp', '--no-progress', ':get.txt', path.join(dir, 'got.txt')]);
  const d = await decode(down);
  const at = d.findIndex((l) => /control \{"status":true,"response":\{"path":.*"size":3000/.test(l));
  assert.ok(at >= 0, d.join('\n'));
  const bytes = d.slice(at + 1).filter((l) => / file /.test(l)).reduce((n, l) => n + Number(/ file (\d+) B/.exec(l)![1]), 0);
  assert.equal(bytes, 3000 + 32, d.join('\n'));
});

test('text carried as text prints as text (lines, %base64$), in JSON as {"text"}', async () => {
  const p = await cli(['decode', '-c', 'percent-dollar'], { input: `%${Buffer.from('héllo wörld').toString('base64')}$%AAE=$` });
  assert.equal(p.stdout.toString(), '#1 "héllo wörld"\n#2 2 B "\\x00\\x01"\n');
  const l = await cli(['decode', '-c', 'lines', '--json'], { input: 'one\ntwo\n' });
  assert.deepEqual(l.stdout.toString().trimEnd().split('\n').map((x) => JSON.parse(x) as unknown), [
    { n: 1, offset: 0, frame: { text: 'one' } },
    { n: 2, offset: 4, frame: { text: 'two' } },
  ]);
});

test('typed-frame: text and JSON name Mercurial frame types alike', async () => {
  const frame = Buffer.from([2, 0, 0, 0x11, 0x68, 0x69]); // command-name, eos, "hi"
  const t = await cli(['decode', '-c', 'typed-frame'], { input: frame });
  assert.match(t.stdout.toString(), /^#1 type=command-name flags=1 2 B "hi"\n$/);
  const j = await cli(['decode', '-c', 'typed-frame', '--json'], { input: frame });
  assert.deepEqual((JSON.parse(j.stdout.toString()) as { frame: unknown }).frame, { fields: { type: 'command-name', flags: 1 }, payload: Buffer.from('hi').toString('base64') });
});

/**
 * The loads of issue 12 (hardening), run by hand against any build, old or new, to give the
 * before/after figures: not part of `bench/run.ts`.
 *
 *   node .build/x/bench/hardening.js [--cli PATH/src/cli/main.js | --build DIR] [--only LOAD] [--repeat N]
 *
 * LOAD is one of
 * - `preauth` (item 16): 1,000 unauthenticated TCP peers against `wirekit serve`, each sending
 *   1,000,000 bytes of an `auth` line that never ends; the daemon's peak RSS.
 * - `ping` (item 17): 1,000,000 PING frames (64-byte payload, 69 MB) written at once in one exec
 *   session of `wirekit serve` (45 s at most), by a client that never reads and by one that reads
 *   and discards; the daemon's peak RSS.
 * - `frames-socket` (item 18): a `FrameSocketServer` client pipelining up to 300 MB of tiny
 *   commands (20 s at most) without reading; the server's peak RSS.
 * - `frames-http` (item 19): one, then four parallel 16 MiB POSTs of 798,000 tiny commands to a
 *   `FrameHttpServer`; the server's peak RSS.
 * - `partfiles` (item 4): `wirekit cp` of a 256 MiB file, upload and download, killed by SIGINT,
 *   SIGTERM and SIGKILL at a random point (N times each), and the daemon SIGKILLed mid-upload and
 *   restarted: the files and bytes left in the destination directories of both sides.
 *
 * It uses only the CLI and the public package exports (`wirekit/agent`, `wirekit/codecs`,
 * `wirekit/protocols/frames/node`) of the build it is given (default: the one it belongs to), so it
 * drives an old revision too. Every load is bounded in count and time, on loopback or a Unix socket
 * in a temporary directory; every process it starts is killed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const LOADS = ['preauth', 'ping', 'frames-socket', 'frames-http', 'partfiles'] as const;
type Load = (typeof LOADS)[number];
type Row = Record<string, string | number | boolean>;

const USAGE = `usage: node .build/x/bench/hardening.js [--cli PATH/src/cli/main.js | --build DIR] [--only ${LOADS.join('|')}] [--repeat N]`;

function parse(argv: string[]): { build: string; cli: string; only: Load[]; repeat: number } {
  let build = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  let cli: string | undefined;
  let only: Load[] = [...LOADS];
  let repeat = 3;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
    i++;
    if (a === '--build') build = path.resolve(v);
    else if (a === '--cli') cli = path.resolve(v);
    else if (a === '--only') {
      only = v.split(',') as Load[];
      for (const l of only) if (!LOADS.includes(l)) throw new Error(`unknown load ${l}\n${USAGE}`);
    } else if (a === '--repeat') repeat = Math.max(1, Number(v) | 0);
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (cli !== undefined && !argv.includes('--build')) build = path.resolve(path.dirname(cli), '../..');
  return { build, cli: cli ?? path.join(build, 'src/cli/main.js'), only, repeat };
}

const opts = parse(process.argv.slice(2));

/** The file of a public export (`./agent`) in the build: package.json's map, `./dist/` → the build. */
function exportFile(sub: string): string {
  const pkgFile = ['.', '..', '../..'].map((up) => path.join(opts.build, up, 'package.json')).find(existsSync);
  if (pkgFile) {
    const exp = (JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports?: Record<string, { default?: string }> }).exports?.[sub]?.default;
    if (exp) return path.join(opts.build, exp.replace(/^\.\/dist\//, ''));
  }
  return path.join(opts.build, 'src', sub.slice(2), 'index.js');
}
// The modules' types differ between revisions: they are used through these few shapes.
const load = (sub: string): Promise<any> => import(pathToFileURL(exportFile(sub)).href);

const children = new Set<ChildProcess>();
const tmpDirs: string[] = [];
function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => process.exit(130));

function tmp(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `wk-hard-${prefix}-`));
  tmpDirs.push(d);
  return d;
}

function start(args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  c.stdout!.resume();
  c.stderr!.resume();
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function exited(c: ChildProcess, ms: number): Promise<boolean> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(true);
  return new Promise((r) => {
    const t = setTimeout(() => r(false), ms);
    c.once('exit', () => (clearTimeout(t), r(true)));
  });
}

async function stop(c: ChildProcess): Promise<void> {
  c.kill('SIGTERM');
  if (!(await exited(c, 5000))) c.kill('SIGKILL');
  await exited(c, 5000);
}

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Polls a connect until it succeeds (the server is up) or `ms` pass. */
async function reachable(target: net.NetConnectOpts, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(target);
      s.once('connect', () => (s.destroy(), r(true)));
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on ${JSON.stringify(target)}`);
    await delay(50);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A daemon of the build under test with a private HOME and state, on a Unix socket or TCP port. */
function daemonEnv(home: string): NodeJS.ProcessEnv {
  return { ...process.env, WIREKIT_TOKEN: 'x'.repeat(32), HOME: home, XDG_RUNTIME_DIR: home, XDG_STATE_HOME: path.join(home, 'state') };
}

// ---- item 16 ----------------------------------------------------------------------------------

async function preauth(): Promise<Row[]> {
  const home = tmp('preauth');
  const port = await freePort();
  const d = start([opts.cli, 'serve', '--listen', `tcp://127.0.0.1:${port}`], daemonEnv(home));
  await reachable({ host: '127.0.0.1', port });
  const startMb = status(d.pid!, 'VmHWM');
  const chunk = Buffer.alloc(1_000_000, 0x78);
  chunk.write('{"cmd":"auth","opts":{"token":"', 0);
  const N = 1000;
  let closed = 0;
  const socks: net.Socket[] = [];
  await Promise.all(
    Array.from(
      { length: N },
      () =>
        new Promise<void>((res) => {
          const s = net.connect(port, '127.0.0.1');
          socks.push(s);
          s.on('error', () => {});
          s.on('data', () => {});
          s.on('close', () => (closed++, res()));
          s.once('connect', () => s.write(chunk, () => res()));
          setTimeout(res, 20_000).unref();
        }),
    ),
  );
  await delay(2000);
  const row = { load: 'preauth', peers: N, 'closed by the daemon': closed, 'daemon start MB': startMb, 'daemon peak MB': status(d.pid!, 'VmHWM') };
  for (const s of socks) s.destroy();
  await stop(d);
  return [row];
}

// ---- item 17 ----------------------------------------------------------------------------------

async function ping(): Promise<Row[]> {
  const { AgentClient, FrameType, sessionCodec } = await load('./agent');
  const { encodeToBytes } = await load('./codecs');
  const rows: Row[] = [];
  for (const reads of [false, true]) {
    const home = tmp('ping');
    const sock = path.join(home, 'agent.sock');
    const d = start([opts.cli, 'serve', '--listen', `unix:${sock}`], daemonEnv(home));
    await reachable({ path: sock });
    const startMb = status(d.pid!, 'VmHWM');
    const client = new AgentClient({ address: `unix:${sock}`, token: 'x'.repeat(32), timeoutMs: 10_000 });
    const conn = await client.connect();
    const { stream } = (await conn.open('exec', { argv: ['sleep', '60'] })) as { stream: import('node:stream').Duplex };
    stream.on('error', () => {});
    let received = 0;
    const raw = conn.socket as net.Socket; // the connection's socket, under the session's stream
    if (reads) stream.on('data', (c: Buffer) => (received += c.length));
    else {
      stream.pause();
      raw.pause();
    }
    const one = encodeToBytes(sessionCodec(), { type: FrameType.PING, payload: new Uint8Array(64) }) as Uint8Array;
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => one));
    const batches = 100;
    for (let i = 0; i < batches; i++) stream.write(batch);
    // Done when everything left this process (the socket's buffer is empty), 45 s at most.
    const until = Date.now() + 45_000;
    while ((raw.writableLength > 0 || stream.writableLength > 0) && Date.now() < until) await delay(100);
    const drained = raw.writableLength === 0 && stream.writableLength === 0;
    await delay(1000);
    rows.push({
      load: 'ping',
      client: reads ? 'reads' : 'never reads',
      pings: batches * 10_000,
      'daemon read them all': drained,
      'MB the client could not send': Math.round(Math.max(raw.writableLength, stream.writableLength) / 1048576),
      'PONG bytes read': received,
      'daemon start MB': startMb,
      'daemon peak MB': status(d.pid!, 'VmHWM'),
    });
    stream.destroy();
    await stop(d);
  }
  return rows;
}

// ---- items 18, 19 -----------------------------------------------------------------------------

/** A frames server of the build in a child process (its RSS is its own); resolves with its port. */
async function framesServer(kind: 'socket' | 'http'): Promise<{ child: ChildProcess; port: number }> {
  const code = `
    const m = await import(process.env.WK_ENTRY);
    const handler = () => 'x'.repeat(100);
    const server = process.env.WK_KIND === 'http'
      ? new m.FrameHttpServer(handler, { maxBodySize: 32 * 1024 * 1024, requestTimeout: 0 })
      : new m.FrameSocketServer(handler);
    const addr = await server.listen({ host: '127.0.0.1', port: 0 });
    console.log(addr.port);`;
  const env = { ...process.env, WK_ENTRY: pathToFileURL(exportFile('./protocols/frames/node')).href, WK_KIND: kind };
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'], env });
  children.add(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    child.once('exit', (c) => reject(new Error(`frames server exited with ${c}`)));
  });
  return { child, port };
}

async function framesCommand(): Promise<Buffer> {
  const m = await load('./protocols/frames/node');
  // 'command-name eos' with a 17-byte name: 21 bytes on the wire.
  return Buffer.from(m.encodeFrames([m.parseFrameNotation('command-name eos ' + 'c'.repeat(17))]) as Uint8Array);
}

async function framesSocket(): Promise<Row[]> {
  const one = await framesCommand();
  const { child, port } = await framesServer('socket');
  const startMb = status(child.pid!, 'VmHWM');
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.pause();
  const block = Buffer.concat(Array.from({ length: 50_000 }, () => one));
  const until = Date.now() + 20_000;
  let queued = 0;
  while (queued < 300 * 1024 * 1024 && Date.now() < until) {
    if (!s.write(block)) await Promise.race([new Promise((r) => s.once('drain', r)), delay(500)]);
    queued += block.length;
  }
  const row = {
    load: 'frames-socket',
    'MB the server took': Math.round((s.bytesWritten - s.writableLength) / 1048576),
    'server start MB': startMb,
    'server peak MB': status(child.pid!, 'VmHWM'),
  };
  s.destroy();
  await stop(child);
  return [row];
}

async function framesHttp(): Promise<Row[]> {
  const one = await framesCommand();
  const n = Math.floor((16 * 1024 * 1024) / one.length);
  const body = Buffer.concat(Array.from({ length: n }, () => one));
  const rows: Row[] = [];
  for (const parallel of [1, 4]) {
    const { child, port } = await framesServer('http');
    const startMb = status(child.pid!, 'VmHWM');
    const post = () =>
      new Promise<string>((resolve) => {
        const req = http.request(
          { host: '127.0.0.1', port, path: '/frames', method: 'POST', headers: { 'content-type': 'application/mercurial-exp-framing-0001', 'content-length': body.length } },
          (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve(`${res.statusCode} (${Math.round(bytes / 1024)} KiB)`));
            res.on('error', () => resolve(`${res.statusCode} (cut)`));
          },
        );
        req.setTimeout(60_000, () => req.destroy());
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        req.end(body);
      });
    const results = await Promise.all(Array.from({ length: parallel }, post));
    await delay(1000);
    rows.push({
      load: 'frames-http',
      POSTs: parallel,
      'commands each': n,
      replies: [...new Set(results)].join(', '),
      'server start MB': startMb,
      'server peak MB': status(child.pid!, 'VmHWM'),
      'server RSS after MB': status(child.pid!, 'VmRSS'),
    });
    await stop(child);
  }
  return rows;
}

// ---- item 4 -----------------------------------------------------------------------------------

const SIZE = 256 * 1024 * 1024;

/** Every file under `dir` (hidden ones too), with its size. */
function filesIn(dir: string): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesIn(p).map((f) => ({ ...f, name: path.join(e.name, f.name) })));
    else out.push({ name: e.name, size: e.isFile() ? statSync(p).size : 0 });
  }
  return out;
}
const bytesIn = (dir: string) => filesIn(dir).reduce((n, f) => n + f.size, 0);

function empty(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
}

/** Waits until the directory's listing stops changing for 1 s (10 s at most). */
async function settled(dirs: string[]): Promise<void> {
  const snap = () => JSON.stringify(dirs.map(filesIn));
  let last = snap();
  let stable = Date.now();
  const until = Date.now() + 10_000;
  while (Date.now() - stable < 1000 && Date.now() < until) {
    await delay(100);
    const now = snap();
    if (now !== last) {
      last = now;
      stable = Date.now();
    }
  }
}

async function partfiles(): Promise<Row[]> {
  const root = tmp('part');
  const home = path.join(root, 'home');
  const sock = path.join(root, 'agent.sock');
  const srcDir = path.join(root, 'src'); // sources of both directions: not counted
  const local = path.join(root, 'local'); // download destinations (the client's side)
  const remote = path.join(root, 'remote'); // upload destinations (the daemon's side)
  for (const d of [home, srcDir, local, remote]) mkdirSync(d, { recursive: true });
  const src = path.join(srcDir, 'big.bin');
  const mib = randomBytes(1024 * 1024);
  writeFileSync(src, Buffer.concat(Array.from({ length: 256 }, (_, i) => (i % 2 ? mib : mib.reverse()))));

  let daemon: ChildProcess | undefined;
  let restarts = 0;
  const up = async (): Promise<void> => {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) return;
    if (daemon) restarts++;
    daemon = start([opts.cli, 'serve', '--listen', `unix:${sock}`], daemonEnv(home));
    await reachable({ path: sock });
  };
  const cp = (from: string, to: string) => start([opts.cli, 'cp', '-a', `unix:${sock}`, '--no-progress', from, to], daemonEnv(home));

  /** Starts a copy and, once the destination holds a random fraction of it, kills `victim()`. */
  const interrupt = async (direction: 'upload' | 'download', victim: 'client' | 'daemon', signal: NodeJS.Signals): Promise<Row> => {
    empty(local);
    empty(remote);
    await up();
    const destDir = direction === 'upload' ? remote : local;
    const c = direction === 'upload' ? cp(src, ':' + path.join(remote, 'big.bin')) : cp(':' + src, path.join(local, 'big.bin'));
    const at = 0.05 + Math.random() * 0.9;
    const until = Date.now() + 60_000;
    let killed = false;
    while (Date.now() < until && c.exitCode === null && c.signalCode === null) {
      if (bytesIn(destDir) >= at * SIZE) {
        (victim === 'client' ? c : daemon!).kill(signal);
        killed = true;
        break;
      }
      await delay(5);
    }
    if (!(await exited(c, 15_000))) c.kill('SIGKILL');
    await exited(c, 5000);
    const crashed = victim === 'client' && (daemon!.exitCode !== null || daemon!.signalCode !== null);
    if (victim === 'daemon' || crashed) {
      await exited(daemon!, 5000);
      await up(); // the restart: a daemon that sweeps stale temp files does it now
    }
    await settled([local, remote]);
    const l = filesIn(local);
    const r = filesIn(remote);
    return {
      direction,
      killed: `${victim} ${signal}`,
      at: killed ? `${Math.round(at * 100)} %` : 'finished first',
      'daemon crashed': crashed,
      'client files left': l.length,
      'client MB left': Math.round(l.reduce((n, f) => n + f.size, 0) / 1048576),
      'daemon files left': r.length,
      'daemon MB left': Math.round(r.reduce((n, f) => n + f.size, 0) / 1048576),
      names: [...l, ...r].map((f) => f.name.replace(/[0-9a-f]{12}/, '…')).join(' '),
    };
  };

  const rows: Row[] = [];
  for (const direction of ['download', 'upload'] as const)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) for (let i = 0; i < opts.repeat; i++) rows.push(await interrupt(direction, 'client', signal));
  for (let i = 0; i < opts.repeat; i++) rows.push(await interrupt('upload', 'daemon', 'SIGKILL'));
  if (daemon) await stop(daemon);
  console.error(`  (partfiles: ${restarts} daemon restarts)`);
  return rows.map((r) => ({ load: 'partfiles', ...r }));
}

// ---- main -------------------------------------------------------------------------------------

function table(rows: Row[]): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) => c !== 'load');
  const line = (cells: (string | number | boolean | undefined)[]) => `| ${cells.map((c) => String(c ?? '')).join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => r[c])))].join('\n');
}

const run: Record<Load, () => Promise<Row[]>> = { preauth, ping, 'frames-socket': framesSocket, 'frames-http': framesHttp, partfiles };
console.log(`# build ${opts.build} (cli ${opts.cli}), node ${process.version}, ${os.cpus().length} CPUs`);
for (const l of opts.only) {
  const t0 = Date.now();
  try {
    const rows = await run[l]();
    for (const r of rows) console.error(JSON.stringify(r));
    console.log(`\n## ${l} (${Math.round((Date.now() - t0) / 1000)} s)\n\n${table(rows)}`);
  } catch (err) {
    console.log(`\n## ${l}: failed: ${(err as Error).stack ?? String(err)}`);
  }
  for (const c of [...children]) await stop(c);
}
cleanup();
process.exit(0);

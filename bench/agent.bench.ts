/**
 * Agent benchmarks: a file copy over the daemon's Unix socket (upload with SHA-256 checked, then
 * the rename) against a raw Node socket copy of the same file between the same kind of processes,
 * the daemon's peak RSS, exec round trips per second against local spawns, and the throughput of
 * an exec's stdout and of a forward session (each direction) against local pipes and direct TCP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, statSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../src/agent/client.js';
import { v8Collector } from '../src/agent/gc.js';
import { bestOfInterleaved, type BenchContext, type Reporter } from './harness.js';

export const name = 'agent';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

const RAW_RECEIVER = `
const net = require('net'), fs = require('fs');
const [sock, out] = process.argv.slice(1);
const srv = net.createServer((c) => {
  const w = fs.createWriteStream(out, { highWaterMark: 1024 * 1024 });
  c.pipe(w);
  w.on('close', () => { c.end('done'); });
});
srv.listen(sock, () => process.stderr.write('listening\\n'));
`;

function waitStderr(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`child did not print ${text}: ${buf}`)), 10_000);
    child.stderr!.on('data', (d) => {
      buf += d;
      if (buf.includes(text)) {
        clearTimeout(t);
        resolve();
      }
    });
  });
}

/** User + system CPU time of a process (all threads), ms. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks (USER_HZ = 100)
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function rawCopy(file: string, sock: string): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const c = net.connect(sock, () => {
      createReadStream(file, { highWaterMark: 256 * 1024 }).pipe(c);
    });
    c.on('data', () => {});
    c.on('end', () => resolve());
    c.on('error', reject);
  });
  return performance.now() - t0;
}

/** Reads a readable stream to its end; returns the byte count. */
function drainCount(s: NodeJS.ReadableStream): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    s.on('data', (d: Uint8Array) => (n += d.length));
    s.on('end', () => resolve(n));
    s.on('error', reject);
  });
}

/** Writes `total` bytes in 64 KiB chunks, honouring backpressure, then ends the stream. */
async function writeCount(w: NodeJS.WritableStream, total: number): Promise<void> {
  const block = new Uint8Array(64 * 1024).fill(0x5a);
  for (let sent = 0; sent < total; sent += block.length) {
    if (!w.write(block)) await new Promise((r) => w.once('drain', r));
  }
  await new Promise<void>((r) => w.end(r));
}

/**
 * Session throughput: an exec's stdout (`head -c N /dev/zero`) against the same command spawned
 * locally, and a forward session to a TCP target in this process, each direction, against a
 * direct TCP connection to the same target. Best of three, alternating.
 */
async function streamThroughput(reporter: Reporter, client: AgentClient, ctx: BenchContext): Promise<void> {
  const size = (ctx.quick ? 64 : 256) * 1024 * 1024;
  const mb = size / 1e6;
  const rounds = ctx.quick ? 1 : 3;
  const execLocal = async () => {
    const child = spawn('head', ['-c', String(size), '/dev/zero'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const n = await drainCount(child.stdout!);
    if (n !== size) throw new Error(`local exec read ${n}`);
  };
  const execRemote = async () => {
    const s = await client.exec(['head', '-c', String(size), '/dev/zero'], { endInput: true });
    s.stderr.resume();
    const n = await drainCount(s.stdout);
    await s.exit;
    if (n !== size) throw new Error(`remote exec read ${n}`);
  };
  // The forward target: sends `size` bytes to whoever connects with 'S', counts what arrives otherwise.
  const target = net.createServer({ allowHalfOpen: true }, (c) => {
    c.once('data', (first: Buffer) => {
      if (first[0] === 0x53) {
        void writeCount(c, size);
        c.resume();
      } else {
        let n = first.length;
        c.on('data', (d: Buffer) => (n += d.length));
        c.on('end', () => c.end(String(n)));
      }
    });
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  const port = (target.address() as net.AddressInfo).port;
  const direct = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(c));
      c.once('error', reject);
    });
  const fromTarget = async (open: () => Promise<Duplex>) => {
    const c = await open();
    c.write('S');
    c.end();
    const n = await drainCount(c);
    if (n !== size) throw new Error(`forward read ${n}`);
  };
  const toTarget = async (open: () => Promise<Duplex>) => {
    const c = await open();
    const reply = new Promise<string>((resolve) => {
      let t = '';
      c.on('data', (d: Buffer) => (t += d.toString()));
      c.on('end', () => resolve(t));
    });
    c.write('U');
    await writeCount(c, size);
    const got = Number(await reply);
    if (got !== size + 1) throw new Error(`forward wrote ${got}`);
  };
  const remote = () => client.forward('127.0.0.1', port);
  try {
    const [tLocal, tRemote] = (await bestOfInterleaved(rounds, [execLocal, execRemote])) as [number, number];
    const w1 = `exec stdout, ${size / 2 ** 20} MiB (\`head -c\`)`;
    reporter.add({ workload: w1, impl: 'local child_process pipe', value: mb / (tLocal / 1000), unit: 'MB/s', higherIsBetter: true, baseline: true });
    reporter.add({ workload: w1, impl: 'wirekit exec over the Unix socket', value: mb / (tRemote / 1000), unit: 'MB/s', higherIsBetter: true });
    const [tDirIn, tFwdIn, tDirOut, tFwdOut] = (await bestOfInterleaved(rounds, [
      () => fromTarget(direct),
      () => fromTarget(remote),
      () => toTarget(direct),
      () => toTarget(remote),
    ])) as [number, number, number, number];
    const w2 = `forward, target to client, ${size / 2 ** 20} MiB`;
    reporter.add({ workload: w2, impl: 'direct TCP connection', value: mb / (tDirIn / 1000), unit: 'MB/s', higherIsBetter: true, baseline: true });
    reporter.add({ workload: w2, impl: 'wirekit forward over the Unix socket', value: mb / (tFwdIn / 1000), unit: 'MB/s', higherIsBetter: true });
    const w3 = `forward, client to target, ${size / 2 ** 20} MiB`;
    reporter.add({ workload: w3, impl: 'direct TCP connection', value: mb / (tDirOut / 1000), unit: 'MB/s', higherIsBetter: true, baseline: true });
    reporter.add({ workload: w3, impl: 'wirekit forward over the Unix socket', value: mb / (tFwdOut / 1000), unit: 'MB/s', higherIsBetter: true });
  } finally {
    target.close();
  }
}

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const size = (ctx.quick ? 256 : 1024) * 1024 * 1024;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-agent-'));
  const src = path.join(dir, 'src.bin');
  const block = randomBytes(1024 * 1024);
  const fd = openSync(src, 'w');
  for (let i = 0; i < size; i += block.length) writeSync(fd, block);
  closeSync(fd);
  const sock = path.join(dir, 'agent.sock');
  const rawSock = path.join(dir, 'raw.sock');
  const daemon = spawn(process.execPath, [MAIN, 'serve', '-l', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  const rawPeer = spawn(process.execPath, ['-e', RAW_RECEIVER, rawSock, path.join(dir, 'raw.out')], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await Promise.all([waitStderr(daemon, 'listening on'), waitStderr(rawPeer, 'listening')]);
    const client = new AgentClient({ address: sock });
    const mb = size / 1e6;
    const label = `file copy ${size / 2 ** 20} MiB over a Unix socket`;
    interface Timing {
      ms: number;
      /** CPU time of both processes (all their threads), ms. */
      cpu: number;
    }
    let raw: Timing = { ms: Infinity, cpu: 0 };
    let up: Timing = { ms: Infinity, cpu: 0 };
    let down: Timing = { ms: Infinity, cpu: 0 };
    // The three copies alternate, best of three rounds each: this machine's I/O speed drifts by
    // 2x from one second to the next. Each copy starts with no dirty pages left by the one before
    // (\`sync\`), so that none pays for another's write-back.
    const rounds = ctx.quick ? 1 : 3;
    const settle = () => spawnSync('sync');
    const timed = async (peer: number, best: Timing, fn: () => Promise<unknown>): Promise<Timing> => {
      settle();
      const c0 = process.cpuUsage();
      const p0 = cpuMs(peer);
      const t0 = performance.now();
      await fn();
      const ms = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const cpu = (c.user + c.system) / 1000 + cpuMs(peer) - p0;
      return ms < best.ms ? { ms, cpu } : best;
    };
    // The order rotates from round to round. On this VM, writing into page-cache pages the guest
    // has not touched before is several times slower than reusing freed ones, and whichever copy
    // runs first after the deletions gets the warm pages; with a fixed order that bias always
    // favoured the same copy.
    const copies = [
      async () => (raw = await timed(rawPeer.pid!, raw, () => rawCopy(src, rawSock))),
      async () => (up = await timed(daemon.pid!, up, () => client.upload(src, path.join(dir, 'up.bin')))),
      async () => (down = await timed(daemon.pid!, down, () => client.download(path.join(dir, 'dl-src.bin'), path.join(dir, 'down.bin'), { collectGarbage: v8Collector() }))),
    ];
    await client.upload(src, path.join(dir, 'dl-src.bin')); // the download's source
    for (let i = 0; i < rounds; i++) {
      // Outputs are removed before the round, so no copy pays for freeing the last one's pages.
      rmSync(path.join(dir, 'raw.out'), { force: true });
      rmSync(path.join(dir, 'up.bin'), { force: true });
      rmSync(path.join(dir, 'down.bin'), { force: true });
      for (let j = 0; j < copies.length; j++) await copies[(i + j) % copies.length]!();
    }
    if (statSync(path.join(dir, 'up.bin')).size !== size || statSync(path.join(dir, 'down.bin')).size !== size) throw new Error('copy size mismatch');
    const rss = peakRssMb(daemon.pid!).toFixed(0);
    const cpuNote = (t: Timing) => `CPU ${(t.cpu / 1000).toFixed(2)} s for both processes`;
    reporter.add({ workload: label, impl: 'raw Node socket (pipe to file, no checks)', value: mb / (raw.ms / 1000), unit: 'MB/s', higherIsBetter: true, baseline: true, note: cpuNote(raw) });
    reporter.add({ workload: label, impl: 'wirekit cp (upload, SHA-256 verified, temp + rename)', value: mb / (up.ms / 1000), unit: 'MB/s', higherIsBetter: true, note: `${cpuNote(up)}; daemon peak RSS ${rss} MB over all copies` });
    reporter.add({ workload: label, impl: 'wirekit cp (download, SHA-256 verified, temp + rename)', value: mb / (down.ms / 1000), unit: 'MB/s', higherIsBetter: true, note: `${cpuNote(down)}; daemon peak RSS ${rss} MB over all copies` });
    rmSync(path.join(dir, 'up.bin'));
    rmSync(path.join(dir, 'down.bin'));
    rmSync(path.join(dir, 'dl-src.bin'));
    rmSync(path.join(dir, 'raw.out'), { force: true });

    const n = ctx.quick ? 50 : 300;
    const t2 = performance.now();
    for (let i = 0; i < n; i++) spawnSync('true');
    const local = performance.now() - t2;
    reporter.add({ workload: 'exec round trips (`true`, one at a time)', impl: 'local child_process.spawnSync', value: n / (local / 1000), unit: 'runs/s', higherIsBetter: true, baseline: true });
    const t3 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = await client.exec(['true'], { endInput: true });
      s.stdout.resume();
      s.stderr.resume();
      await s.exit;
    }
    const remote = performance.now() - t3;
    reporter.add({ workload: 'exec round trips (`true`, one at a time)', impl: 'wirekit exec over the Unix socket', value: n / (remote / 1000), unit: 'runs/s', higherIsBetter: true });

    await streamThroughput(reporter, client, ctx);
  } finally {
    daemon.kill('SIGTERM');
    rawPeer.kill('SIGKILL');
    await new Promise((r) => daemon.once('close', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

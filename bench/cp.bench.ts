/**
 * `wirekit cp` as users run it: the command as a process (its start-up included) copying a file
 * over the daemon's Unix socket, upload and download, against `socat` copying the same file over
 * a Unix socket into a file (no checks), and against `scp` and `rsync` over ssh to localhost when
 * Debian's `openssh-server` and `rsync` are installed (a private sshd on a loopback port with a
 * temporary host key; the rows are skipped with a notice otherwise). Median of rotating rounds;
 * the peak RSS of the `wirekit cp` process and of the daemon.
 *
 * Install the peers: `apt-get install socat openssh-server rsync`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchContext, Reporter } from './harness.js';

export const name = 'cp';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Runs a command to its end; resolves with its time in ms and its peak RSS (sampled) in MB. */
function timedRun(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ ms: number; rss: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ?? process.env });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    let rss = 0;
    const poll = setInterval(() => (rss = Math.max(rss, peakRssMb(child.pid!))), 20);
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      clearInterval(poll);
      clearTimeout(timer);
      if (code === 0) resolve({ ms, rss });
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err}`));
    });
  });
}

function waitFor(child: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no ${re} from child: ${buf}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      buf += d;
      if (re.test(buf)) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}: ${buf}`)));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A private sshd on 127.0.0.1 for this user, or a reason why not. */
async function privateSshd(dir: string): Promise<{ sshArgs: string[]; stop(): void } | string> {
  if (!existsSync('/usr/sbin/sshd') || !has('ssh') || !has('ssh-keygen')) return 'openssh-server is not installed (apt-get install openssh-server)';
  const d = path.join(dir, 'ssh');
  mkdirSync(d, { mode: 0o700 });
  for (const k of ['host', 'user']) {
    const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, k)], { stdio: 'ignore' });
    if (r.status !== 0) return 'ssh-keygen failed';
  }
  writeFileSync(path.join(d, 'authorized_keys'), readFileSync(path.join(d, 'user.pub')), { mode: 0o600 });
  const port = await freePort();
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(d, 'host')}`,
    `AuthorizedKeysFile ${path.join(d, 'authorized_keys')}`,
    `PidFile ${path.join(d, 'sshd.pid')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin prohibit-password',
    'Subsystem sftp internal-sftp',
  ].join('\n');
  writeFileSync(path.join(d, 'sshd_config'), config + '\n');
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true });
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(d, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitFor(sshd, /Server listening/);
  } catch (err) {
    sshd.kill('SIGKILL');
    return `sshd did not start: ${(err as Error).message.slice(0, 200)}`;
  }
  const sshArgs = ['-p', String(port), '-i', path.join(d, 'user'), '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${path.join(d, 'known_hosts')}`, '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
  const probe = spawnSync('ssh', [...sshArgs, '127.0.0.1', 'true'], { stdio: 'ignore', timeout: 15_000 });
  if (probe.status !== 0) {
    sshd.kill('SIGKILL');
    return 'ssh to the private sshd failed';
  }
  return { sshArgs, stop: () => sshd.kill('SIGTERM') };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const size = (ctx.quick ? 256 : 1024) * 1024 * 1024;
  const mb = size / 1e6;
  const rounds = ctx.quick ? 1 : 3;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-cp-'));
  const src = path.join(dir, 'src.bin');
  const block = randomBytes(1024 * 1024);
  const fd = openSync(src, 'w');
  for (let i = 0; i < size; i += block.length) writeSync(fd, block);
  closeSync(fd);
  const sock = path.join(dir, 'agent.sock');
  const daemon = spawn(process.execPath, [MAIN, 'serve', '-l', `unix:${sock}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ssh = await privateSshd(dir);
  const stops: (() => void)[] = [() => daemon.kill('SIGTERM')];
  if (typeof ssh !== 'string') stops.push(ssh.stop);
  try {
    await waitFor(daemon, /listening on/);
    const cp = (args: string[]) => timedRun(process.execPath, [MAIN, 'cp', '-a', `unix:${sock}`, '--no-progress', ...args]);
    const out = (n: string) => path.join(dir, n);
    // The download's source, written once.
    await cp([src, ':' + out('dl-src.bin')]);
    interface Copy {
      impl: string;
      run(): Promise<{ ms: number; rss: number }>;
      output: string;
      baseline?: boolean;
      times: number[];
      rss: number;
    }
    const copies: Copy[] = [];
    const add = (impl: string, output: string, run: () => Promise<{ ms: number; rss: number }>, baseline = false) => copies.push({ impl, output, run, baseline, times: [], rss: 0 });
    if (has('socat')) {
      add(
        'socat over a Unix socket into a file (no checks)',
        out('raw.out'),
        async () => {
          const rawSock = out('raw.sock');
          rmSync(rawSock, { force: true });
          const rx = spawn('socat', ['-u', `UNIX-LISTEN:${rawSock}`, `OPEN:${out('raw.out')},creat,trunc`], { stdio: 'ignore' });
          while (!existsSync(rawSock)) await new Promise((r) => setTimeout(r, 5));
          const t0 = performance.now();
          const tx = await timedRun('socat', ['-u', `OPEN:${src}`, `UNIX-CONNECT:${rawSock}`]);
          if (rx.exitCode === null) await new Promise((r) => rx.once('exit', r));
          return { ms: performance.now() - t0, rss: tx.rss };
        },
        true,
      );
    } else console.log('  (socat is not installed: apt-get install socat; no raw socket baseline)');
    add('`wirekit cp` upload (process, BLAKE3 verified, temp + rename)', out('up.bin'), () => cp([src, ':' + out('up.bin')]));
    add('`wirekit cp` download (process, BLAKE3 verified, temp + rename)', out('down.bin'), () => cp([':' + out('dl-src.bin'), out('down.bin')]));
    add('`wirekit cp --checksum sha256` upload (process)', out('up-sha.bin'), () => cp(['--checksum', 'sha256', src, ':' + out('up-sha.bin')]));
    if (typeof ssh === 'string') console.log(`  (scp and rsync rows skipped: ${ssh})`);
    else {
      add('scp to localhost (ssh)', out('scp.out'), () => timedRun('scp', ['-q', '-P', ssh.sshArgs[1]!, ...ssh.sshArgs.slice(2), src, `127.0.0.1:${out('scp.out')}`]));
      if (has('rsync')) add('rsync over ssh to localhost', out('rsync.out'), () => timedRun('rsync', ['-e', ['ssh', ...ssh.sshArgs].join(' '), src, `127.0.0.1:${out('rsync.out')}`]));
      else console.log('  (rsync is not installed: apt-get install rsync; row skipped)');
    }
    // Rotating order, outputs removed and dirty pages written back before each copy, so no copy
    // pays for another's page-cache work (see agent.bench.ts).
    for (const c of copies) await c.run(); // warm-up
    for (let i = 0; i < rounds; i++) {
      for (let j = 0; j < copies.length; j++) {
        const c = copies[(i + j) % copies.length]!;
        rmSync(c.output, { force: true });
        spawnSync('sync');
        const r = await c.run();
        if (statSync(c.output).size !== size) throw new Error(`${c.impl}: wrong size`);
        c.times.push(r.ms);
        c.rss = Math.max(c.rss, r.rss);
      }
    }
    const label = `file copy ${size / 2 ** 20} MiB, the command as a process`;
    const daemonRss = peakRssMb(daemon.pid!);
    for (const c of copies) {
      const note = c.impl.startsWith('`wirekit') ? `client peak RSS ${c.rss.toFixed(0)} MB, daemon ${daemonRss.toFixed(0)} MB; median of ${rounds}` : `median of ${rounds}`;
      reporter.add({ workload: label, impl: c.impl, value: mb / (median(c.times) / 1000), unit: 'MB/s', higherIsBetter: true, baseline: c.baseline, note });
    }
  } finally {
    for (const s of stops) s();
    await new Promise((r) => (daemon.exitCode !== null ? r(null) : daemon.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}

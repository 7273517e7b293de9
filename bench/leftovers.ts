/**
 * Figures for the closing note of issue 12 (not a benchmark, not a test: counts, run by hand):
 *
 * - processes: programs of running exec and terminal sessions left alive after the daemon is
 *   stopped by SIGTERM, SIGINT or SIGKILL (item 8);
 * - crashes: `wirekit cp` uploads killed (SIGKILL and SIGINT, alternating) at random points of
 *   the transfer, and how many of those kills took the daemon down (item 1); downloads stopped
 *   by SIGINT, and how many made the client print a stack trace.
 *
 * `node .build/x/bench/leftovers.js [--cli PATH/src/cli/main.js] [--runs N] [--seed S] [--only processes|crashes]`
 * Only the built CLI is driven (a child process each), so `--cli` may name an older build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : dflt;
};
const CLI = path.resolve(flag('--cli', path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js')));
const RUNS = Number(flag('--runs', '15'));
const only = flag('--only', '');
const MARK = `WK_LEFTOVERS_MARK=${randomBytes(8).toString('hex')}`;
const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-leftovers-')));
const started = new Set<ChildProcess>();

/** A small seeded generator (mulberry32). */
let seed = Number(flag('--seed', '1')) >>> 0;
function rnd(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(argv: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...argv], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  started.add(child);
  child.on('exit', () => started.delete(child));
  child.stdout!.resume();
  return child;
}

function exited(child: ChildProcess, ms = 20_000): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const done = (gone: boolean) => {
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(gone);
    };
    const onExit = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    child.once('exit', onExit);
  });
}

/**
 * Starts `wirekit serve` on a fresh socket, itself (and its supervisors) marked by MARK in their
 * environment; its programs get a clean environment, so each client command passes MARK with -e.
 */
async function serve(name: string, extra: string[] = []): Promise<{ daemon: ChildProcess; address: string; log: () => string }> {
  const sock = path.join(dir, `${name}.sock`);
  const [k, v] = [MARK.slice(0, MARK.indexOf('=')), MARK.slice(MARK.indexOf('=') + 1)];
  const daemon = run(['serve', '-l', `unix:${sock}`, ...extra], { [k]: v });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${log}`)), 20_000);
    daemon.stderr!.on('data', (d: Buffer) => {
      log += d;
      if (/listening on/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { daemon, address: `unix:${sock}`, log: () => log };
}

/** Live `sleep` processes carrying MARK (the programs of the sessions, not their supervisors). */
function leftSleeps(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(MARK)) continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (comm === 'sleep' && state !== 'Z') out.push(Number(name));
    } catch {
      // gone, or another user's
    }
  }
  return out;
}

function killAllMarked(): void {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, 'latin1').split('\0').includes(MARK)) process.kill(Number(name), 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Item 8: per signal, the sessions' programs alive 5 s after the daemon was stopped. */
async function processes(): Promise<void> {
  const programs = [
    ['exec', '--', 'sleep', '600'],
    ['exec', '--', 'sh', '-c', 'sleep 600 & wait'],
    ['exec', '--', 'sh', '-c', 'trap "" HUP INT TERM; sleep 600 & wait'],
    ['shell', '--', 'sh', '-c', 'trap "" HUP; sleep 600 & wait'],
  ];
  console.log(`item 8: ${programs.length} sessions (${programs.length} sleep processes) running when the daemon is stopped`);
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
    const { daemon, address } = await serve(`procs-${sig}`);
    const clients = programs.map((p) => run([...p.slice(0, 1), '-a', address, '-e', MARK, ...p.slice(1)]));
    for (let i = 0; i < 500 && leftSleeps().length < programs.length; i++) await pause(20);
    const running = leftSleeps().length;
    daemon.kill(sig);
    const stopped = await exited(daemon);
    // Whatever cleans up gets 5 s (the daemon's own bound is 3 s).
    for (let i = 0; i < 250 && leftSleeps().length > 0; i++) await pause(20);
    const left = leftSleeps().length;
    console.log(`  ${sig.padEnd(7)}: ${running} running, daemon ${stopped ? 'exited' : 'still running'}, ${left} left after 5 s`);
    for (const c of clients) c.kill('SIGKILL');
    daemon.kill('SIGKILL');
    killAllMarked();
  }
}

/** Item 1: uploads killed at random points; daemon crashes. Downloads stopped by SIGINT; client stack traces. */
async function crashes(): Promise<void> {
  const src = path.join(dir, 'big');
  writeFileSync(src, randomBytes(128 * 1024 * 1024));
  const root = path.join(dir, 'root');
  mkdirSync(root);
  let server = await serve('crash-0');
  // One whole upload: how long a transfer takes here, so the kills land inside it.
  const t0 = performance.now();
  const whole = run(['cp', '-a', server.address, src, `:${path.join(root, 'whole')}`]);
  await exited(whole, 120_000);
  const span = performance.now() - t0;
  let crashed = 0;
  let restarts = 0;
  for (let i = 0; i < RUNS; i++) {
    const sig = i % 2 === 0 ? 'SIGKILL' : 'SIGINT';
    const cp = run(['cp', '-a', server.address, src, `:${path.join(root, `up-${i}`)}`]);
    await pause(Math.floor(rnd() * span));
    cp.kill(sig);
    await exited(cp);
    // The daemon is down when its process is gone or a ping no longer gets through.
    const ping = run(['ping', '-a', server.address]);
    await exited(ping);
    await exited(server.daemon, 200);
    if (server.daemon.exitCode !== null || server.daemon.signalCode !== null || ping.exitCode !== 0) {
      crashed++;
      const why = /Error: [^\n]*/.exec(server.log());
      console.log(`  upload ${i + 1} (${sig}): the daemon died${why ? `: ${why[0]}` : ''}`);
      server.daemon.kill('SIGKILL');
      server = await serve(`crash-${++restarts}`);
    }
  }
  console.log(`item 1: ${crashed} daemon crashes in ${RUNS} uploads killed at random points (SIGKILL and SIGINT alternating, 128 MiB, one upload ${Math.round(span)} ms)`);
  writeFileSync(path.join(root, 'dl'), readFileSync(src));
  const downs = Math.min(RUNS, 6);
  let traces = 0;
  for (let i = 0; i < downs; i++) {
    const destDir = path.join(dir, `down-${i}`);
    mkdirSync(destDir);
    const cp = run(['cp', '-a', server.address, `:${path.join(root, 'dl')}`, destDir]);
    let err = '';
    cp.stderr!.on('data', (d: Buffer) => (err += d));
    await pause(Math.floor(rnd() * span));
    cp.kill('SIGINT');
    await exited(cp);
    if (/\n\s+at /.test(err)) {
      traces++;
      console.log(`  download ${i + 1}: ${err.split('\n')[0]}`);
    }
  }
  console.log(`item 1: ${traces} client stack traces in ${downs} downloads stopped by SIGINT at random points`);
  server.daemon.kill('SIGKILL');
}

try {
  console.log(`cli: ${CLI}`);
  if (only !== 'crashes') await processes();
  if (only !== 'processes') await crashes();
} finally {
  for (const c of started) c.kill('SIGKILL');
  killAllMarked();
  rmSync(dir, { recursive: true, force: true });
}

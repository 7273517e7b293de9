/**
 * Web console benchmarks, in a real browser (Debian's Chromium, headless, through playwright-core).
 * Three processes on loopback besides Chromium: the hub with its HTTP API and console
 * (bench/hub-child.js hub DIR http), one agent daemon (`wirekit serve -l tcp://... --hub ...`,
 * SHELL=/bin/sh) that both paths reach, and this process (Playwright's driver, node-pty).
 *   - keystroke echo: a key pressed in the console's terminal pane (page.keyboard, a real key event)
 *     into `cat` under the agent's pty, timed in the page from the keydown to the echoed character
 *     in xterm's buffer (and to xterm's next render after it); against the same through `wirekit shell` in a node-pty pty, direct to the
 *     daemon over TCP (timed from the write into the pty to the echo out of it);
 *   - output: `cat` of a 50 MB text file (5 MB with --quick) in the pane until its last line is on
 *     screen (in the DOM renderer's rows), against the same in `wirekit shell` under node-pty until
 *     the last line has arrived.
 * Without Chromium it prints a one-line notice and returns.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pty from 'node-pty';
import { WebSocket } from 'ws';
import type { Browser, Page } from 'playwright-core';
import type { Terminal as XTerm } from '@xterm/xterm';
import type { BenchContext, Reporter } from './harness.js';

export const name = 'console';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.join(here, '../src/cli/main.js');
const CHILD = path.join(here, 'hub-child.js');
const CHROMIUM = process.env.WIREKIT_CHROMIUM ?? '/usr/bin/chromium';

type Msg = { type: string; [k: string]: unknown };

function nextMessage(child: ChildProcess, type: string, timeoutMs: number): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => done(new Error(`${type}: no answer from child ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    const onMsg = (m: Msg) => m.type === type && done(undefined, m);
    const onExit = (code: number | null) => done(new Error(`child ${child.pid} exited (${code}) before ${type}`));
    const done = (err?: Error, m?: Msg) => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

function waitStderr(child: ChildProcess, re: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`child did not print ${re}: ${buf}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += String(d);
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        child.stderr!.off('data', onData);
        resolve(m);
      }
    };
    child.stderr!.on('data', onData);
  });
}

const pct = (sorted: readonly number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sortNum = (a: number[]) => [...a].sort((x, y) => x - y);

/** A text file of `size` bytes: numbered 64-byte lines, the last one `marker`. */
function writeText(file: string, size: number, marker: string): void {
  const fd = openSync(file, 'w');
  const line = (i: number) => `${String(i).padStart(9, '0')} the quick brown fox jumps over the lazy dog 0123\n`;
  const lines: string[] = [];
  let written = 0;
  for (let i = 0; written + 64 * 1024 + marker.length + 1 <= size; i++) {
    lines.push(line(i));
    if (lines.length === 1024) {
      written += writeSync(fd, lines.join(''));
      lines.length = 0;
    }
  }
  written += writeSync(fd, lines.join(''));
  writeSync(fd, marker + '\n');
  closeSync(fd);
}

/** A `wirekit shell` under node-pty: output kept as a bounded tail plus a running total. */
class PtyShell {
  readonly term: pty.IPty;
  private tail = '';
  private waiter: { test: (tail: string) => boolean; resolve: () => void } | undefined;
  readonly exited: Promise<number>;

  constructor(args: string[], env: Record<string, string>) {
    this.term = pty.spawn(process.execPath, [MAIN, 'shell', ...args], { cols: 160, rows: 48, env: { ...process.env, ...env, TERM: 'xterm-256color' } as Record<string, string> });
    this.term.onData((d) => {
      this.tail = (this.tail + d).slice(-4096);
      if (this.waiter?.test(this.tail)) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve();
      }
    });
    this.exited = new Promise((r) => this.term.onExit((e) => r(e.exitCode)));
  }

  /** Resolves when the output's tail satisfies `test` (checked on each chunk, and now). */
  until(test: (tail: string) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (test(this.tail)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`wirekit shell: no ${what} within ${timeoutMs} ms; output ends ${JSON.stringify(this.tail.slice(-300))}`)), timeoutMs);
      this.waiter = {
        test,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      };
    });
  }

  clear(): void {
    this.tail = '';
  }

  async close(): Promise<void> {
    try {
      this.term.kill();
    } catch {
      // already gone
    }
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
  }
}

/** In the page: the bench's view of the last terminal pane's xterm. */
interface PageBench {
  /**
   * Arms the next keydown: `done()` then gives the ms from it until the cursor moved one column in
   * xterm's buffer, and until xterm's renderer next drew the rows (`onRender`) after that.
   */
  arm(): void;
  done(): Promise<{ parsed: number; rendered: number }>;
  /** Resolves when the two lines above the cursor are `text` and the cursor is at column 0. */
  lines(text: string): Promise<void>;
}
declare global {
  interface Window {
    __wirekitTest?: { terminals: XTerm[] };
    __bench?: PageBench;
  }
}

function installPageBench(page: Page): Promise<void> {
  return page.evaluate(() => {
    const term = window.__wirekitTest!.terminals.at(-1)!;
    const buf = () => term.buffer.active;
    const lineAt = (y: number) => buf().getLine(y)?.translateToString(true) ?? '';
    let t0 = 0;
    let armed = false;
    let want = -1;
    let echo: { resolve: (ms: { parsed: number; rendered: number }) => void } | undefined;
    let echoed: Promise<{ parsed: number; rendered: number }> = Promise.reject(new Error('not armed'));
    let parsedAt = 0;
    let drawn: ((ms: { parsed: number; rendered: number }) => void) | undefined;
    echoed.catch(() => undefined);
    let lines: { text: string; resolve: () => void } | undefined;
    const linesHere = (text: string) => {
      const y = buf().baseY + buf().cursorY;
      return buf().cursorX === 0 && lineAt(y - 1) === text && lineAt(y - 2) === text;
    };
    document.addEventListener('keydown', () => {
      if (armed) {
        armed = false;
        t0 = performance.now();
      }
    }, true);
    term.onWriteParsed(() => {
      if (echo && t0 > 0 && buf().cursorX === want) {
        parsedAt = performance.now();
        drawn = echo.resolve;
        echo = undefined;
      }
      if (lines && linesHere(lines.text)) {
        const l = lines;
        lines = undefined;
        l.resolve();
      }
    });
    term.onRender(() => {
      if (!drawn) return;
      const d = drawn;
      drawn = undefined;
      d({ parsed: parsedAt - t0, rendered: performance.now() - t0 });
    });
    const bounded = <T>(p: Promise<T>, what: string) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`page: no ${what} within 20 s`)), 20_000))]);
    window.__bench = {
      arm() {
        armed = true;
        t0 = 0;
        want = buf().cursorX + 1;
        drawn = undefined;
        let resolve!: (ms: { parsed: number; rendered: number }) => void;
        echoed = new Promise<{ parsed: number; rendered: number }>((r) => (resolve = r));
        echo = { resolve };
      },
      done() {
        return bounded(echoed, 'echo');
      },
      lines(text: string) {
        if (linesHere(text)) return Promise.resolve();
        return bounded(new Promise<void>((resolve) => (lines = { text, resolve })), `lines ${text}`);
      },
    };
  });
}

/** Waits until a visible row of the last terminal pane is exactly `text` (checked every frame). */
async function rowOnScreen(page: Page, text: string, timeoutMs: number): Promise<void> {
  await page.waitForFunction(
    (t) => {
      const panes = document.querySelectorAll('.pane.terminal');
      const rows = panes[panes.length - 1]?.querySelectorAll('.xterm-rows > div') ?? [];
      for (const r of Array.from(rows)) if ((r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd() === t) return true;
      return false;
    },
    text,
    { timeout: timeoutMs, polling: 'raf' },
  );
}

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`  skipped: needs Chromium at ${CHROMIUM} (apt-get install chromium, or WIREKIT_CHROMIUM=PATH)`);
    return;
  }
  const echoes = ctx.quick ? 200 : 2000;
  const burst = 40; // keys per line, then Enter (cat's canonical line stays short)
  const size = (ctx.quick ? 5 : 50) * 1e6;
  const outRuns = ctx.quick ? 1 : 3;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-console-'));
  const children: ChildProcess[] = [];
  const shells: PtyShell[] = [];
  let browser: Browser | undefined;
  try {
    // ---- hub, daemon, file ----
    const hub = fork(CHILD, ['hub', path.join(dir, 'state'), 'http'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(hub);
    const ready = await nextMessage(hub, 'ready', 20_000);
    const agentAddress = ready.agentAddress as { host: string; port: number };
    const httpAddress = ready.httpAddress as { host: string; port: number };
    const root = path.join(dir, 'root');
    mkdirSync(root);
    writeFileSync(path.join(dir, 'enroll'), `${String(ready.enrollmentToken)}\n`, { mode: 0o600 });
    const daemonToken = randomBytes(24).toString('base64url');
    const shellEnv = { SHELL: '/bin/sh', PS1: '$ ', HOME: root, ENV: '' };
    const daemon = spawn(
      process.execPath,
      [MAIN, 'serve', '-l', 'tcp://127.0.0.1:0', '--hub', `tcp://${agentAddress.host}:${agentAddress.port}`, '--enroll-token-file', path.join(dir, 'enroll'), '--hub-token-file', path.join(dir, 'hub-token'), '--id', 'bench-console', '--root', root, '-v'],
      { stdio: ['ignore', 'ignore', 'pipe'], cwd: root, env: { ...process.env, ...shellEnv, WIREKIT_TOKEN: daemonToken } },
    );
    children.push(daemon);
    const registered = waitStderr(daemon, /registered with hub/);
    const listening = await waitStderr(daemon, /listening on tcp:\/\/127\.0\.0\.1:(\d+)/);
    await registered;
    daemon.stderr!.resume(); // its log from here on is not read, but must not fill the pipe and block it
    const daemonAddr = `tcp://127.0.0.1:${listening[1]}`;
    const marker = `end-of-file-${randomBytes(4).toString('hex')}`;
    const file = path.join(dir, 'big.txt');
    writeText(file, size, marker);

    // ---- Chromium, logged in, a terminal pane on the agent ----
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
    const browserVersion = browser.version();
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.addInitScript(() => (window.__wirekitTest = { terminals: [] }));
    await page.goto(`http://127.0.0.1:${httpAddress.port}/`);
    await page.locator('#login-user').fill('bench');
    await page.locator('#login-pass').fill('benchpass');
    await page.keyboard.press('Enter');
    await page.locator('#fleet-body tr[data-id="bench-console"] button', { hasText: 'Terminal' }).click();
    await page.locator('.pane.terminal[data-state^="connected"]').waitFor({ timeout: 20_000 });
    const textarea = page.locator('.pane.terminal .xterm-helper-textarea').last();
    await textarea.focus();
    const typeLine = async (s: string) => {
      await page.keyboard.type(s);
      await page.keyboard.press('Enter');
    };
    // Programs get a clean environment (no PS1 from the daemon's): set the prompt the rows are matched against.
    await typeLine("PS1='$ '; echo ready-$((6*7))");
    await rowOnScreen(page, 'ready-42', 20_000);

    // ---- wirekit shell in a pty, direct to the daemon ----
    const auth = ['-a', daemonAddr];
    const env = { WIREKIT_TOKEN: daemonToken };
    const sh = new PtyShell([...auth, '--', '/bin/sh'], env);
    shells.push(sh);
    sh.term.write('echo ready-$((6*7))\r');
    await sh.until((t) => /ready-42\r*\n/.test(t), 'ready-42');

    // ---- output: cat of the file, alternating browser and pty ----
    const outMs: [number[], number[]] = [[], []];
    let flow = { pauses: 0, maxPending: 0 };
    for (let i = 0; i < outRuns; i++) {
      await page.keyboard.type(`cat ${file}`);
      const t0 = performance.now();
      await page.keyboard.press('Enter');
      await rowOnScreen(page, marker, 600_000);
      outMs[0].push(performance.now() - t0);
      await typeLine(`clear; echo done-$((${i}+100))`);
      await rowOnScreen(page, `done-${i + 100}`, 60_000);
      flow = await page.locator('.pane.terminal').last().evaluate((e: HTMLElement) => ({ pauses: Number(e.dataset.pauses ?? 0), maxPending: Number(e.dataset.maxPending ?? 0) }));

      sh.clear();
      const t1 = performance.now();
      sh.term.write(`cat ${file}\r`);
      await sh.until((t) => t.includes(marker), 'last line', 600_000);
      outMs[1].push(performance.now() - t1);
      sh.term.write(`echo done-$((${i}+100))\r`);
      await sh.until((t) => new RegExp(`done-${i + 100}\\r*\\n`).test(t), 'done');
    }
    const mb = size / 1e6;
    const [bestBrowser, bestPty] = outMs.map((a) => Math.min(...a)) as [number, number];
    const runsNote = (a: number[]) => (a.length > 1 ? `, runs ${a.map((ms) => (ms / 1000).toFixed(2)).join(' / ')} s` : '');
    const outLabel = `cat of a ${mb} MB text file (64-byte lines) until its last line is there`;
    reporter.add({ workload: outLabel, impl: 'wirekit shell in a node-pty pty, direct TCP to the daemon', value: mb / (bestPty / 1000), unit: 'MB/s', higherIsBetter: true, baseline: true, note: `${(bestPty / 1000).toFixed(2)} s${runsNote(outMs[1])}` });
    reporter.add({
      workload: outLabel,
      impl: `web console in Chromium ${browserVersion}, through the hub, on screen`,
      value: mb / (bestBrowser / 1000),
      unit: 'MB/s',
      higherIsBetter: true,
      note: `${(bestBrowser / 1000).toFixed(2)} s${runsNote(outMs[0])}; the pane paused reading ${flow.pauses} times in all, at most ${flow.maxPending} bytes unparsed`,
    });

    // ---- keystroke echo ----
    await typeLine('exec cat');
    await rowOnScreen(page, '$ exec cat', 20_000);
    await installPageBench(page);
    const browserTimes: number[] = [];
    const renderedTimes: number[] = [];
    const chars = 'abcdefghijklmnopqrstuvwxyz';
    for (let i = -burst, b = 0; i < echoes; b++) {
      const c = chars[b % chars.length]!;
      for (let k = 0; k < burst; k++, i++) {
        await page.evaluate(() => window.__bench!.arm());
        await page.keyboard.down(c);
        const ms = await page.evaluate(() => window.__bench!.done());
        await page.keyboard.up(c);
        if (i >= 0) {
          browserTimes.push(ms.parsed);
          renderedTimes.push(ms.rendered);
        }
      }
      await page.keyboard.press('Enter');
      await page.evaluate((t) => window.__bench!.lines(t), c.repeat(burst));
    }

    // xterm's own input path (what a key becomes after xterm's key handling: onData, then the
    // pane's socket), driven inside the page: no key event, no CDP round trip per key.
    const inputTimes: number[] = [];
    for (let i = -burst, b = 0; i < echoes; b++, i += burst) {
      const c = chars[b % chars.length]!;
      const times = await page.evaluate(
        async ({ c, n }) => {
          const term = window.__wirekitTest!.terminals.at(-1)!;
          const out: number[] = [];
          for (let k = 0; k < n; k++) {
            const want = term.buffer.active.cursorX + 1;
            const t0 = performance.now();
            await new Promise<void>((resolve, reject) => {
              const t = setTimeout(() => reject(new Error('page: no echo within 20 s')), 20_000);
              const d = term.onWriteParsed(() => {
                if (term.buffer.active.cursorX !== want) return;
                clearTimeout(t);
                d.dispose();
                resolve();
              });
              term.input(c, true);
            });
            out.push(performance.now() - t0);
          }
          term.input('\r', true);
          return out;
        },
        { c, n: burst },
      );
      if (i >= 0) inputTimes.push(...times);
      await page.evaluate((t) => window.__bench!.lines(t), c.repeat(burst));
    }

    const cat = sh;
    cat.clear();
    cat.term.write('exec cat\r');
    await cat.until((t) => /exec cat\r*\n/.test(t), 'exec cat');
    const ptyTimes: number[] = [];
    for (let i = -burst, b = 0; i < echoes; b++) {
      const c = chars[b % chars.length]!;
      for (let k = 0; k < burst; k++, i++) {
        cat.clear();
        const echoed = cat.until((t) => t === c, `echo of ${c}`, 20_000);
        const t0 = performance.now();
        cat.term.write(c);
        await echoed;
        if (i >= 0) ptyTimes.push(performance.now() - t0);
      }
      cat.clear();
      cat.term.write('\r');
      const line = c.repeat(burst);
      await cat.until((t) => new RegExp(`^\\r*\\n${line}\\r*\\n`).test(t), 'the line back', 20_000);
    }

    // The same WebSocket from Node (ws): the hub's tty endpoint without a browser.
    const base = `http://127.0.0.1:${httpAddress.port}`;
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base }, body: JSON.stringify({ username: 'bench', password: 'benchpass' }) });
    const { data } = (await login.json()) as { data: { token: string } };
    const ws = new WebSocket(`ws://127.0.0.1:${httpAddress.port}/api/agents/bench-console/tty?cols=80&rows=24&command=${encodeURIComponent('["cat"]')}`, { headers: { authorization: `Bearer ${data.token}`, origin: base } });
    const wsTimes: number[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('tty WebSocket: not open within 20 s')), 20_000);
        ws.once('open', () => (clearTimeout(t), resolve()));
        ws.once('error', (err) => (clearTimeout(t), reject(err)));
      });
      let got = '';
      let waiting: { test: (s: string) => boolean; resolve: () => void } | undefined;
      ws.on('message', (d, binary) => {
        if (!binary) return;
        got += String(d);
        if (waiting?.test(got)) {
          const w = waiting;
          waiting = undefined;
          w.resolve();
        }
      });
      const until = (test: (s: string) => boolean, what: string) =>
        test(got)
          ? Promise.resolve()
          : new Promise<void>((resolve, reject) => {
              const t = setTimeout(() => reject(new Error(`tty WebSocket: no ${what} within 20 s; got ${JSON.stringify(got.slice(-200))}`)), 20_000);
              waiting = { test, resolve: () => (clearTimeout(t), resolve()) };
            });
      for (let i = -burst, b = 0; i < echoes; b++) {
        const c = chars[b % chars.length]!;
        for (let k = 0; k < burst; k++, i++) {
          got = '';
          const echoed = until((g) => g === c, `echo of ${c}`);
          const t0 = performance.now();
          ws.send(Buffer.from(c));
          await echoed;
          if (i >= 0) wsTimes.push(performance.now() - t0);
        }
        got = '';
        ws.send(Buffer.from('\r'));
        const line = c.repeat(burst);
        await until((g) => new RegExp(`^\\r*\\n${line}\\r*\\n`).test(g), 'the line back');
      }
    } finally {
      ws.close();
    }
    const ew = sortNum(wsTimes);
    const eb = sortNum(browserTimes);
    const er = sortNum(renderedTimes);
    const ei = sortNum(inputTimes);
    const ep = sortNum(ptyTimes);
    for (const p of [50, 99]) {
      const label = `keystroke echo, a key into cat in the agent's pty and back, p${p}`;
      reporter.add({ workload: label, impl: 'wirekit shell in a node-pty pty, direct TCP to the daemon', value: pct(ep, p), unit: 'ms', higherIsBetter: false, baseline: true, ...(p === 99 ? { note: `max ${ep[ep.length - 1]!.toFixed(1)} ms` } : {}) });
      reporter.add({
        workload: label,
        impl: 'web console, a key event (Playwright keyboard.down) to the echo in xterm\'s buffer, through the hub',
        value: pct(eb, p),
        unit: 'ms',
        higherIsBetter: false,
        note: p === 50 ? `${echoes} keys each` : `max ${eb[eb.length - 1]!.toFixed(1)} ms`,
      });
      reporter.add({ workload: label, impl: "web console, a key event to the echo drawn (xterm's onRender after it is in the buffer), through the hub", value: pct(er, p), unit: 'ms', higherIsBetter: false, ...(p === 99 ? { note: `max ${er[er.length - 1]!.toFixed(1)} ms` } : {}) });
      reporter.add({ workload: label, impl: "web console, xterm input() in a loop in the page to the echo in xterm's buffer, through the hub", value: pct(ei, p), unit: 'ms', higherIsBetter: false, ...(p === 99 ? { note: `max ${ei[ei.length - 1]!.toFixed(1)} ms` } : {}) });
      reporter.add({ workload: label, impl: "the console's tty WebSocket from Node (ws), through the hub", value: pct(ew, p), unit: 'ms', higherIsBetter: false, ...(p === 99 ? { note: `max ${ew[ew.length - 1]!.toFixed(1)} ms` } : {}) });
    }
  } finally {
    for (const s of shells) await s.close();
    await browser?.close();
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const closed = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

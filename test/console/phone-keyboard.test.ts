/**
 * The console on a phone-sized screen and with the keyboard alone, in a real browser (Debian's
 * Chromium through playwright-core), against a hub and an agent started here. The phone screenshot
 * lands in the artifacts directory (printed; WIREKIT_ARTIFACTS names another).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startHub, type RunningHub } from '../../src/hub/server.js';
import { HubDialer } from '../../src/agent/dial-out.js';
import { AgentDaemon } from '../../src/agent/daemon.js';
import { createLogger } from '../../src/agent/log.js';
import { PEERS, skipWithout } from '../helpers/peers.js';

const skip = skipWithout(PEERS.chromium);
const quiet = createLogger('silent');

let dir: string;
let artifacts: string;
let hub: RunningHub;
let base: string;
let browser: Browser;
const agents: { dialer: HubDialer; daemon: AgentDaemon }[] = [];

async function startAgent(id: string): Promise<void> {
  const daemon = new AgentDaemon({ logger: quiet });
  const joined = new Promise<void>((resolve) => {
    const on = (a: { id: string }) => a.id === id && (hub.hub.off('joined', on), resolve());
    hub.hub.on('joined', on);
  });
  const dialer = new HubDialer({
    hub: hub.agentAddress,
    register: { id, hostname: `${id}.test`, version: 't', capabilities: ['exec', 'terminal', 'upload', 'download', 'forward'], properties: { site: 'lab', room: 'b-104' } },
    enrollmentToken: hub.hub.enrollmentToken,
    tokenFile: path.join(dir, `${id}.token`),
    logger: quiet,
    serve: (stream, leftover, info) => daemon.serveConnection(stream, { peer: `hub user ${info.user}`, leftover }),
  });
  agents.push({ dialer, daemon });
  await dialer.start();
  await joined;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'wk-console-phone-'));
  artifacts = process.env.WIREKIT_ARTIFACTS ?? mkdtempSync(path.join(os.tmpdir(), 'wk-console-artifacts-'));
  mkdirSync(artifacts, { recursive: true });
  hub = await startHub({
    stateDir: path.join(dir, 'state'),
    agents: { host: '127.0.0.1', port: 0 },
    users: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    logger: quiet,
    scryptCost: { logN: 10, r: 8, p: 1 },
  });
  await hub.hub.addUser('root', 'rootpass', true);
  base = `http://127.0.0.1:${hub.httpAddress!.port}`;
  await startAgent('lab-device-01');
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
});

after(async () => {
  if (skip) return;
  await browser?.close();
  for (const a of agents) {
    a.dialer.stop();
    await a.daemon.close();
  }
  await hub?.close();
  process.stderr.write(`# console phone screenshot: ${artifacts}\n`);
});

/** The visible rows of the first terminal pane, as text, trailing blanks trimmed. */
function rowsOf(page: Page): Promise<string[]> {
  return page.evaluate(() => Array.from(document.querySelector('.pane.terminal')?.querySelectorAll('.xterm-rows > div') ?? [], (r) => (r.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd()));
}

async function waitRow(page: Page, re: RegExp, what: string): Promise<string> {
  try {
    const h = await page.waitForFunction(
      (src) => {
        const r = new RegExp(src);
        for (const row of Array.from(document.querySelector('.pane.terminal')?.querySelectorAll('.xterm-rows > div') ?? [])) {
          const t = (row.textContent ?? '').replace(/\u00a0/g, ' ').trimEnd();
          if (r.test(t)) return t;
        }
        return false;
      },
      re.source,
      { timeout: 20_000, polling: 100 },
    );
    return (await h.jsonValue()) as string;
  } catch (err) {
    throw new Error(`no terminal row ${what}; rows:\n${(await rowsOf(page)).join('\n')}`, { cause: err });
  }
}

/** Horizontal overflow of the page, and anything sticking out of the viewport on the right. */
function overflow(page: Page): Promise<{ scroll: number; width: number; outside: string[] }> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const outside: string[] = [];
    for (const e of Array.from(document.querySelectorAll<HTMLElement>('#top *, #fleet-view button, #fleet-view input, .pane, .pane .xterm-screen'))) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 0.5) outside.push(`${e.tagName.toLowerCase()}.${e.className} ${e.textContent?.slice(0, 20) ?? ''} right=${r.right}`);
    }
    return { scroll: document.documentElement.scrollWidth, width, outside };
  });
}

test('on a phone (390x844): the agent list and a terminal fit, with keys a phone keyboard lacks', { skip }, async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  try {
    const page = await context.newPage();
    await page.goto(base);
    await page.locator('#login-user').fill('root');
    await page.locator('#login-pass').fill('rootpass');
    await page.locator('#login-form button[type=submit]').tap();
    const row = page.locator('#fleet-body tr[data-id="lab-device-01"]');
    await row.waitFor();
    let o = await overflow(page);
    assert.ok(o.scroll <= o.width, `no horizontal scrolling: ${o.scroll} > ${o.width}`);
    assert.deepEqual(o.outside, []);
    // Thumb-sized buttons, all in view.
    for (const name of ['Terminal', 'Run', 'Files', 'Web']) {
      const box = (await row.getByRole('button', { name: `${name} lab-device-01` }).boundingBox())!;
      assert.ok(box.height >= 36, `${name} is ${box.height} px high`);
    }
    await row.getByRole('button', { name: 'Terminal lab-device-01' }).tap();
    const pane = page.locator('.pane.terminal[data-state="connected"]');
    await pane.waitFor({ timeout: 20_000 });
    o = await overflow(page);
    assert.ok(o.scroll <= o.width, `no horizontal scrolling with a terminal: ${o.scroll} > ${o.width}`);
    assert.deepEqual(o.outside, []);
    // The pty's size is the grid that fits the pane.
    await page.locator('.pane.terminal .xterm-helper-textarea').focus();
    await page.keyboard.type('stty size');
    await page.keyboard.press('Enter');
    const size = await waitRow(page, /^\d+ \d+$/, 'stty size');
    const [rows, cols] = size.split(' ').map(Number) as [number, number];
    assert.ok(cols >= 40 && cols < 60, `a usable width: ${cols} columns`);
    assert.ok(rows >= 20, `${rows} rows`);
    // The key bar: ^C stops a program, Esc and the arrows are there.
    const keys = page.locator('.pane.terminal .keys');
    assert.equal(await keys.isVisible(), true);
    for (const k of ['Escape', 'Tab', 'Control-C', 'Control-D', 'Up', 'Down', 'Left', 'Right']) assert.equal(await keys.getByRole('button', { name: k, exact: true }).isVisible(), true, k);
    await page.keyboard.type('sleep 60; echo not-stopped');
    await page.keyboard.press('Enter');
    await waitRow(page, /sleep 60; echo not-stopped$/, 'the sleep line');
    await keys.getByRole('button', { name: 'Control-C', exact: true }).tap();
    await waitRow(page, /^\^C$/, 'the ^C the tty echoes');
    await page.keyboard.type('echo "after-$((40+2))"');
    await page.keyboard.press('Enter');
    await waitRow(page, /^after-42$/, 'after-42 (^C ended sleep)');
    assert.ok(!(await rowsOf(page)).includes('not-stopped'));
    // The focus stayed in the terminal while tapping the key bar.
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('xterm-helper-textarea')), true);
    await page.screenshot({ path: path.join(artifacts, 'phone.png') });
  } finally {
    await context.close();
  }
});

/** Presses Tab until `pred` holds for the focused element, at most `max` times; returns how many. */
async function tabTo(page: Page, pred: string, max = 12): Promise<number> {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((src) => new Function('e', `return ${src}`)(document.activeElement) as boolean, pred)) return i;
  }
  throw new Error(`Tab never reached ${pred}`);
}

const focused = (page: Page) => page.evaluate(() => ({ id: document.activeElement?.id, text: document.activeElement?.textContent, cls: document.activeElement?.className, label: document.activeElement?.getAttribute('aria-label') }));

test('keyboard only: log in, Tab to an agent, Enter opens a terminal, out of it and back, Escape, focus kept', { skip }, async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const page = await context.newPage();
    await page.goto(base);
    await page.locator('#login-user:focus').waitFor();
    await page.keyboard.type('root');
    await page.keyboard.press('Tab');
    assert.equal((await focused(page)).id, 'login-pass');
    await page.keyboard.type('rootpass');
    await page.keyboard.press('Enter');
    await page.locator('#fleet-body tr[data-id="lab-device-01"]').waitFor();
    assert.equal((await focused(page)).id, 'filter', 'after login the filter box has the focus');
    // Filter box, then the first agent's buttons in order.
    const n = await tabTo(page, "e.getAttribute('aria-label') === 'Terminal lab-device-01'");
    assert.equal(n, 1, 'the first Tab after the filter reaches the first agent');
    await page.keyboard.press('Tab');
    assert.equal((await focused(page)).label, 'Run lab-device-01');
    await page.keyboard.press('Shift+Tab');
    // A second agent joins: the fleet list is redrawn, the focus stays on the button.
    await startAgent('lab-device-02');
    await page.locator('#fleet-body tr[data-id="lab-device-02"]').waitFor();
    assert.equal((await focused(page)).label, 'Terminal lab-device-01', 'the focus survives the list being redrawn');

    // Enter opens the terminal, with the focus in it.
    await page.keyboard.press('Enter');
    await page.locator('.pane.terminal[data-state="connected"]').waitFor({ timeout: 20_000 });
    await page.waitForFunction(() => document.activeElement?.classList.contains('xterm-helper-textarea'));
    await page.keyboard.type('echo $((6*7))');
    await page.keyboard.press('Enter');
    await waitRow(page, /^42$/, '42');
    // Tab belongs to the terminal (the shell gets it), Escape too.
    await page.keyboard.press('Tab');
    assert.match((await focused(page)).cls ?? '', /xterm-helper-textarea/);
    // Ctrl+Shift+Up leaves for the pane's buttons; Escape there returns into the terminal.
    await page.keyboard.press('Control+Shift+ArrowUp');
    assert.equal((await focused(page)).text, 'Close');
    await page.keyboard.press('Escape');
    assert.match((await focused(page)).cls ?? '', /xterm-helper-textarea/);
    // Out again and Enter on Close: the pane goes, the focus returns to the button that opened it.
    await page.keyboard.press('Control+Shift+ArrowUp');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelectorAll('.pane.terminal').length === 0);
    assert.equal((await focused(page)).label, 'Terminal lab-device-01');

    // Run: Enter opens it with the command field focused; Escape goes back to the Run button.
    await page.keyboard.press('Tab');
    assert.equal((await focused(page)).label, 'Run lab-device-01');
    await page.keyboard.press('Enter');
    assert.equal((await focused(page)).label, 'command');
    await page.keyboard.type('echo hi-from-keys');
    await page.keyboard.press('Enter');
    await page.locator('.pane.exec[data-state="ended"]').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('.pane.exec pre.stdout').textContent(), 'hi-from-keys\n');
    await page.locator('.pane.exec input[name=cmd]').focus();
    await page.keyboard.press('Escape');
    assert.equal((await focused(page)).label, 'Run lab-device-01');
    // Every control is visibly focused (a focus ring) when reached by keyboard.
    const ring = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    assert.equal(ring, 'solid');
  } finally {
    await context.close();
  }
});

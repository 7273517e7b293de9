/**
 * A terminal pane: xterm.js on `WS /api/agents/{id}/tty?cols=&rows=`. Binary frames both ways are
 * the terminal's bytes (keystrokes UTF-8 encoded); `{"type":"resize","cols":N,"rows":N}` is sent as
 * its own text message whenever the pane's size changes the grid; the hub's `exit`/`error` text
 * message ends the session, shown in the pane with a Reconnect button.
 *
 * Flow control: output is handed to xterm with a write callback, and the bytes xterm has not yet
 * parsed are counted. Above HIGH_WATER the pane stops reading the socket until they fall under
 * LOW_WATER; with WebSocketStream the browser then stops reading TCP, the hub's send buffer grows,
 * and the hub pauses the agent (see docs/console.md).
 */
import type { Terminal as XTerm } from '@xterm/xterm';
import type { FitAddon as XFit } from '@xterm/addon-fit';
import { el } from './dom.js';
import { describeEnd, openSocket, parseControl, type PullSocket, type SessionEnd } from './net.js';
import { uploadFile } from './files.js';

export const HIGH_WATER = 256 * 1024;
export const LOW_WATER = 32 * 1024;

type XtermModule = { Terminal: typeof XTerm };
type FitModule = { FitAddon: typeof XFit };
let modules: Promise<[XtermModule, FitModule]> | undefined;
function loadXterm(): Promise<[XtermModule, FitModule]> {
  modules ??= Promise.all([
    import(new URL('./vendor/xterm.mjs', import.meta.url).href) as Promise<XtermModule>,
    import(new URL('./vendor/addon-fit.mjs', import.meta.url).href) as Promise<FitModule>,
  ]);
  return modules;
}

export interface PaneHost {
  /** Removes the pane from the page. */
  remove(pane: HTMLElement): void;
  /** A session to `agentId` could not be opened. */
  refused?(agentId: string): void;
}

const encoder = new TextEncoder();

/**
 * Keys a phone's on-screen keyboard does not have, shown under the terminal on narrow or touch
 * screens (CSS): what each sends to the terminal.
 */
export const PHONE_KEYS: readonly (readonly [label: string, name: string, data: string])[] = [
  ['Esc', 'Escape', '\x1b'],
  ['Tab', 'Tab', '\t'],
  ['^C', 'Control-C', '\x03'],
  ['^D', 'Control-D', '\x04'],
  ['\u2190', 'Left', '\x1b[D'],
  ['\u2191', 'Up', '\x1b[A'],
  ['\u2193', 'Down', '\x1b[B'],
  ['\u2192', 'Right', '\x1b[C'],
];

/** A phone-sized viewport: a smaller font gives the terminal more columns. */
const narrow = () => typeof matchMedia === 'function' && matchMedia('(max-width: 640px)').matches;

/**
 * For tests and benchmarks only: a page that defines `window.__wirekitTest = { terminals: [] }`
 * before the console loads (Playwright's `addInitScript`) gets each pane's xterm pushed there, to
 * read its buffer (bench/console.bench.ts). Without it nothing is exposed.
 */
const testHook = (globalThis as { __wirekitTest?: { terminals?: XTerm[] } }).__wirekitTest;

export class TerminalPane {
  readonly root: HTMLElement;
  private readonly state: HTMLElement;
  private readonly cwdLabel: HTMLElement;
  private maxPending = 0;
  private pauses = 0;
  private readonly reconnectBtn: HTMLButtonElement;
  private readonly termBox: HTMLElement;
  private readonly uploadRow: HTMLElement;
  private term: XTerm | undefined;
  private fit: XFit | undefined;
  private sock: PullSocket | undefined;
  private pending = 0;
  private wake: (() => void) | undefined;
  private observer: ResizeObserver | undefined;
  private generation = 0;
  private agentGone = false;
  /** The shell's working directory, when it reports one (OSC 7). */
  cwd: string | undefined;
  /**
   * The terminal's sid (the hub's answer to `{"type":"sid"}`): without OSC 7, a dropped file is
   * uploaded with it and lands in the shell's current directory, which the agent finds itself.
   */
  sid: string | undefined;

  constructor(
    readonly agentId: string,
    private readonly host: PaneHost,
  ) {
    this.state = el('span', { class: 'state', role: 'status' }, 'connecting');
    this.reconnectBtn = el('button', { type: 'button', hidden: true }, 'Reconnect');
    this.cwdLabel = el('span', { class: 'cwd', title: 'where a file dropped here goes (the shell reports it with OSC 7; without it the agent finds the shell’s directory)' });
    const closeBtn = el('button', { type: 'button', 'aria-label': `close terminal to ${agentId}` }, 'Close');
    this.termBox = el('div', { class: 'term' });
    this.uploadRow = el('div', { class: 'files-form', hidden: true });
    const keys = el('div', { class: 'keys', role: 'toolbar', 'aria-label': 'keys a phone keyboard lacks' });
    for (const [label, name, data] of PHONE_KEYS) {
      const b = el('button', { type: 'button', 'aria-label': name, 'data-key': name }, label);
      // Keep the focus (and a phone's keyboard) in the terminal.
      b.addEventListener('pointerdown', (e) => e.preventDefault());
      b.addEventListener('click', () => {
        this.sock?.send(encoder.encode(data));
        this.term?.focus();
      });
      keys.append(b);
    }
    this.root = el(
      'section',
      { class: 'pane terminal', 'data-agent': agentId, 'aria-label': `terminal to ${agentId}` },
      el('div', { class: 'bar' }, el('span', { class: 'title' }, `terminal: ${agentId}`), this.cwdLabel, this.state, this.reconnectBtn, closeBtn),
      this.termBox,
      keys,
      this.uploadRow,
    );
    this.reconnectBtn.addEventListener('click', () => void this.connect());
    closeBtn.addEventListener('click', () => this.dispose());
    // Keyboard use: Escape on the pane's buttons goes back into the terminal (in it, Escape is the program's).
    this.root.firstElementChild!.addEventListener('keydown', (e) => {
      if ((e as KeyboardEvent).key === 'Escape') {
        e.preventDefault();
        this.term?.focus();
      }
    });
    this.root.addEventListener('dragover', (e) => {
      if (!e.dataTransfer?.types.includes('Files')) return;
      e.preventDefault();
      this.root.classList.add('dragover');
    });
    this.root.addEventListener('dragleave', () => this.root.classList.remove('dragover'));
    this.root.addEventListener('drop', (e) => {
      this.root.classList.remove('dragover');
      const files = e.dataTransfer?.files;
      if (!files || files.length === 0) return;
      e.preventDefault();
      this.dropped(Array.from(files));
    });
  }

  async start(): Promise<void> {
    const [{ Terminal }, { FitAddon }] = await loadXterm();
    // No blinking cursor: xterm's DOM renderer blinks it with a CSS animation of colours, which
    // Chromium cannot run on the compositor, so the page is restyled and repainted every frame while
    // a terminal has focus. In headless Chromium on two loaded cores that took the keystroke echo from
    // 3 ms to 7-11 ms at p50 (bench/console.bench.ts), and it costs a laptop or phone battery.
    const term = new Terminal({ cursorBlink: false, scrollback: 5000, fontFamily: 'ui-monospace, Menlo, Consolas, monospace', fontSize: narrow() ? 12 : 14, allowProposedApi: false });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(this.termBox);
    this.term = term;
    this.fit = fit;
    testHook?.terminals?.push(term);
    term.parser.registerOscHandler(7, (data) => {
      // OSC 7: file://HOST/PATH, sent by shells configured for it (see docs/console.md).
      try {
        const u = new URL(data);
        if (u.protocol === 'file:') {
          this.cwd = decodeURIComponent(u.pathname);
          this.cwdLabel.textContent = this.cwd;
          this.root.dataset.cwd = this.cwd;
        }
      } catch {
        // not a URL: ignored
      }
      return true;
    });
    // Keyboard-only use: Ctrl+Shift+Up leaves the terminal (which takes Tab) for the pane's buttons.
    term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.ctrlKey && e.shiftKey && e.key === 'ArrowUp') {
        this.root.querySelector<HTMLElement>('.bar button:not([hidden])')?.focus();
        return false;
      }
      return true;
    });
    term.onData((d) => this.sock?.send(encoder.encode(d)));
    term.onBinary((d) => {
      const b = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) b[i] = d.charCodeAt(i) & 0xff;
      this.sock?.send(b);
    });
    term.onResize(({ cols, rows }) => this.sock?.send(JSON.stringify({ type: 'resize', cols, rows })));
    let scheduled = false;
    this.observer = new ResizeObserver(() => {
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        this.refit();
      });
    });
    this.observer.observe(this.termBox);
    this.refit();
    await this.connect();
  }

  private refit(): void {
    if (!this.term || !this.fit || this.termBox.clientWidth === 0) return;
    try {
      this.fit.fit();
    } catch {
      // not laid out yet
    }
  }

  private setState(text: string, ended: boolean): void {
    this.state.textContent = text;
    this.state.classList.toggle('ended', ended);
    this.reconnectBtn.hidden = !ended;
    this.root.dataset.state = ended ? 'ended' : text;
  }

  /** Opens (or reopens) the session. */
  async connect(): Promise<void> {
    const term = this.term!;
    const gen = ++this.generation;
    this.sock?.close();
    this.sock = undefined;
    this.pending = 0;
    this.wake?.();
    this.agentGone = false;
    this.setState('connecting', false);
    this.refit();
    const q = new URLSearchParams({ cols: String(term.cols), rows: String(term.rows) });
    let sock: PullSocket;
    try {
      sock = await openSocket(`/api/agents/${encodeURIComponent(this.agentId)}/tty?${q}`);
    } catch {
      if (gen === this.generation) this.setState('could not open a terminal (agent gone, no access, or logged out)', true);
      this.host.refused?.(this.agentId);
      return;
    }
    if (gen !== this.generation) return sock.close();
    this.sock = sock;
    // A new shell: what the old one reported no longer holds.
    this.sid = this.cwd = undefined;
    this.cwdLabel.textContent = '';
    delete this.root.dataset.sid;
    delete this.root.dataset.cwd;
    this.setState(sock.backpressure ? 'connected' : 'connected (no flow control in this browser)', false);
    term.focus();
    // The grid may have changed while connecting.
    sock.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
    sock.send(JSON.stringify({ type: 'sid' }));
    let end: SessionEnd | undefined;
    for (;;) {
      if (this.pending > HIGH_WATER) {
        // Not reading: the browser stops reading the socket (WebSocketStream), the hub's buffer
        // fills and it pauses the agent.
        this.root.dataset.pauses = String(++this.pauses);
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        if (gen !== this.generation) return;
      }
      const m = await sock.read();
      if (m === null || gen !== this.generation) break;
      if (m.binary) {
        const n = m.data.length;
        this.pending += n;
        if (this.pending > this.maxPending) this.root.dataset.maxPending = String((this.maxPending = this.pending));
        term.write(m.data, () => {
          if (gen !== this.generation) return;
          this.pending -= n;
          if (this.pending <= LOW_WATER) this.wake?.();
        });
      } else {
        const c = parseControl(m.data);
        if (c?.type === 'exit' || c?.type === 'error') end = c as SessionEnd;
        else if (c?.type === 'sid') {
          const sid = (c as { data?: unknown }).data;
          if (typeof sid === 'string') this.root.dataset.sid = this.sid = sid;
        }
      }
    }
    if (gen !== this.generation) return;
    const closed = await sock.closed;
    const text = this.agentGone ? `agent left the fleet (${describeEnd(end, closed)})` : describeEnd(end, closed);
    this.setState(text, true);
    term.write(`\r\n\x1b[2m[${text}]\x1b[0m\r\n`);
    this.sock = undefined;
  }

  /** The agent left the fleet: the session cannot go on. */
  agentLeft(): void {
    this.agentGone = true;
    if (this.sock) this.setState('agent left the fleet', true);
  }

  private dropped(files: File[]): void {
    if (this.cwd !== undefined) {
      for (const f of files) void this.upload(f, joinPath(this.cwd, f.name));
      return;
    }
    // The agent knows where the shell is (its foreground program's directory): name the terminal.
    const sid = this.sid;
    if (sid !== undefined && this.sock) {
      for (const f of files) void this.upload(f, undefined, sid);
      return;
    }
    // Where the shell is nobody can tell: ask.
    const dest = el('input', { name: 'dest', 'aria-label': 'destination directory on the agent', placeholder: 'destination directory, e.g. /tmp', value: '/tmp' });
    const go = el('button', { type: 'submit' }, 'Upload');
    const cancel = el('button', { type: 'button' }, 'Cancel');
    const form = el('form', { class: 'files-form' }, `Upload ${files.map((f) => f.name).join(', ')} to `, dest, go, cancel);
    this.uploadRow.replaceChildren(form);
    this.uploadRow.hidden = false;
    dest.focus();
    cancel.addEventListener('click', () => (this.uploadRow.hidden = true));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.uploadRow.hidden = true;
      for (const f of files) void this.upload(f, joinPath(dest.value || '.', f.name));
    });
  }

  private async upload(file: File, dest: string | undefined, terminalSid?: string): Promise<void> {
    const status = el('div', { class: 'status', role: 'status' });
    this.root.append(status);
    await uploadFile(this.agentId, file, dest, status, terminalSid);
  }

  dispose(): void {
    this.generation++;
    this.wake?.();
    this.sock?.close();
    this.observer?.disconnect();
    this.term?.dispose();
    this.host.remove(this.root);
  }
}

export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

/**
 * The session endpoints of the hub's HTTP API: WebSockets for a terminal (`tty`), a program with
 * its streams apart (`exec`), Overlord's `shell` and `forward`, and file download and upload
 * (`file`, in `http-files.ts`). Each opens a session to the agent through the hub (dial-back) and
 * speaks the agent protocol to it with `AgentClient`, so the agent runs the same session code as
 * for any client. Formats: docs/hub.md, "HTTP and WebSocket API".
 *
 * Flow control: output from the agent is read only while the WebSocket's `bufferedAmount` is
 * under a bound (1 MiB by default), so a slow browser slows the agent; the WebSocket is read only
 * while the bytes waiting to go to the agent are under the same bound, so a slow agent slows the
 * browser. Either way the hub holds a bounded amount per session.
 */
import type { Duplex, Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { AgentClient } from '../agent/client.js';
import type { TerminalSession } from '../agent/sessions/terminal.js';
import type { ExitStatus } from '../agent/session-frames.js';
import { WirekitError } from '../errors.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import type { Principal } from './allowlist.js';
import { HubUsageError } from './errors.js';
import type { Hub } from './hub.js';
import type { HubHttpApi, UpgradeContext } from './http-api.js';
import { registerFileRoutes } from './http-files.js';
import { hubAgentClient } from './session-client.js';
import { recordTerminal } from './terminal-sids.js';

export interface SessionRouteOptions {
  /**
   * Bytes buffered towards the browser (the WebSocket's `bufferedAmount`) or towards the agent
   * before the hub stops reading the other side. Default 1 MiB.
   */
  highWaterMark?: number;
  /** Interval of the hub's WebSocket pings; a browser that misses two pongs is dropped. Default 30 s. */
  pingIntervalMs?: number;
  /** A file transfer whose agent or client sends nothing for this long is aborted. Default 60 s. */
  transferIdleMs?: number;
}

/** What a live WebSocket session holds, for tests and diagnostics (`liveSessions`). */
export interface SessionStats {
  readonly kind: 'tty' | 'exec' | 'shell' | 'forward';
  readonly agent: string;
  readonly user: string;
  /** Bytes queued towards the browser (WebSocket `bufferedAmount`). */
  readonly toBrowser: number;
  /** Bytes queued towards the agent (the session's input buffer and the agent connection's). */
  readonly toAgent: number;
  /** False while the hub stopped reading the agent's output (the browser is slow). */
  readonly readingAgent: boolean;
  /** False while the hub stopped reading the WebSocket (the agent is slow). */
  readonly readingBrowser: boolean;
}

/** WebSocket close codes the hub uses. */
export const WsClose = {
  NORMAL: 1000,
  /** A bad request: missing or invalid parameters (Overlord closes with 1002 for a bad port). */
  PROTOCOL: 1002,
  /** Authentication or permission. */
  POLICY: 1008,
  /** The session failed (agent error, dial-back timeout, limits). */
  INTERNAL: 1011,
} as const;

const bridges = new WeakMap<HubHttpApi, Set<Bridge>>();

/** The WebSocket sessions `api` is running now. */
export function liveSessions(api: HubHttpApi): SessionStats[] {
  return [...(bridges.get(api) ?? [])].map((b) => b.stats());
}

/** Adds the session endpoints (tty, exec, shell, forward, file) to `api`. */
export function registerSessionRoutes(api: HubHttpApi, options: SessionRouteOptions = {}): void {
  const hw = options.highWaterMark ?? 1024 * 1024;
  const pingMs = options.pingIntervalMs ?? 30_000;
  const live = new Set<Bridge>();
  bridges.set(api, live);
  const session = (kind: SessionStats['kind'], run: (b: Bridge, url: URL) => Promise<void>) => async (ctx: UpgradeContext) => {
    const agent = ctx.agent(); // 404 / 401 before the upgrade
    const ws = await ctx.accept();
    const b = new Bridge(api.hub, ws, kind, agent.id, ctx.user, hw, pingMs);
    live.add(b);
    ws.once('close', () => live.delete(b));
    try {
      await run(b, ctx.url);
    } catch (err) {
      b.fail(err);
    } finally {
      b.finish();
    }
  };
  api.websocket(/^\/api\/agents\/([^/]+)\/tty$/, session('tty', runTty));
  api.websocket(/^\/api\/agents\/([^/]+)\/exec$/, session('exec', runExec));
  api.websocket(/^\/api\/agents\/([^/]+)\/shell$/, session('shell', runShell));
  api.websocket(/^\/api\/agents\/([^/]+)\/forward$/, session('forward', runForward));
  registerFileRoutes(api, { transferIdleMs: options.transferIdleMs ?? 60_000 });
}

// ---- parameters ----

function intParam(url: URL, name: string, fallback: number): number {
  const v = url.searchParams.get(name);
  if (v === null || v === '') return fallback;
  if (!/^\d{1,5}$/.test(v)) throw new HubUsageError(`${name} must be an integer`);
  const n = Number(v);
  if (n === 0) return fallback;
  if (n > 0xffff) throw new HubUsageError(`${name} must be at most 65535`);
  return n;
}

function argvParam(url: URL, name: string, required: boolean): string[] | undefined {
  const v = url.searchParams.get(name);
  if (v === null || v === '') {
    if (required) throw new HubUsageError(`${name} required (a JSON array of strings)`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new HubUsageError(`${name} must be a JSON array of strings`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string')) {
    throw new HubUsageError(`${name} must be a non-empty JSON array of strings`);
  }
  return parsed as string[];
}

/** A client text frame as JSON control: the object, or undefined when it is not one. */
function controlMessage(data: Buffer): Record<string, unknown> | undefined {
  if (data.length > 4096) return undefined;
  try {
    const v = JSON.parse(data.toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const isDim = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 0xffff;

// ---- the bridge between one WebSocket and one agent session ----

type Message = { data: Buffer; binary: boolean };

/**
 * One WebSocket session: queues client messages until the agent session is ready, moves bytes
 * both ways under the flow-control bound, and ends the WebSocket with the agreed frames.
 */
class Bridge {
  readonly abort = new AbortController();
  /** The agent-side streams of this session (for the input bound and for cleanup). */
  private readonly agentStreams: Duplex[] = [];
  private readonly pausedSources = new Set<Readable>();
  private readonly sources = new Set<Readable>();
  private pending: Message[] | undefined = [];
  private pendingBytes = 0;
  private onMessage: ((m: Message) => void) | undefined;
  private input: Writable | undefined;
  private waitingInput = false;
  private closed = false;
  private readonly pinger: ReturnType<typeof setInterval>;
  private missedPongs = 0;
  readonly client: AgentClient;

  constructor(
    readonly hub: Hub,
    readonly ws: WebSocket,
    readonly kind: SessionStats['kind'],
    readonly agent: string,
    readonly user: Principal,
    private readonly hw: number,
    pingMs: number,
  ) {
    this.client = hubAgentClient(hub, user, agent, { signal: this.abort.signal, onStream: (s) => this.agentStreams.push(s) });
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (this.pending) {
        this.pending.push({ data, binary });
        this.pendingBytes += data.length;
        if (this.pendingBytes > this.hw) ws.pause();
      } else this.onMessage?.({ data, binary });
    });
    ws.once('close', () => {
      this.closed = true;
      this.abort.abort();
      this.cleanup();
    });
    ws.on('pong', () => (this.missedPongs = 0));
    this.pinger = setInterval(() => {
      if (++this.missedPongs > 2) ws.terminate();
      else if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, pingMs);
    this.pinger.unref?.();
  }

  get open(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  /** The agent connection of the session (the latest one opened). */
  agentConnection(): Duplex {
    const s = this.agentStreams.at(-1);
    if (!s) throw new WirekitError('WK_INTERNAL', 'session without an agent connection', { origin: 'local' });
    return s;
  }

  stats(): SessionStats {
    const toAgent = (this.input?.writableLength ?? 0) + this.agentStreams.reduce((n, s) => n + s.writableLength, 0);
    return {
      kind: this.kind,
      agent: this.agent,
      user: this.user.username,
      toBrowser: this.ws.bufferedAmount,
      toAgent,
      readingAgent: this.pausedSources.size === 0,
      readingBrowser: !this.ws.isPaused,
    };
  }

  /**
   * From now on client messages go to `handler` (those queued so far first). `input` is where
   * they are written: while it holds more than the bound, the WebSocket is not read.
   */
  start(input: Writable, handler: (m: Message) => void): void {
    this.input = input;
    this.onMessage = (m) => {
      handler(m);
      this.checkInput();
    };
    const queued = this.pending ?? [];
    this.pending = undefined;
    for (const m of queued) this.onMessage(m);
    if (!this.waitingInput && this.ws.isPaused) this.ws.resume();
  }

  /** Stops reading the WebSocket while the agent is behind. */
  private checkInput(): void {
    const input = this.input;
    if (!input || this.waitingInput) return;
    if (input.writableLength <= this.hw) return;
    this.waitingInput = true;
    this.ws.pause();
    const go = () => {
      input.off('drain', go);
      input.off('close', go);
      this.waitingInput = false;
      if (this.open) this.ws.resume();
    };
    input.on('drain', go);
    input.on('close', go);
  }

  /**
   * Sends what `src` produces as binary frames (`prefix` byte first when given), reading `src`
   * only while the WebSocket's buffer is under the bound. Resolves when `src` ends.
   */
  pipeOut(src: Readable, prefix?: number): Promise<void> {
    this.sources.add(src);
    return new Promise((resolve) => {
      const done = () => {
        this.sources.delete(src);
        this.pausedSources.delete(src);
        resolve();
      };
      src.on('data', (d: Buffer) => {
        if (!this.open) return;
        let payload = d;
        if (prefix !== undefined) {
          payload = Buffer.allocUnsafe(d.length + 1);
          payload[0] = prefix;
          d.copy(payload, 1);
        }
        this.ws.send(payload, { binary: true }, () => this.maybeResume());
        if (this.ws.bufferedAmount > this.hw) {
          this.pausedSources.add(src);
          src.pause();
        }
      });
      src.once('end', done);
      src.once('close', done);
      src.once('error', done);
    });
  }

  private maybeResume(): void {
    if (this.pausedSources.size === 0 || this.ws.bufferedAmount > this.hw / 2) return;
    for (const s of this.pausedSources) s.resume();
    this.pausedSources.clear();
  }

  sendJson(v: unknown): void {
    if (this.open) this.ws.send(JSON.stringify(v));
  }

  sendExit(status: ExitStatus): void {
    this.sendJson({ type: 'exit', code: status.code, signal: status.signal });
  }

  close(code: number, reason = ''): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, truncateReason(reason));
  }

  /**
   * Ends the session with an error: tty and exec get an error frame first; shell and forward
   * (Overlord's shape, bytes only) get the message as the close reason.
   */
  fail(err: unknown): void {
    const { code, message } = describeError(err);
    if (this.kind === 'tty' || this.kind === 'exec') this.sendJson({ type: 'error', code, message });
    this.close(closeCodeFor(code), message);
  }

  /** Called when the session's run ended, however it ended. */
  finish(): void {
    this.close(WsClose.NORMAL);
    this.cleanup();
  }

  private cleanup(): void {
    clearInterval(this.pinger);
    for (const s of this.sources) s.destroy();
    this.sources.clear();
    this.pausedSources.clear();
    if (this.closed) for (const s of this.agentStreams) s.destroy();
  }
}

function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof RemoteCommandError) return { code: err.remoteCode ?? err.code, message: err.serverMessage };
  if (err instanceof WirekitError) return { code: err.code, message: err.message };
  return { code: 'WK_INTERNAL', message: 'internal error' };
}

function closeCodeFor(code: string): number {
  if (code === 'WK_AUTH' || code === 'WK_PERMISSION') return WsClose.POLICY;
  if (code === 'WK_USAGE') return WsClose.PROTOCOL;
  return WsClose.INTERNAL;
}

/** A close reason fits in 123 bytes of UTF-8; cut on a character boundary. */
export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = '';
  for (const ch of reason) {
    if (Buffer.byteLength(out + ch) > 120) break;
    out += ch;
  }
  return out + '...';
}

// ---- the endpoints ----

// eslint-disable-next-line no-control-regex -- ESC is what the sequence starts with
const OVERLORD_RESIZE = /^\x1b\[8;(\d{1,5});(\d{1,5})t$/;

async function runTty(b: Bridge, url: URL): Promise<void> {
  const cols = intParam(url, 'cols', 80);
  const rows = intParam(url, 'rows', 24);
  const argv = argvParam(url, 'command', false);
  const term = await b.client.terminal({ argv, cols, rows });
  if (!b.open) return term.close();
  // The terminal's sid, which uploads name to land in its shell's current directory (terminal-sids.ts).
  const named = recordTerminal(b.hub, b.agent, b.user.username, term.reply);
  try {
    await relayTty(b, term, named?.sid);
  } finally {
    named?.forget();
  }
}

async function relayTty(b: Bridge, term: TerminalSession, sid: string | undefined): Promise<void> {
  const out = b.pipeOut(term.output);
  // Which client this is: one whose first frame is one of Overlord's forms (text keystrokes, the
  // text resize) and that sends only those is Overlord's dashboard or ovl: it gets the sid frame
  // and no exit frame (overlordd sends none, and the dashboard would write it into the terminal);
  // a binary frame or a JSON control: a wirekit client.
  let overlordOnly: boolean | undefined;
  // Terminal input goes straight to the agent connection: its buffer is the one to bound.
  b.start(b.agentConnection(), (m) => {
    if (m.binary) {
      overlordOnly = false;
      return term.write(m.data);
    }
    // A JSON object is a control message (an unknown or invalid one is ignored, never typed).
    const c = controlMessage(m.data);
    if (c) {
      overlordOnly = false;
      if (c.type === 'resize' && isDim(c.cols) && isDim(c.rows)) term.resize(c.cols, c.rows);
      // A wirekit client (the console) asks for the sid: `{"type":"sid"}`.
      else if (c.type === 'sid' && sid !== undefined) b.sendJson({ type: 'sid', data: sid });
      return;
    }
    if (overlordOnly === undefined) {
      overlordOnly = true;
      // As overlordd: the terminal's sid first, `{"type":"sid","data":SID}` (a ghost's own, or the
      // hub's for a wirekit agent's terminal). The dashboard names the terminal by it in uploads
      // (`terminal_sid`) and matches the monitor's `file download` events (ghost.py --download) with it.
      if (sid !== undefined) b.sendJson({ type: 'sid', data: sid });
    }
    // Overlord's clients: a frame that is exactly `ESC [ 8 ; rows ; cols t` is a resize (ovl, the
    // dashboard); any other text is keystrokes (ovl sends one text frame per key).
    const r = OVERLORD_RESIZE.exec(m.data.toString('latin1'));
    if (r) {
      const rows = Number(r[1]);
      const cols = Number(r[2]);
      if (isDim(cols) && isDim(rows)) term.resize(cols, rows);
      return;
    }
    term.write(m.data);
  });
  const [status] = await Promise.allSettled([term.exit, out]);
  if (status.status === 'rejected') throw status.reason;
  if (overlordOnly !== true) b.sendExit(status.value);
}


const SIGNALS = /^SIG[A-Z0-9]{1,12}$/;

async function runExec(b: Bridge, url: URL): Promise<void> {
  const argv = argvParam(url, 'argv', true)!;
  const cwd = url.searchParams.get('cwd') || undefined;
  const ex = await b.client.exec(argv, { cwd });
  if (!b.open) return ex.close();
  const outs = Promise.all([b.pipeOut(ex.stdout, 1), b.pipeOut(ex.stderr, 2)]);
  ex.stdin.on('error', () => {});
  b.start(ex.stdin, (m) => {
    if (m.binary) {
      if (!ex.stdin.writableEnded) ex.stdin.write(m.data);
      return;
    }
    const c = controlMessage(m.data);
    if (c?.type === 'stdinClose') ex.stdin.end();
    else if (c?.type === 'signal' && typeof c.signal === 'string' && SIGNALS.test(c.signal)) ex.signal(c.signal as NodeJS.Signals);
  });
  const [status] = await Promise.allSettled([ex.exit, outs]);
  if (status.status === 'rejected') throw status.reason;
  b.sendExit(status.value);
}

async function runShell(b: Bridge, url: URL): Promise<void> {
  const command = url.searchParams.get('command');
  if (!command) throw new HubUsageError('no command specified');
  const ex = await b.client.exec(['sh', '-c', command]);
  if (!b.open) return ex.close();
  const outs = Promise.all([b.pipeOut(ex.stdout), b.pipeOut(ex.stderr)]);
  ex.stdin.on('error', () => {});
  b.start(ex.stdin, (m) => {
    if (ex.stdin.writableEnded) return;
    // Overlord's relay: every frame is stdin, except a JSON text frame of type stdin_close.
    if (!m.binary && controlMessage(m.data)?.type === 'stdin_close') ex.stdin.end();
    else ex.stdin.write(m.data);
  });
  const [status] = await Promise.allSettled([ex.exit, outs]);
  if (status.status === 'rejected') throw status.reason;
}

async function runForward(b: Bridge, url: URL): Promise<void> {
  const portText = url.searchParams.get('port');
  if (portText === null || portText === '') throw new HubUsageError('no port specified');
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new HubUsageError('invalid port');
  const host = url.searchParams.get('host') || '127.0.0.1';
  const conn = await b.client.forward(host, port);
  if (!b.open) return void conn.destroy();
  conn.on('error', () => {});
  const out = b.pipeOut(conn);
  b.start(conn, (m) => {
    if (!conn.writableEnded && !conn.destroyed) conn.write(m.data);
  });
  await out;
}

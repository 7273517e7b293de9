/**
 * Terminal sessions: a program (the user's shell by default) under a pseudo-terminal (node-pty).
 * Daemon half (`terminalKind`): options, reply `{}`, then DATA/RESIZE/SIGNAL frames in and
 * DATA/EXIT frames out. Client half (`clientTerminal`).
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import os from 'node:os';
import { PassThrough, type Duplex } from 'node:stream';
import type { FrameStream } from '../frame-stream.js';
import type { Logger } from '../log.js';
import { decodeResize, encodeExit, encodeResize, FrameType, type ExitStatus } from '../session-frames.js';
import type { ClientContext, SessionKind } from './context.js';
import { reportSessionError, runClientSession, writeOut } from './frames.js';
import { badOptions, envRecord, stringArray } from './options.js';
import { sessionCwd, sessionEnv, sessionUser } from './environment.js';
import { grace, killSession, signalName, signalSession, startSupervisor } from './process.js';
import { terminalSlot, type TerminalSlot } from './terminal-registry.js';

/** Options of a terminal session. */
export interface TerminalOptions {
  argv?: string[];
  cols?: number;
  rows?: number;
  cwd?: string;
  env?: Record<string, string>;
  term?: string;
  /** Its id, for uploads that name the terminal (terminal-registry.ts). */
  slot?: TerminalSlot;
}

/** Checks the `opts` of a terminal request. */
export function parseTerminalOptions(o: Record<string, unknown>): TerminalOptions {
  const argv = o.argv === undefined ? undefined : stringArray(o.argv, 'argv');
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffff ? v : d);
  if (o.cwd !== undefined && typeof o.cwd !== 'string') throw badOptions('cwd must be a string');
  return { argv, cols: num(o.cols, 80), rows: num(o.rows, 24), cwd: o.cwd as string | undefined, env: envRecord(o.env), term: typeof o.term === 'string' ? o.term : undefined };
}

/**
 * Opens the terminal's slave side once more and keeps it open until the exit. On Linux, reading
 * the master fails with EIO as soon as the last slave descriptor closes, and node-pty then drops
 * output the program wrote just before exiting (microsoft/node-pty#726, #85: fast programs lose
 * their last kilobytes). With our descriptor open the master never sees EIO; node-pty still ends
 * the read side 200 ms after the program's exit, by which time the output has been read.
 */
function holdSlave(term: unknown): number | undefined {
  const name = (term as { ptsName?: unknown }).ptsName;
  if (typeof name !== 'string' || !name.startsWith('/dev/')) return undefined;
  try {
    return openSync(name, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
  } catch {
    return undefined;
  }
}

/** How long a detached terminal's processes have between SIGHUP and SIGKILL. */
export const HANGUP_GRACE_MS = 2000;

/**
 * Runs a terminal session under node-pty. The program leads its own Unix session (node-pty starts
 * it with `setsid`); when the session ends, nothing of that Unix session is left: a client gone
 * first sends SIGHUP to all its processes, then SIGKILL after `HANGUP_GRACE_MS`; after the
 * program's exit what it left behind is killed. A supervisor does the same if the daemon dies.
 */
export async function runTerminal(fs: FrameStream, opts: TerminalOptions, log: Logger): Promise<void> {
  const pty = await import('node-pty');
  const user = sessionUser();
  const argv = opts.argv ?? [user.shell];
  const supervisor = startSupervisor(log);
  try {
    await runTerminalWith(pty, fs, argv, user, opts, log, (pid) => supervisor.watch(pid));
  } finally {
    supervisor.release();
  }
}

async function runTerminalWith(
  pty: typeof import('node-pty'),
  fs: FrameStream,
  argv: string[],
  user: ReturnType<typeof sessionUser>,
  opts: TerminalOptions,
  log: Logger,
  started: (pid: number) => void,
): Promise<void> {
  const name = opts.term ?? 'xterm-256color';
  const term = pty.spawn(argv[0]!, argv.slice(1), {
    name,
    cols: opts.cols ?? 80,
    rows: opts.rows ?? 24,
    cwd: opts.cwd ?? user.home,
    env: sessionEnv(opts.env, { term: name, user }),
    encoding: null,
  } as Parameters<typeof pty.spawn>[2]);
  started(term.pid);
  let holder = holdSlave(term);
  const release = () => {
    if (holder !== undefined) closeSync(holder);
    holder = undefined;
  };
  let finished = false;
  const exited = new Promise<void>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      finished = true;
      release();
      // node-pty (Unix) reports the exit only after the pty's read side closed, and our hold on
      // the slave kept that from happening before the output was read: it is complete.
      const sig = signal ? Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0] ?? `SIG${signal}` : null;
      fs.send(FrameType.EXIT, encodeExit({ code: sig ? null : exitCode, signal: sig }));
      fs.end();
      resolve();
    });
  });
  opts.slot?.attach(term.pid, exited);
  term.onData((d: string | Uint8Array) => {
    const bytes = typeof d === 'string' ? Buffer.from(d, 'utf8') : d;
    if (!fs.send(FrameType.DATA, bytes)) {
      term.pause();
      fs.drained().then(
        () => term.resume(),
        () => term.resume(),
      );
    }
  });
  try {
    await fs.run((f) => {
      switch (f.type) {
        case FrameType.DATA:
          if (!finished) term.write(Buffer.from(f.payload.buffer, f.payload.byteOffset, f.payload.length));
          return;
        case FrameType.RESIZE: {
          const { cols, rows } = decodeResize(f.payload);
          if (!finished) term.resize(cols, rows);
          return;
        }
        case FrameType.SIGNAL:
          if (!finished) term.kill(signalName(f.payload));
          return;
        case FrameType.EOF:
          return;
        default:
          throw badOptions(`unexpected frame type ${f.type} in a terminal session`);
      }
    });
  } catch (err) {
    reportSessionError(fs, 'terminal', err, log);
  }
  if (!finished) {
    // Detached, or the client went away: hang up the whole session, not only its leader.
    signalSession(term.pid, 'SIGHUP');
    await Promise.race([exited, grace(HANGUP_GRACE_MS)]);
  } else await exited;
  killSession(term.pid, finished); // finished: node-pty reaped the program

  if (!finished) {
    try {
      term.kill('SIGKILL');
    } catch {
      // gone
    }
  }
  release();
  fs.close();
}

/** Daemon half of the `terminal` command. */
export const terminalKind: SessionKind<TerminalOptions, TerminalOptions> = {
  cmd: 'terminal',
  async parse(opts, ctx) {
    const to = parseTerminalOptions(opts);
    to.cwd = await sessionCwd(to.cwd, ctx);
    return to;
  },
  prepare: (options, ctx) => ({ ...options, slot: terminalSlot(ctx) }),
  reply: (options) => ({ id: options.slot?.id }),
  run(options, io: Duplex, ctx) {
    ctx.log.info(`terminal ${JSON.stringify(options.argv ?? 'shell')}`);
    return runTerminal(ctx.frames(io), options, ctx.log);
  },
};

/** A running terminal session. */
export interface TerminalSession {
  /** Terminal output. */
  output: PassThrough;
  write(data: Uint8Array | string): void;
  resize(cols: number, rows: number): void;
  exit: Promise<ExitStatus>;
  close(): void;
  /**
   * The terminal command's reply: `{}` from a wirekit agent; the hub's Overlord ghost terminals
   * add `sid`, the ghost's terminal session id (Overlord's dashboard is told it).
   */
  readonly reply: unknown;
}

/** What the client asks for when it opens a terminal. */
export interface ClientTerminalOptions {
  argv?: string[];
  cols?: number;
  rows?: number;
  env?: Record<string, string>;
  cwd?: string;
  term?: string;
}

/** Client half: runs a shell (or `argv`) under a pseudo-terminal on the daemon. */
export async function clientTerminal(client: ClientContext, opts: ClientTerminalOptions = {}): Promise<TerminalSession> {
  const { reply, stream } = await client.open('terminal', { ...opts });
  const fs = client.frames(stream);
  const output = new PassThrough();
  const exit = runClientSession('terminal', fs, async (f) => {
    if (f.type !== FrameType.DATA) return false;
    await writeOut(output, f.payload);
    return true;
  }).finally(() => output.end());
  exit.catch(() => {});
  return {
    output,
    write: (d) => void fs.send(FrameType.DATA, typeof d === 'string' ? Buffer.from(d, 'utf8') : d),
    resize: (cols, rows) => void fs.send(FrameType.RESIZE, encodeResize(cols, rows)),
    exit,
    close: () => fs.close(),
    reply,
  };
}

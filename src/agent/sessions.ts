/**
 * Daemon-side session drivers: each takes an accepted command and the connection, already
 * switched to the session's data protocol, and runs until the session ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { utf8Decode } from '../bytes/text.js';
import { WirekitError } from '../errors.js';
import { SessionProtocolError } from './errors.js';
import type { FrameStream } from './frame-stream.js';
import type { Logger } from './log.js';
import { decodeResize, encodeError, encodeExit, FrameType, type ExitStatus, type SessionFrame } from './session-frames.js';
import { receiveFile, sendFile, type CollectGarbage } from './file-pump.js';
import { TransferReceiver } from './transfer.js';

/** Options of an exec session (the `exec` command's `opts`). */
export interface ExecOptions {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
}

/** Options of a terminal session. */
export interface TerminalOptions {
  argv?: string[];
  cols?: number;
  rows?: number;
  cwd?: string;
  env?: Record<string, string>;
  term?: string;
}

function bad(message: string): SessionProtocolError {
  return new SessionProtocolError(message);
}

function stringArray(v: unknown, what: string, allowEmpty = false): string[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0) || !v.every((x) => typeof x === 'string' && !x.includes('\0'))) {
    throw bad(`${what} must be a non-empty array of strings`);
  }
  return v as string[];
}

function envRecord(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('env must be an object of strings');
  for (const [k, x] of Object.entries(v)) if (typeof x !== 'string' || k.includes('=') || k.includes('\0')) throw bad('env must be an object of strings');
  return v as Record<string, string>;
}

/** Checks the `opts` of an exec request. */
export function parseExecOptions(o: Record<string, unknown>): ExecOptions {
  const argv = stringArray(o.argv, 'argv');
  if (o.cwd !== undefined && typeof o.cwd !== 'string') throw bad('cwd must be a string');
  return { argv, cwd: o.cwd as string | undefined, env: envRecord(o.env) };
}

/** Checks the `opts` of a terminal request. */
export function parseTerminalOptions(o: Record<string, unknown>): TerminalOptions {
  const argv = o.argv === undefined ? undefined : stringArray(o.argv, 'argv');
  const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffff ? v : d);
  if (o.cwd !== undefined && typeof o.cwd !== 'string') throw bad('cwd must be a string');
  return { argv, cols: num(o.cols, 80), rows: num(o.rows, 24), cwd: o.cwd as string | undefined, env: envRecord(o.env), term: typeof o.term === 'string' ? o.term : undefined };
}

function signalName(payload: Uint8Array): NodeJS.Signals {
  const name = utf8Decode(payload);
  if (!Object.hasOwn(os.constants.signals, name)) throw bad(`unknown signal ${JSON.stringify(name)}`);
  return name as NodeJS.Signals;
}

function killTree(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/**
 * The error for a program that could not be started: `WK_NO_PROGRAM` when it does not exist
 * (a shell's exit status 127), `WK_NOT_EXECUTABLE` when it may not be run (126), else `WK_SPAWN`.
 */
export function spawnError(program: string, err: NodeJS.ErrnoException): WirekitError {
  const code = err.code === 'ENOENT' ? 'WK_NO_PROGRAM' : err.code === 'EACCES' || err.code === 'EISDIR' || err.code === 'ENOEXEC' ? 'WK_NOT_EXECUTABLE' : 'WK_SPAWN';
  const what = code === 'WK_NO_PROGRAM' ? 'no such program' : code === 'WK_NOT_EXECUTABLE' ? 'not executable' : 'cannot start';
  return new WirekitError(code, `${program}: ${what} (${err.code ?? err.message})`, { origin: 'local', cause: err });
}

/**
 * Starts a program for an exec session; resolves once it is running (rejects with the spawn
 * error, e.g. ENOENT, so the command can be refused before the switch).
 */
export function startExec(opts: ExecOptions): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(opts.argv[0]!, opts.argv.slice(1), {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: 'pipe',
      detached: true, // own process group, so the whole tree can be killed
    });
    child.once('spawn', () => resolve(child));
    child.once('error', (err: NodeJS.ErrnoException) => reject(spawnError(opts.argv[0]!, err)));
  });
}

async function writeWithBackpressure(w: NodeJS.WritableStream & { destroyed?: boolean }, data: Uint8Array): Promise<void> {
  if (w.destroyed) return;
  if (w.write(data)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      w.removeListener('drain', done);
      w.removeListener('close', done);
      w.removeListener('error', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
    w.on('error', done);
  });
}

function pump(src: NodeJS.ReadableStream, fs: FrameStream, type: typeof FrameType.STDOUT | typeof FrameType.STDERR | typeof FrameType.DATA): Promise<void> {
  return new Promise((resolve) => {
    src.on('data', (d: Uint8Array) => {
      if (!fs.send(type, d)) {
        src.pause();
        fs.drained().then(
          () => src.resume(),
          () => src.resume(),
        );
      }
    });
    src.on('end', resolve);
    src.on('close', resolve);
    src.on('error', resolve);
  });
}

/** Runs an exec session on a started child. Resolves when it ends (either side). */
export async function runExec(fs: FrameStream, child: ChildProcess, log: Logger): Promise<void> {
  child.stdin!.on('error', () => {});
  const outs = Promise.all([pump(child.stdout!, fs, FrameType.STDOUT), pump(child.stderr!, fs, FrameType.STDERR)]);
  const exited = new Promise<ExitStatus>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let finished = false;
  const done = (async () => {
    const status = await exited;
    await outs;
    finished = true;
    fs.send(FrameType.EXIT, encodeExit(status));
    fs.end();
  })();
  try {
    await fs.run(async (f: SessionFrame) => {
      switch (f.type) {
        case FrameType.DATA:
          await writeWithBackpressure(child.stdin!, f.payload);
          return;
        case FrameType.EOF:
          child.stdin!.end();
          return;
        case FrameType.SIGNAL:
          killTree(child, signalName(f.payload));
          return;
        default:
          throw bad(`unexpected ${f.type} frame in an exec session`);
      }
    });
  } catch (err) {
    log.debug(`exec session: ${(err as Error).message}`);
    if (err instanceof WirekitError && err.code !== 'WK_PEER_DEAD' && err.code !== 'WK_CONNECTION_CLOSED') fs.send(FrameType.ERROR, encodeError(err.code, err.message));
  }
  if (!finished) {
    // The client went away (or broke the protocol) before the program ended.
    killTree(child, 'SIGKILL');
    child.stdin!.destroy();
    await Promise.race([done, new Promise((r) => setTimeout(r, 2000).unref())]);
  } else {
    await done;
  }
  fs.close();
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

/** Runs a terminal session under node-pty. */
export async function runTerminal(fs: FrameStream, opts: TerminalOptions, log: Logger): Promise<void> {
  const pty = await import('node-pty');
  const argv = opts.argv ?? [process.env.SHELL || '/bin/sh'];
  const term = pty.spawn(argv[0]!, argv.slice(1), {
    name: opts.term ?? 'xterm-256color',
    cols: opts.cols ?? 80,
    rows: opts.rows ?? 24,
    cwd: opts.cwd ?? process.env.HOME ?? process.cwd(),
    env: { ...process.env, ...(opts.env ?? {}) } as Record<string, string>,
    encoding: null,
  } as Parameters<typeof pty.spawn>[2]);
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
          throw bad(`unexpected frame type ${f.type} in a terminal session`);
      }
    });
  } catch (err) {
    log.debug(`terminal session: ${(err as Error).message}`);
    if (err instanceof WirekitError && err.code !== 'WK_PEER_DEAD' && err.code !== 'WK_CONNECTION_CLOSED') fs.send(FrameType.ERROR, encodeError(err.code, err.message));
  }
  if (!finished) {
    try {
      term.kill('SIGHUP');
    } catch {
      // gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000).unref())]);
    if (!finished) {
      try {
        term.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  } else await exited;
  release();
  fs.close();
}

/** Connects to the forward target; resolves once connected (so failures are refused before the switch). */
export function connectTarget(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new WirekitError('WK_TIMEOUT', `connect to ${host}:${port} timed out after ${timeoutMs} ms`, { origin: 'local' }));
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new WirekitError('WK_CONNECT', `cannot connect to ${host}:${port}: ${err.message}`, { origin: 'local', cause: err }));
    });
  });
}

/**
 * Runs a forward session: DATA frames go to the target, the target's bytes come back as DATA;
 * EOF in either direction half-closes the other side. Ends when both directions have ended.
 */
export async function runForward(fs: FrameStream, target: net.Socket, log: Logger): Promise<void> {
  let targetEnded = false;
  const targetDone = new Promise<void>((resolve) => {
    target.on('data', (d: Uint8Array) => {
      if (!fs.send(FrameType.DATA, d)) {
        target.pause();
        fs.drained().then(
          () => target.resume(),
          () => target.resume(),
        );
      }
    });
    target.on('end', () => {
      targetEnded = true;
      fs.send(FrameType.EOF);
      resolve();
    });
    target.on('error', (err) => {
      log.debug(`forward target: ${err.message}`);
      fs.send(FrameType.ERROR, encodeError('WK_CONNECT', `target connection failed: ${err.message}`));
      resolve();
    });
    target.on('close', () => resolve());
  });
  let clientEof = false;
  try {
    await fs.run(async (f) => {
      if (f.type === FrameType.DATA) await writeWithBackpressure(target, f.payload);
      else if (f.type === FrameType.EOF) {
        clientEof = true;
        target.end();
      } else throw bad(`unexpected frame type ${f.type} in a forward session`);
    });
  } catch (err) {
    log.debug(`forward session: ${(err as Error).message}`);
  }
  if (clientEof && !targetEnded) {
    // The client ended its side after EOF; wait for the target to finish.
    await Promise.race([targetDone, new Promise((r) => setTimeout(r, 2000).unref())]);
  }
  target.destroy();
  fs.close();
}

/** A reply channel for transfer progress and the final result (the control lines). */
export interface TransferReplies {
  progress(p: unknown): Promise<void> | void;
  ok(r: unknown): Promise<void> | void;
  fail(err: unknown): Promise<void> | void;
}

/** An upload prepared before the switch: the destination was checked and the temp file created. */
export interface PreparedUpload {
  dest: string;
  temp: string;
  out: FileHandle;
  size: number;
  mode: number | undefined;
}

/** Options of an upload as the daemon runs it. */
export interface UploadOptions {
  /** Flush the file to stable storage before the rename (default false, like cp and rsync). */
  fsync?: boolean;
  /** Bytes between progress replies (default 8 MiB). */
  progressEvery?: number;
  /** Releases spent socket buffers now and then (see `ReceiveFileOptions.collectGarbage`). */
  collectGarbage?: CollectGarbage;
}

/** The name of the temporary file an upload or download of `dest` is written to. */
export function tempNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.wirekit-${randomBytes(6).toString('hex')}.part`);
}

/** Creates the temporary file next to `dest` (mode 0600, exclusive) and opens it for writing. */
export async function prepareUpload(dest: string, size: number, mode: number | undefined): Promise<PreparedUpload> {
  const dir = path.dirname(dest);
  const st = await stat(dir);
  if (!st.isDirectory()) throw new WirekitError('WK_NOT_DIR', `${dir} is not a directory`, { origin: 'local' });
  try {
    if ((await stat(dest)).isDirectory()) throw new WirekitError('WK_IS_DIR', `${dest} is a directory`, { origin: 'local' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const temp = tempNameFor(dest);
  const out = await open(temp, 'wx', 0o600);
  return { dest, temp, out, size, mode };
}

/**
 * Receives a file into the open temporary file `out` through `rx`, then sets its mode and renames
 * it to `dest`. On any failure the temporary file is closed and removed and the error rethrown.
 */
export async function commitReceivedFile(
  io: Duplex,
  rx: TransferReceiver,
  out: FileHandle,
  temp: string,
  dest: string,
  mode: number | undefined,
  opts: { fsync?: boolean; onProgress?: (bytes: number) => void; collectGarbage?: CollectGarbage } = {},
): Promise<void> {
  let committed = false;
  try {
    await receiveFile(io, rx, out, { onProgress: opts.onProgress, collectGarbage: opts.collectGarbage });
    if (mode !== undefined) await out.chmod(mode & 0o7777);
    if (opts.fsync) await out.datasync();
    await out.close();
    await rename(temp, dest);
    committed = true;
  } finally {
    if (!committed) {
      await out.close().catch(() => {});
      await unlink(temp).catch(() => {});
    }
  }
}

/**
 * Receives an upload from the raw stream `io`: data, then the digest; writes to the temp file,
 * and renames it into place only when complete and verified. Any failure removes the temp file.
 */
export async function runUpload(io: Duplex, up: PreparedUpload, replies: TransferReplies, log: Logger, opts: UploadOptions = {}): Promise<void> {
  const rx = new TransferReceiver(up.size, null);
  const every = opts.progressEvery ?? 8 * 1024 * 1024;
  let nextProgress = every;
  try {
    await commitReceivedFile(io, rx, up.out, up.temp, up.dest, up.mode, {
      fsync: opts.fsync,
      collectGarbage: opts.collectGarbage,
      onProgress: (bytes) => {
        if (bytes < nextProgress) return;
        nextProgress = bytes + every;
        void replies.progress({ bytes, size: up.size });
      },
    });
    await replies.ok({ path: up.dest, size: up.size, sha256: rx.sha256 });
    log.info(`upload ${up.dest}: ${up.size} bytes`);
  } catch (err) {
    log.warn(`upload ${up.dest} failed: ${(err as Error).message}`);
    await Promise.resolve(replies.fail(err)).catch(() => {});
  }
  io.end();
}

/** Opens a file for download: resolves with its handle, size and mode (regular files only). */
export async function prepareDownload(file: string): Promise<{ handle: FileHandle; size: number; mode: number }> {
  const handle = await open(file, 'r');
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new WirekitError('WK_NOT_FILE', `${file} is not a regular file`, { origin: 'local' });
    return { handle, size: st.size, mode: st.mode & 0o7777 };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Sends exactly `size` bytes of the file, then their SHA-256. */
export async function runDownload(io: Duplex, dl: { handle: FileHandle; size: number }, log: Logger): Promise<void> {
  try {
    const digest = await sendFile(dl.handle, dl.size, io);
    io.end(digest);
  } catch (err) {
    log.warn(`download failed: ${(err as Error).message}`);
    io.destroy();
  } finally {
    await dl.handle.close().catch(() => {});
  }
}

/**
 * The pattern the `%base64$` delimited protocol was made for: a parent process creates the server, starts a child script
 * with the socket path as its last argument, waits for it to connect and shake hands, exchanges
 * messages with it, tells it to quit and reaps it.
 *
 * Unlike the original, a child that dies early (or cannot be started) is reported with its exit
 * code and the tail of its stderr instead of leaving the parent blocked in `accept()` or `recv()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { withWait, type WaitOptions } from '../../channels/index.js';
import { TruncatedFrameError } from '../../codecs/index.js';
import { ConnectionClosedError } from '../../errors.js';
import { waitOptions, type DelimitedConnection, type DelimitedMessage, type MessageOptions } from './node-connection.js';
import { ChildExitedError } from './errors.js';
import { DelimitedServer, DEFAULT_ACCEPT_TIMEOUT } from './node-server.js';

export interface LaunchOptions extends MessageOptions {
  /** Program to run (e.g. `process.execPath`, `'python3'`). */
  command: string;
  /** Arguments; the socket path is appended as the last one. */
  args?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Where to create the socket. Default: `sock` in a fresh private directory under `os.tmpdir()`. */
  socketPath?: string;
  /** Time for the child to start, connect and complete the handshake, in ms. Default 30 000. */
  timeout?: number;
  /** Time for the handshake once the child connected, in ms. Default 10 000 (and at most `timeout`). */
  handshakeTimeout?: number;
  /** Cancels the launch (the child is killed). */
  signal?: AbortSignal;
  /** The child's stdout: inherited (default), ignored, or piped to `session.child.stdout`. */
  stdout?: 'inherit' | 'ignore' | 'pipe';
  /** How many bytes of the child's stderr to keep for error reports. Default 64 KiB. */
  stderrLimit?: number;
  /** Also copy the child's stderr to this process's stderr. Default false. */
  forwardStderr?: boolean;
}

/** How a child ended. */
export interface ChildExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started. */
  error?: Error;
}

export interface QuitOptions {
  /** The message that tells the child to stop. Default `'QUIT'` as in the original callers. */
  message?: DelimitedMessage;
  /** Time the child gets to exit after the message, in ms, before SIGTERM (then SIGKILL). Default 5000. */
  timeout?: number;
}

/** How long to wait for the child's exit status after its socket closed. */
const EXIT_GRACE_MS = 2000;
/** Between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;

class StderrTail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * A running child connected over the delimited protocol. `send`/`receive` talk to it; `quit()`
 * ends it; `kill()` ends it at once.
 */
export class ChildSession<T extends DelimitedMessage = string> {
  private finished = false;

  /** @internal created by `launchChild()`. */
  constructor(
    /** The child process. */
    readonly child: ChildProcess,
    /** The handshaken connection to it. */
    readonly connection: DelimitedConnection<T>,
    /** Resolves when the child has exited and its stderr is read. */
    readonly exited: Promise<ChildExit>,
    private readonly stderrTail: StderrTail,
    private readonly cleanup: () => Promise<void>,
  ) {}

  /** What the child wrote to stderr so far (the last `stderrLimit` bytes). */
  get stderr(): string {
    return this.stderrTail.toString();
  }

  /** Sends one message to the child. */
  async send(message: T, options?: WaitOptions): Promise<void> {
    try {
      await this.connection.send(message, options);
    } catch (err) {
      throw await this.explain(err, 'while the parent was sending');
    }
  }

  /**
   * Receives the child's next message. If the child closed the connection, rejects with
   * `ChildExitedError` carrying its exit code and stderr (or `ConnectionClosedError` if it closed
   * the socket but is still running).
   */
  async receive(options?: WaitOptions): Promise<T> {
    try {
      return await this.connection.receive(options);
    } catch (err) {
      throw await this.explain(err, 'while the parent waited for a message');
    }
  }

  /** Sends `message` and returns the child's reply. */
  async request(message: T, options?: WaitOptions): Promise<T> {
    await this.send(message, options);
    return this.receive(options);
  }

  /**
   * Tells the child to quit (sends `QUIT`), waits for it to exit, kills it if it does not in time,
   * and releases the socket. Resolves with how it ended; never hangs.
   */
  async quit(options: QuitOptions = {}): Promise<ChildExit> {
    if (!this.finished) {
      try {
        await this.connection.send((options.message ?? 'QUIT') as T, { timeout: options.timeout ?? 5000 });
        await this.connection.end();
      } catch {
        // The child may already be gone; its exit status tells.
      }
    }
    return this.reap(options.timeout ?? 5000);
  }

  /** Kills the child (SIGTERM, then SIGKILL) and releases the socket. */
  kill(): Promise<ChildExit> {
    return this.reap(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }

  private async reap(grace: number): Promise<ChildExit> {
    this.finished = true;
    try {
      const status = await waitExit(this.child, this.exited, grace);
      return status;
    } finally {
      this.connection.close();
      await this.cleanup();
    }
  }

  private async explain(err: unknown, what: string): Promise<unknown> {
    if (!(err instanceof ConnectionClosedError || err instanceof TruncatedFrameError)) return err;
    const status = await Promise.race([this.exited, delay(EXIT_GRACE_MS).then(() => undefined)]);
    if (!status) return err;
    return new ChildExitedError(what, status.exitCode, status.signal, this.stderr, err);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Waits `grace` ms for the child to exit, then SIGTERM, then SIGKILL. */
async function waitExit(child: ChildProcess, exited: Promise<ChildExit>, grace: number): Promise<ChildExit> {
  const within = async (ms: number) => Promise.race([exited, delay(ms).then(() => undefined)]);
  let status = grace > 0 ? await within(grace) : undefined;
  if (status) return status;
  child.kill('SIGTERM');
  status = await within(KILL_GRACE_MS);
  if (status) return status;
  child.kill('SIGKILL');
  return exited;
}

/**
 * Starts `command ...args socketPath`, waits for the child to connect and complete the READY/OK
 * handshake, and returns the session. Rejects with `ChildExitedError` (exit code and stderr) if the
 * child exits or cannot be started first, `TimeoutError` if it does not connect in time (it is
 * then killed), `HandshakeError` if it connects but does not say READY.
 *
 * ```ts
 * const child = await launchChild({ command: 'python3', args: ['worker.py'], timeout: 10_000 });
 * const answer = await child.request('do something', { timeout: 5000 });
 * const { exitCode } = await child.quit();
 * ```
 */
export function launchChild(options: LaunchOptions & { binary: true }): Promise<ChildSession<Uint8Array>>;
export function launchChild(options: LaunchOptions & { binary?: false }): Promise<ChildSession<string>>;
export async function launchChild(options: LaunchOptions): Promise<ChildSession<string> | ChildSession<Uint8Array>> {
  options.signal?.throwIfAborted();
  const ownDir = options.socketPath === undefined ? await fsp.mkdtemp(path.join(os.tmpdir(), 'wirekit-')) : undefined;
  const socketPath = options.socketPath ?? path.join(ownDir!, 'sock');
  let server: DelimitedServer | undefined;
  const releaseSocket = async () => {
    await server?.close();
    if (ownDir) await fsp.rm(ownDir, { recursive: true, force: true });
  };
  try {
    server = await new DelimitedServer().listen({ path: socketPath });
  } catch (err) {
    await releaseSocket();
    throw err;
  }

  const tail = new StderrTail(options.stderrLimit ?? 64 * 1024);
  const child = spawn(options.command, [...(options.args ?? []), server.path], {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', options.stdout ?? 'inherit', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    tail.push(chunk);
    if (options.forwardStderr) process.stderr.write(chunk);
  });
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('error', (error) => {
      // Spawn failures come as 'error' without 'exit'.
      if (child.pid === undefined) resolve({ exitCode: null, signal: null, error });
    });
    child.once('exit', (exitCode, signal) => {
      // Give stderr a moment to drain (it closes with the child unless a grandchild holds it).
      const done = () => resolve({ exitCode, signal });
      if (child.stderr!.readableEnded) done();
      else {
        const t = setTimeout(done, 200);
        child.stderr!.once('end', () => {
          clearTimeout(t);
          done();
        });
      }
    });
  });

  const stop = new AbortController();
  const onOuterAbort = () => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let earlyExit: ChildExit | undefined;
  void exited.then((st) => {
    earlyExit = st;
    stop.abort(new ChildExitedError('before completing the handshake', st.exitCode, st.signal, tail.toString(), st.error));
  });
  try {
    const acceptOpts = {
      ...options,
      signal: stop.signal,
      ...waitOptions(options.timeout ?? DEFAULT_ACCEPT_TIMEOUT, undefined),
    };
    const conn = await withWait('child launch', waitOptions(options.timeout ?? DEFAULT_ACCEPT_TIMEOUT, undefined), server.accept(acceptOpts as typeof acceptOpts & { binary?: false }));
    // One-to-one: no further connections are wanted.
    await releaseSocket();
    return new ChildSession(child, conn, exited, tail, async () => {}) as ChildSession<string>;
  } catch (err) {
    if (earlyExit) {
      await releaseSocket();
      const e = earlyExit;
      throw new ChildExitedError('before completing the handshake', e.exitCode, e.signal, tail.toString(), e.error ?? err);
    }
    await waitExit(child, exited, 0);
    await releaseSocket();
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}

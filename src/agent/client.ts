/**
 * Client of the agent daemon. Each session opens its own connection (the connection switches to
 * the session's data protocol after the reply); `ping` and `info` are plain commands. The control
 * phase is the control protocol's sans-I/O `ClientSession` (seed 003).
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Duplex, PassThrough, Writable } from 'node:stream';
import tls from 'node:tls';
import { concatBytes, utf8Encode } from '../bytes/text.js';
import { attachWait, type WaitOptions } from '../channels/frame-channel.js';
import { channel } from '../channels/node-channel.js';
import { lines } from '../codecs/lines.js';
import { ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { ClientSession, type ClientEvent } from '../protocols/control/client-session.js';
import { formatAddress, parseAddress, type AgentAddress } from './address.js';
import { AuthError, RemoteCommandError } from './errors.js';
import { sendFile, type CollectGarbage } from './file-pump.js';
import { FrameStream } from './frame-stream.js';
import type { KeepaliveOptions } from './keepalive.js';
import { commitReceivedFile, tempNameFor } from './sessions.js';
import { decodeError, decodeExit, encodeResize, FrameType, sessionCodec, type ExitStatus, type SessionFrame } from './session-frames.js';
import { TransferReceiver, toHex } from './transfer.js';

export interface AgentClientOptions {
  /** Daemon address (parsed with `parseAddress` when a string). */
  address: AgentAddress | string;
  /** Token for TCP/TLS daemons. */
  token?: string;
  /** TLS: trusted CA certificate(s) (PEM). */
  ca?: string | Buffer;
  /** TLS: skip certificate verification (tests only). */
  insecure?: boolean;
  /** Timeout for connecting and for each reply. Default 10 000 ms. */
  timeoutMs?: number;
  /** Keepalive of sessions. Default: ping every 15 s, dead after 45 s of silence. */
  keepalive?: KeepaliveOptions;
  /** Maximum session frame payload. Default 1 MiB. */
  maxFrameBytes?: number;
}

/** A running exec session. */
export interface ExecSession {
  /** Daemon-side process id. */
  pid: number | undefined;
  stdout: PassThrough;
  stderr: PassThrough;
  /** Writes become DATA frames; `end()` sends EOF. */
  stdin: Writable;
  /** Resolves with the exit status; rejects if the session fails. */
  exit: Promise<ExitStatus>;
  /** Sends a signal to the program. */
  signal(name: NodeJS.Signals): void;
  /** Drops the connection (the daemon kills the program). */
  close(): void;
}

/** A running terminal session. */
export interface TerminalSession {
  /** Terminal output. */
  output: PassThrough;
  write(data: Uint8Array | string): void;
  resize(cols: number, rows: number): void;
  exit: Promise<ExitStatus>;
  close(): void;
}

/** Progress of a transfer. */
export interface TransferProgress {
  bytes: number;
  size: number;
}

/** Result of a transfer. */
export interface TransferResult {
  path: string;
  size: number;
  sha256: string;
}

/** The daemon's greeting: `{"version": "wirekit-agent/1", "auth": "none" | "token"}`. */
export interface Greeting {
  version: string;
  auth: 'none' | 'token';
}

/** Options of a wait for a reply. */
export interface ReplyOptions extends WaitOptions {
  /** Called with each progress message before the reply. */
  onProgress?: (progress: unknown) => void;
}

/**
 * One control connection to the daemon: the control protocol's sans-I/O `ClientSession` over a
 * socket. Replies are decoded only while one is awaited, so the bytes that follow a session
 * command's reply stay undecoded and become the first bytes of the session's stream (`open`).
 */
export class AgentConnection {
  readonly session: ClientSession;
  /** The daemon's greeting, once `readGreeting` read it. */
  greeting: Greeting | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private ended: Error | undefined;
  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? utf8Encode(chunk) : chunk);
    // Nobody is waiting for a reply: stop reading once enough is buffered.
    if (this.wake === undefined && !this.paused && this.session.bufferedBytes >= 1024 * 1024) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  };
  private readonly onEnd = () => this.finish(new ConnectionClosedError('daemon closed the connection'));
  private readonly onClose = () => this.finish(new ConnectionClosedError('connection closed'));
  private readonly onError = (err: Error) => this.finish(new ConnectionClosedError(`connection failed: ${err.message}`, err));

  constructor(
    readonly socket: Duplex,
    options: { maxLineLength?: number } = {},
  ) {
    this.session = new ClientSession({ maxLineLength: options.maxLineLength ?? 16 * 1024 * 1024 });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Reads the daemon's first line, which must be its greeting. */
  async readGreeting(options: WaitOptions = {}): Promise<Greeting> {
    const ev = await this.nextEvent('waiting for the greeting', options).catch((err: unknown) => {
      throw err instanceof ConnectionClosedError ? new ConnectionClosedError('daemon closed the connection before its greeting', err) : err;
    });
    if (ev.type !== 'greeting') throw new WirekitError('WK_PROTOCOL', `expected the daemon's greeting, got ${ev.type}`);
    this.greeting = { version: ev.version, auth: ev.extra?.auth === 'token' ? 'token' : 'none' };
    return this.greeting;
  }

  /** Sends a command and waits for its reply; an error reply rejects with `RemoteCommandError`. */
  call(cmd: string, opts: Record<string, unknown> = {}, options: ReplyOptions = {}): Promise<unknown> {
    const id = this.session.call(cmd, opts);
    this.write([this.session.dataToSend()]);
    return this.reply(id, cmd, false, options);
  }

  /**
   * Sends a command after which the connection carries a session's data. `typedAhead` bytes are
   * written right behind the request, in the same write. Resolves with the reply and the raw
   * stream: its first bytes are those that followed the reply (even in the same read), then the
   * live ones; writes go to the socket. This connection is done with afterwards.
   */
  async open(cmd: string, opts: Record<string, unknown>, typedAhead: Uint8Array[] = [], options: ReplyOptions = {}): Promise<{ reply: unknown; stream: Duplex }> {
    const id = this.session.call(cmd, opts, 'hijack');
    this.write([this.session.dataToSend(), ...typedAhead]);
    const reply = await this.reply(id, cmd, true, options);
    const leftover = this.session.takeRemaining();
    this.detach();
    const stream = channel(this.socket, lines(), leftover.length > 0 ? { leftover: concatBytes(leftover) } : {}).hijack();
    return { reply, stream };
  }

  /**
   * Waits for one more reply that no request asks for (progress, then a response or an error),
   * e.g. the result of an upload after the data was sent.
   */
  expectReply(cmd: string, options: ReplyOptions = {}): Promise<unknown> {
    return this.reply(this.session.expect(cmd), cmd, false, options);
  }

  /** Destroys the connection. */
  close(): void {
    this.socket.destroy();
  }

  private write(parts: Uint8Array[]): void {
    const s = this.socket;
    s.cork();
    for (const p of parts) if (p.length > 0) s.write(p);
    s.uncork();
  }

  private async reply(id: number, cmd: string, switches: boolean, options: ReplyOptions): Promise<unknown> {
    let value: unknown = null;
    for (;;) {
      const ev = await this.nextEvent(`reply to '${cmd}'`, options);
      if (ev.type === 'greeting' || ev.id !== id) continue;
      if (ev.type === 'progress') options.onProgress?.(ev.message);
      else if (ev.type === 'error') throw new RemoteCommandError(ev.message, typeof ev.extra?.code === 'string' ? ev.extra.code : undefined);
      else if (ev.type === 'switched') return value;
      else if (ev.type === 'response') {
        if (!switches) return ev.value;
        value = ev.value; // the 'switched' event follows at once
      }
    }
  }

  /** The next event from the daemon, reading more bytes as needed. */
  private async nextEvent(what: string, options: WaitOptions): Promise<ClientEvent> {
    let failed: Error | undefined;
    const cleanup = attachWait(what, options, (err) => {
      failed = err;
      this.notify();
    });
    try {
      for (;;) {
        const ev = this.session.nextEvent(); // throws ControlProtocolError on a broken reply
        if (ev !== undefined) return ev;
        if (failed) throw failed;
        if (this.ended) throw this.ended;
        if (this.paused) {
          this.paused = false;
          this.socket.resume();
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.wake = undefined;
      cleanup();
    }
  }

  private finish(err: Error): void {
    this.ended ??= err;
    this.notify();
  }

  private detach(): void {
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    s.removeListener('error', this.onError);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

export class AgentClient {
  readonly address: AgentAddress;
  private readonly timeoutMs: number;

  constructor(readonly options: AgentClientOptions) {
    this.address = typeof options.address === 'string' ? parseAddress(options.address) : options.address;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Opens a connection, reads the greeting and authenticates when the daemon asks for a token. */
  async connect(): Promise<AgentConnection> {
    const socket = await dial(this.address, this.options, this.timeoutMs);
    const conn = new AgentConnection(socket);
    try {
      const g = await conn.readGreeting({ timeout: this.timeoutMs });
      if (g.auth === 'token') {
        if (!this.options.token) throw new AuthError(`${formatAddress(this.address)} requires a token (--token or WIREKIT_TOKEN)`, 'local');
        try {
          await conn.call('auth', { token: this.options.token }, { timeout: this.timeoutMs });
        } catch (err) {
          if (err instanceof RemoteCommandError) throw new AuthError(err.message);
          throw err;
        }
      }
      return conn;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Sends a command on a fresh connection and returns the reply. */
  async call(cmd: string, opts: Record<string, unknown> = {}): Promise<unknown> {
    const conn = await this.connect();
    try {
      return await conn.call(cmd, opts, { timeout: this.timeoutMs });
    } finally {
      conn.close();
    }
  }

  /** Round trip of a `ping` command (on a fresh connection); returns the reply time in ms. */
  async ping(): Promise<number> {
    const conn = await this.connect();
    try {
      const t0 = performance.now();
      await conn.call('ping', {}, { timeout: this.timeoutMs });
      return performance.now() - t0;
    } finally {
      conn.close();
    }
  }

  /** Daemon information. */
  info(): Promise<Record<string, unknown>> {
    return this.call('info') as Promise<Record<string, unknown>>;
  }

  /** Sends a session command on a fresh connection: the reply and the switched stream. */
  private async open(cmd: string, opts: Record<string, unknown>, typedAhead: Uint8Array[] = []): Promise<{ reply: unknown; stream: Duplex }> {
    const conn = await this.connect();
    try {
      return await conn.open(cmd, opts, typedAhead, { timeout: this.timeoutMs });
    } catch (err) {
      conn.close();
      throw err;
    }
  }

  /** Session frames over a switched stream. */
  private frames(io: Duplex): FrameStream {
    const codec = sessionCodec({ maxFrameLength: this.options.maxFrameBytes });
    return new FrameStream(channel(io, codec), io, codec, this.options.keepalive ?? {});
  }

  /**
   * Runs a program. `input` is sent together with the request (typed-ahead stdin), followed by
   * EOF when `endInput` is set.
   */
  async exec(argv: string[], opts: { cwd?: string; env?: Record<string, string>; input?: Uint8Array; endInput?: boolean } = {}): Promise<ExecSession> {
    const codec = sessionCodec({ maxFrameLength: this.options.maxFrameBytes });
    const ahead: Uint8Array[] = [];
    if (opts.input && opts.input.length > 0) {
      for (let i = 0; i < opts.input.length; i += codec.maxFrameLength) {
        const part = opts.input.subarray(i, i + codec.maxFrameLength);
        ahead.push(codec.header(FrameType.DATA, part.length), part);
      }
    }
    if (opts.endInput) ahead.push(codec.header(FrameType.EOF, 0));
    const { reply, stream } = await this.open('exec', { argv, cwd: opts.cwd, env: opts.env }, ahead);
    const fs = this.frames(stream);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let inputEnded = opts.endInput ?? false;
    const stdin = new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (fs.send(FrameType.DATA, chunk)) cb();
        else fs.drained().then(() => cb(), cb);
      },
      final(cb) {
        if (!inputEnded) fs.send(FrameType.EOF);
        inputEnded = true;
        cb();
      },
    });
    if (inputEnded) stdin.end();
    const exit = runClientSession(fs, async (f) => {
      if (f.type === FrameType.STDOUT) await writeOut(stdout, f.payload);
      else if (f.type === FrameType.STDERR) await writeOut(stderr, f.payload);
      else return false;
      return true;
    }).finally(() => {
      stdout.end();
      stderr.end();
    });
    exit.catch(() => {});
    return {
      pid: (reply as { pid?: number } | null)?.pid,
      stdout,
      stderr,
      stdin,
      exit,
      signal: (name) => void fs.send(FrameType.SIGNAL, Buffer.from(name)),
      close: () => fs.close(),
    };
  }

  /** Runs a shell (or `argv`) under a pseudo-terminal on the daemon. */
  async terminal(opts: { argv?: string[]; cols?: number; rows?: number; env?: Record<string, string>; cwd?: string; term?: string } = {}): Promise<TerminalSession> {
    const { stream } = await this.open('terminal', { ...opts });
    const fs = this.frames(stream);
    const output = new PassThrough();
    const exit = runClientSession(fs, async (f) => {
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
    };
  }

  /**
   * Opens a forward session to `host:port` as seen from the daemon. Returns a duplex stream: what
   * is written reaches the target, `end()` half-closes towards it; its readable side ends when
   * the target half-closes.
   */
  async forward(host: string, port: number): Promise<Duplex> {
    const { stream } = await this.open('forward', { host, port });
    const fs = this.frames(stream);
    let readEnded = false;
    let writeEnded = false;
    const maybeClose = () => {
      if (readEnded && writeEnded) fs.close();
    };
    let resumeReader: (() => void) | undefined;
    const duplex = new Duplex({
      allowHalfOpen: true,
      read() {
        const r = resumeReader;
        resumeReader = undefined;
        r?.();
      },
      write(chunk: Buffer, _enc, cb) {
        if (fs.send(FrameType.DATA, chunk)) cb();
        else fs.drained().then(() => cb(), cb);
      },
      final(cb) {
        fs.send(FrameType.EOF);
        writeEnded = true;
        maybeClose();
        cb();
      },
      destroy(err, cb) {
        fs.close();
        cb(err);
      },
    });
    runClientSession(fs, async (f) => {
      if (f.type === FrameType.DATA) {
        if (!duplex.push(f.payload)) await new Promise<void>((r) => (resumeReader = r));
        return true;
      }
      if (f.type === FrameType.EOF) {
        duplex.push(null);
        readEnded = true;
        maybeClose();
        return true;
      }
      return false;
    }).then(
      () => {
        if (!readEnded) duplex.push(null);
      },
      (err) => duplex.destroy(err as Error),
    );
    return duplex;
  }

  /** Uploads a local file to `remotePath` (size, mode and SHA-256 checked by the daemon). */
  async upload(localPath: string, remotePath: string, opts: { mode?: number; onProgress?: (p: TransferProgress) => void } = {}): Promise<TransferResult> {
    const fh = await open(localPath, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new WirekitError('WK_NOT_FILE', `${localPath} is not a regular file`, { origin: 'local' });
      const size = st.size;
      const conn = await this.connect();
      const sock = conn.socket;
      try {
        // The request is answered before any data is sent; the daemon's progress lines and final
        // reply then come back on the same connection while the data goes out raw.
        await conn.call('upload', { path: remotePath, size, mode: opts.mode ?? st.mode & 0o777 }, { timeout: this.timeoutMs });
        const replyP = conn.expectReply('upload', {
          onProgress: (p) => {
            const b = (p as { bytes?: number } | null)?.bytes;
            if (typeof b === 'number') opts.onProgress?.({ bytes: b, size });
          },
        });
        replyP.catch(() => {});
        try {
          const digest = await sendFile(fh, size, sock);
          sock.write(digest);
          const r = (await replyP) as TransferResult;
          opts.onProgress?.({ bytes: size, size });
          return r;
        } catch (err) {
          // If the daemon reported an error, prefer it.
          const remote = await Promise.race([replyP.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(r, 200).unref())]);
          throw remote instanceof Error ? remote : err;
        }
      } finally {
        conn.close();
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Downloads `remotePath` to `localPath`: written to a temporary file beside it and renamed into
   * place only when the size and SHA-256 match.
   */
  async download(
    remotePath: string,
    localPath: string,
    opts: {
      onProgress?: (p: TransferProgress) => void;
      mode?: number;
      /** Releases spent socket buffers every 8 MiB (see `ReceiveFileOptions.collectGarbage`). */
      collectGarbage?: CollectGarbage;
    } = {},
  ): Promise<TransferResult> {
    const { reply, stream: io } = await this.open('download', { path: remotePath });
    const info = reply as { size: number; mode: number };
    if (!info || typeof info.size !== 'number' || !Number.isSafeInteger(info.size) || info.size < 0) {
      io.destroy();
      throw new WirekitError('WK_PROTOCOL', 'download reply without a valid size');
    }
    let dest = path.resolve(localPath);
    try {
      if ((await stat(dest)).isDirectory()) dest = path.join(dest, path.basename(remotePath));
    } catch {
      // does not exist: fine
    }
    const temp = tempNameFor(dest);
    let out: FileHandle;
    try {
      out = await open(temp, 'wx', 0o600);
    } catch (err) {
      io.destroy();
      throw err;
    }
    const rx = new TransferReceiver(info.size, null);
    let lastReport = 0;
    try {
      await commitReceivedFile(io, rx, out, temp, dest, opts.mode ?? info.mode, {
        collectGarbage: opts.collectGarbage,
        onProgress: (bytes) => {
          if (!opts.onProgress || bytes - lastReport < 1024 * 1024) return;
          lastReport = bytes;
          opts.onProgress({ bytes, size: info.size });
        },
      });
      opts.onProgress?.({ bytes: info.size, size: info.size });
      return { path: dest, size: info.size, sha256: rx.sha256! };
    } finally {
      io.destroy();
    }
  }
}

/**
 * Reads session frames until EXIT (resolves with it) or ERROR / a dropped connection (rejects).
 * `onFrame` handles the session-specific types and returns false for unexpected ones.
 */
async function runClientSession(fs: FrameStream, onFrame: (f: SessionFrame) => Promise<boolean>): Promise<ExitStatus> {
  let status: ExitStatus | undefined;
  let failure: Error | undefined;
  try {
    await fs.run(async (f) => {
      if (f.type === FrameType.EXIT) {
        status = decodeExit(f.payload);
        return;
      }
      if (f.type === FrameType.ERROR) {
        const e = decodeError(f.payload);
        failure = new RemoteCommandError(e.message, e.code);
        return;
      }
      if (!(await onFrame(f))) throw new WirekitError('WK_PROTOCOL', `unexpected frame type ${f.type} from the daemon`);
    });
  } catch (err) {
    failure ??= err as Error;
  } finally {
    fs.close();
  }
  if (status) return status;
  throw failure ?? new ConnectionClosedError('daemon closed the session without an exit status');
}

function writeOut(s: PassThrough, data: Uint8Array): Promise<void> | void {
  if (s.destroyed) return;
  if (s.write(data)) return;
  return new Promise((r) => {
    s.once('drain', r);
    s.once('close', r);
  });
}


/** Connects to a daemon address (with a connect timeout). */
export function dial(address: AgentAddress, opts: { ca?: string | Buffer; insecure?: boolean }, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let sock: net.Socket;
    if (address.kind === 'unix') sock = net.connect({ path: address.path, allowHalfOpen: true });
    else if (address.tls) {
      sock = tls.connect({ host: address.host, port: address.port, ca: opts.ca, rejectUnauthorized: !opts.insecure, servername: net.isIP(address.host) ? undefined : address.host });
    } else sock = net.connect({ host: address.host, port: address.port, allowHalfOpen: true });
    const ev = address.kind === 'tcp' && address.tls ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new TimeoutError(`connect to ${formatAddress(address)}`, timeoutMs));
    }, timeoutMs);
    sock.once(ev, () => {
      clearTimeout(timer);
      sock.removeListener('error', onErr);
      if (address.kind === 'tcp') sock.setNoDelay(true);
      resolve(sock);
    });
    const onErr = (err: Error) => {
      clearTimeout(timer);
      reject(new WirekitError('WK_CONNECT', `cannot connect to ${formatAddress(address)}: ${err.message}`, { origin: 'local', cause: err }));
    };
    sock.once('error', onErr);
  });
}

export { toHex };

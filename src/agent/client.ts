/**
 * Client of the agent daemon. Each session opens its own connection (the connection switches to
 * the session's data protocol after the reply); `ping` and `info` are plain commands.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Duplex, PassThrough, Writable } from 'node:stream';
import tls from 'node:tls';
import { ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { formatAddress, parseAddress, type AgentAddress } from './address.js';
import { ControlClientLink } from './control-link.js';
import { AuthError, RemoteCommandError } from './errors.js';
import { sendFile } from './file-pump.js';
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

export class AgentClient {
  readonly address: AgentAddress;
  private readonly timeoutMs: number;

  constructor(readonly options: AgentClientOptions) {
    this.address = typeof options.address === 'string' ? parseAddress(options.address) : options.address;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /** Opens a connection, reads the greeting and authenticates when the daemon asks for a token. */
  async connect(): Promise<ControlClientLink> {
    const socket = await dial(this.address, this.options, this.timeoutMs);
    const link = new ControlClientLink(socket);
    try {
      const g = await link.readGreeting({ timeout: this.timeoutMs });
      if (g.auth === 'token') {
        if (!this.options.token) throw new AuthError(`${formatAddress(this.address)} requires a token (--token or WIREKIT_TOKEN)`, 'local');
        try {
          await link.call('auth', { token: this.options.token }, { timeout: this.timeoutMs });
        } catch (err) {
          if (err instanceof RemoteCommandError) throw new AuthError(err.message);
          throw err;
        }
      }
      return link;
    } catch (err) {
      socket.destroy();
      throw err;
    }
  }

  /** Sends a command on a fresh connection and returns the reply. */
  async call(cmd: string, opts: Record<string, unknown> = {}): Promise<unknown> {
    const link = await this.connect();
    try {
      return await link.call(cmd, opts, { timeout: this.timeoutMs });
    } finally {
      link.socket.destroy();
    }
  }

  /** Round trip of a `ping` command (on a fresh connection); returns the reply time in ms. */
  async ping(): Promise<number> {
    const link = await this.connect();
    try {
      const t0 = performance.now();
      await link.call('ping', {}, { timeout: this.timeoutMs });
      return performance.now() - t0;
    } finally {
      link.socket.destroy();
    }
  }

  /** Daemon information. */
  info(): Promise<Record<string, unknown>> {
    return this.call('info') as Promise<Record<string, unknown>>;
  }

  private async open(cmd: string, opts: Record<string, unknown>, typedAhead: Uint8Array[] = []): Promise<{ link: ControlClientLink; reply: unknown }> {
    const link = await this.connect();
    try {
      const req = link.encodeRequest(cmd, opts);
      link.socket.cork();
      link.socket.write(req);
      for (const b of typedAhead) link.socket.write(b);
      link.socket.uncork();
      const reply = await link.reply({ timeout: this.timeoutMs });
      return { link, reply };
    } catch (err) {
      link.socket.destroy();
      throw err;
    }
  }

  private frames(link: ControlClientLink): FrameStream {
    const codec = sessionCodec({ maxFrameLength: this.options.maxFrameBytes });
    const ch = link.ch.switchCodec<SessionFrame, SessionFrame>(codec);
    return new FrameStream(ch, link.socket, codec, this.options.keepalive ?? {});
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
    const { link, reply } = await this.open('exec', { argv, cwd: opts.cwd, env: opts.env }, ahead);
    const fs = this.frames(link);
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
    const { link } = await this.open('terminal', { ...opts });
    const fs = this.frames(link);
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
    const { link } = await this.open('forward', { host, port });
    const fs = this.frames(link);
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
      const { link } = await this.open('upload', { path: remotePath, size, mode: opts.mode ?? st.mode & 0o777 });
      const sock = link.socket;
      const replyP = link.reply({
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
      } finally {
        sock.destroy();
      }
    } finally {
      await fh.close();
    }
  }

  /**
   * Downloads `remotePath` to `localPath`: written to a temporary file beside it and renamed into
   * place only when the size and SHA-256 match.
   */
  async download(remotePath: string, localPath: string, opts: { onProgress?: (p: TransferProgress) => void; mode?: number } = {}): Promise<TransferResult> {
    const { link, reply } = await this.open('download', { path: remotePath });
    const info = reply as { size: number; mode: number };
    if (!info || typeof info.size !== 'number' || !Number.isSafeInteger(info.size) || info.size < 0) {
      link.socket.destroy();
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
      link.socket.destroy();
      throw err;
    }
    const rx = new TransferReceiver(info.size, null);
    const io = link.ch.hijack();
    let lastReport = 0;
    try {
      await commitReceivedFile(io, rx, out, temp, dest, opts.mode ?? info.mode, {
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

/**
 * Client of the agent daemon: connect, authenticate, `ping`, `info` and plain calls here; each
 * session kind's client half lives in `sessions/<kind>.ts` and runs on a fresh connection (the
 * connection switches to the session's data after the reply).
 */
import type { Duplex } from 'node:stream';
import { connectSocket } from '../channels/connect.js';
import { ConnectError } from '../channels/errors.js';
import { TimeoutError } from '../errors.js';
import { formatAddress, parseAddress, trustedSocketPath, type AgentAddress } from './address.js';
import { AgentConnection } from './connection.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { AuthError } from './errors.js';
import type { FrameStream } from './frame-stream.js';
import type { KeepaliveOptions } from './keepalive.js';
import { sessionCodec, type SessionCodec } from './session-frames.js';
import type { ClientContext } from './sessions/context.js';
import { clientExec, type ClientExecOptions, type ExecSession } from './sessions/exec.js';
import { clientDownload, clientList, clientMakeEntry, clientUpload, type ClientDownloadOptions, type ClientUploadOptions, type FileTimes, type RemoteListing, type TransferResult } from './sessions/files.js';
import { frameStream } from './sessions/frames.js';
import { clientForward } from './sessions/forward.js';
import { clientTerminal, type ClientTerminalOptions, type TerminalSession } from './sessions/terminal.js';
import { toHex } from './transfer.js';

export { AgentConnection } from './connection.js';
export type { Greeting, ReplyOptions } from './connection.js';
export type { ExecSession } from './sessions/exec.js';
export type { TerminalSession } from './sessions/terminal.js';
export type { TransferProgress, TransferResult } from './sessions/files.js';

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
  /**
   * Opens the connection instead of dialing `address`: for a daemon reached another way, e.g.
   * through a fleet hub (`routeThroughHub`). The stream must start with the daemon's greeting.
   */
  dial?: () => Promise<Duplex>;
  /** How the daemon is named in messages when `dial` is given (e.g. `dev1 via hub`). */
  label?: string;
  /** Told each step of a connection (the CLI's `-v`): connecting, connected, authenticated. */
  trace?: (message: string) => void;
}

export class AgentClient {
  readonly address: AgentAddress;
  private readonly timeoutMs: number;
  /** What the session kinds' client halves use. */
  private readonly sessions: ClientContext;

  constructor(readonly options: AgentClientOptions) {
    this.address = typeof options.address === 'string' ? parseAddress(options.address) : options.address;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    const codec: SessionCodec = sessionCodec({ maxFrameLength: options.maxFrameBytes });
    this.sessions = {
      timeoutMs: this.timeoutMs,
      codec,
      connect: () => this.connect(),
      open: (cmd, opts, typedAhead) => this.open(cmd, opts, typedAhead),
      frames: (io: Duplex): FrameStream => frameStream(io, { maxFrameBytes: options.maxFrameBytes, keepalive: options.keepalive }),
    };
  }

  /** Opens a connection, reads the greeting and authenticates when the daemon asks for a token. */
  async connect(): Promise<AgentConnection> {
    const trace = this.options.trace;
    const name = this.options.label ?? formatAddress(this.address);
    trace?.(`connecting to ${name}`);
    const socket = this.options.dial ? await this.options.dial() : await dial(this.address, this.options, this.timeoutMs);
    trace?.(`connected to ${name}${this.address.kind === 'tcp' && this.address.tls && !this.options.dial ? ' (TLS)' : ''}`);
    const conn = new AgentConnection(socket);
    try {
      const g = await conn.readGreeting({ timeout: this.timeoutMs }).catch((err: unknown) => {
        // A TLS listener waits for the client's hello and says nothing to a plain client.
        const a = this.address;
        if (err instanceof TimeoutError && !this.options.dial && a.kind === 'tcp' && !a.tls) {
          throw new TimeoutError(`connect to ${formatAddress(a)} (no greeting from the daemon: if it listens with TLS there, use ${formatAddress({ ...a, tls: true })})`, err.timeoutMs);
        }
        throw err;
      });
      if (g.auth === 'token') {
        if (!this.options.token) throw new AuthError(`${this.options.label ?? formatAddress(this.address)} requires a token (--token or WIREKIT_TOKEN)`, 'local');
        try {
          await conn.call('auth', { token: this.options.token }, { timeout: this.timeoutMs });
          trace?.('authenticated with the token');
        } catch (err) {
          if (err instanceof RemoteCommandError) throw new AuthError(err.message, 'remote');
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

  /**
   * Runs a program. `input` is sent together with the request (typed-ahead stdin), followed by
   * EOF when `endInput` is set. See `sessions/exec.ts`.
   */
  exec(argv: string[], opts: ClientExecOptions = {}): Promise<ExecSession> {
    return clientExec(this.sessions, argv, opts);
  }

  /** Runs a shell (or `argv`) under a pseudo-terminal on the daemon. See `sessions/terminal.ts`. */
  terminal(opts: ClientTerminalOptions = {}): Promise<TerminalSession> {
    return clientTerminal(this.sessions, opts);
  }

  /**
   * Opens a forward session to `host:port` as seen from the daemon: a duplex stream whose
   * readable side ends when the target half-closes. See `sessions/forward.ts`.
   */
  forward(host: string, port: number): Promise<Duplex> {
    return clientForward(this.sessions, host, port);
  }

  /** Uploads a local file to `remotePath` (size, mode and SHA-256 checked by the daemon). See `sessions/files.ts`. */
  upload(localPath: string, remotePath: string, opts: ClientUploadOptions = {}): Promise<TransferResult> {
    return clientUpload(this.sessions, localPath, remotePath, opts);
  }

  /**
   * Downloads `remotePath` to `localPath`: written to a temporary file beside it and renamed into
   * place only when the size and SHA-256 match. See `sessions/files.ts`.
   */
  download(remotePath: string, localPath: string, opts: ClientDownloadOptions = {}): Promise<TransferResult> {
    return clientDownload(this.sessions, remotePath, localPath, opts);
  }

  /** Lists a remote directory, one level; links are reported, not followed. See `sessions/files.ts`. */
  list(remotePath: string): Promise<RemoteListing> {
    return clientList(this.sessions, remotePath);
  }

  /** Creates a remote directory (kept if it exists) or symbolic link; resolves with its path. See `sessions/files.ts`. */
  makeEntry(remotePath: string, entry: { type: 'dir' | 'link'; name?: string; mode?: number; target?: string; times?: FileTimes }): Promise<string> {
    return clientMakeEntry(this.sessions, remotePath, entry);
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
}

/**
 * Connects to a daemon address (`connectSocket` under a connect timeout). Rejects with
 * `ConnectError` (`WK_CONNECT`) or `TimeoutError` (`WK_TIMEOUT`, message "connect to ...").
 * A Unix socket is checked first (`trustedSocketPath`: a private directory, a socket of this
 * user's); one that fails is not connected to at all (`WK_UNSAFE_PATH`).
 */
export async function dial(address: AgentAddress, opts: { ca?: string | Buffer; insecure?: boolean }, timeoutMs: number): Promise<Duplex> {
  if (address.kind === 'unix') return connectSocket({ path: trustedSocketPath(address.path) }, { timeout: timeoutMs });
  try {
    return await connectSocket(
      { host: address.host, port: address.port },
      { timeout: timeoutMs, tls: address.tls ? { ca: opts.ca, rejectUnauthorized: !opts.insecure } : undefined },
    );
  } catch (err) {
    // A plain listener answers a TLS hello with its greeting line: OpenSSL reads it as a record
    // of an unknown version.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (address.tls && err instanceof ConnectError && (cause?.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/.test(cause?.message ?? ''))) {
      const plain = formatAddress({ ...address, tls: false });
      throw new ConnectError(formatAddress(address), Object.assign(new Error(`the daemon does not speak TLS there (if it listens with plain TCP, use ${plain})`), { cause }));
    }
    throw err;
  }
}

export { toHex };

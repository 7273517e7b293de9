/**
 * The listening side of the seed 002 channel (the seed's `UDSServer`): binds a private Unix
 * socket, then `accept()` (the seed's `wait_for_connection`) takes a connection and runs the
 * READY/OK handshake. A client may connect before `accept()` is called; its connection waits.
 */
import net from 'node:net';
import { attachWait } from '../../channels/index.js';
import { WirekitError } from '../../errors.js';
import { handshake, waitOptions, type DelimitedConnection, type HandshakeOptions } from './connection.js';
import { listenPrivate, type PrivateListener, type PrivateListenOptions } from './private-socket.js';

export interface ListenOptions extends PrivateListenOptions {
  /** Connections accepted by the kernel but not yet taken by `accept()`; more are closed. Default 4. */
  maxPending?: number;
}

export interface AcceptOptions extends HandshakeOptions {
  /** How long to wait for a client to connect, in ms (`Infinity`: forever). Default 30 000. */
  timeout?: number;
}

export const DEFAULT_ACCEPT_TIMEOUT = 30_000;

/** The server was closed while `accept()` waited, or `accept()` was called after `close()`. */
export class ServerClosedError extends WirekitError {
  constructor() {
    super('WK_SERVER_CLOSED', 'server is closed', { origin: 'local' });
  }
}

/**
 * A listening seed 002 server.
 *
 * ```ts
 * const server = await DelimitedServer.listen('/run/app/ctl.sock'); // mode 0600
 * const conn = await server.accept({ timeout: 5000 });               // connection + READY/OK
 * await conn.send('hello');
 * const reply = await conn.receive({ timeout: 5000 });
 * await server.close();
 * ```
 */
export class DelimitedServer {
  private readonly pending: net.Socket[] = [];
  private waiter: ((s: net.Socket | Error) => void) | undefined;
  private closed = false;

  private constructor(
    private readonly listener: PrivateListener,
    private readonly maxPending: number,
  ) {
    listener.server.on('connection', (s) => this.onConnection(s));
    listener.server.on('error', () => {});
  }

  /**
   * Binds a Unix socket at `path` with mode 0600 (never reachable with another mode), after
   * removing a stale socket left by a dead server. Rejects with `SocketPathError` if a live
   * server holds the path or it is not a socket.
   */
  static async listen(path: string, options: ListenOptions = {}): Promise<DelimitedServer> {
    const listener = await listenPrivate(path, options);
    return new DelimitedServer(listener, options.maxPending ?? 4);
  }

  /** Absolute path of the socket. */
  get path(): string {
    return this.listener.path;
  }

  /**
   * Waits for a client (within `timeout`), then runs the handshake (within `handshakeTimeout`).
   * Rejects with `TimeoutError`, `AbortedError`, `HandshakeError` (wrong word, or the client
   * closed before READY) or `ServerClosedError`.
   */
  accept(options: AcceptOptions & { binary: true }): Promise<DelimitedConnection<Uint8Array>>;
  accept(options?: AcceptOptions & { binary?: false }): Promise<DelimitedConnection<string>>;
  async accept(options: AcceptOptions = {}): Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>> {
    const socket = await this.nextSocket(options);
    return handshake(socket, 'server', options) as Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>>;
  }

  private nextSocket(options: AcceptOptions): Promise<net.Socket> {
    if (this.closed) return Promise.reject(new ServerClosedError());
    if (this.waiter) return Promise.reject(new WirekitError('WK_BUSY', 'accept() is already waiting', { origin: 'local' }));
    const ready = this.pending.shift();
    if (ready) {
      ready.removeAllListeners('close');
      return Promise.resolve(ready);
    }
    return new Promise((resolve, reject) => {
      const cleanup = attachWait('accept', waitOptions(options.timeout ?? DEFAULT_ACCEPT_TIMEOUT, options.signal), (err) => {
        this.waiter = undefined;
        reject(err);
      });
      this.waiter = (s) => {
        this.waiter = undefined;
        cleanup();
        if (s instanceof Error) reject(s);
        else resolve(s);
      };
    });
  }

  private onConnection(socket: net.Socket): void {
    if (this.waiter) return this.waiter(socket);
    if (this.closed || this.pending.length >= this.maxPending) {
      socket.destroy();
      return;
    }
    this.pending.push(socket);
    socket.on('error', () => {});
    socket.once('close', () => {
      const i = this.pending.indexOf(socket);
      if (i >= 0) this.pending.splice(i, 1);
    });
  }

  /**
   * Stops listening and removes the socket file (if it is still the one created here). Pending,
   * not yet accepted connections are closed; accepted ones stay open until closed by their owner.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.pending.splice(0)) s.destroy();
    this.waiter?.(new ServerClosedError());
    await this.listener.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Shorthand for `DelimitedServer.listen(path, options)`. */
export function listen(path: string, options?: ListenOptions): Promise<DelimitedServer> {
  return DelimitedServer.listen(path, options);
}

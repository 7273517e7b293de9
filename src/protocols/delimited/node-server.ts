/**
 * Node driver, the listening side of the `%base64$` delimited protocol (the original `UDSServer`):
 * binds a private Unix socket, then `accept()` (the original `wait_for_connection`) takes a
 * connection and runs the READY/OK handshake. A client may connect before `accept()` is called;
 * its connection waits.
 */
import net from 'node:net';
import { attachWait } from '../../channels/frame-channel.js';
import type { SocketAddress } from '../../channels/connect.js';
import { DelimitedUsageError, ServerClosedError } from './errors.js';
import { handshake, waitOptions, type DelimitedConnection, type HandshakeOptions } from './node-connection.js';
import { listenPrivate, type PrivateListener, type PrivateListenOptions } from './node-private-socket.js';

export interface ListenOptions extends PrivateListenOptions {
  /** Connections accepted by the kernel but not yet taken by `accept()`; more are closed. Default 4. */
  maxPending?: number;
}

export interface AcceptOptions extends HandshakeOptions {
  /** How long to wait for a client to connect, in ms (`Infinity`: forever). Default 30 000. */
  timeout?: number;
}

export const DEFAULT_ACCEPT_TIMEOUT = 30_000;

/** The Unix socket path of `address`; a `{ host, port }` address is refused (`WK_ADDRESS_UNSUPPORTED`). */
function socketPathOf(address: SocketAddress | string): string {
  if (typeof address === 'string') return address;
  if ('path' in address) return address.path;
  throw new DelimitedUsageError(
    'WK_ADDRESS_UNSUPPORTED',
    `the delimited protocol listens on Unix sockets only (its privacy is the socket file's 0600 mode); cannot listen on ${address.host}:${address.port}`,
  );
}

/**
 * A server of the `%base64$` delimited protocol.
 *
 * ```ts
 * const server = new DelimitedServer();
 * await server.listen({ path: '/run/app/ctl.sock' });  // mode 0600
 * const conn = await server.accept({ timeout: 5000 });  // connection + READY/OK
 * await conn.send('hello');
 * const reply = await conn.receive({ timeout: 5000 });
 * await server.close();
 * ```
 */
export class DelimitedServer {
  private readonly pending: net.Socket[] = [];
  private waiter: ((s: net.Socket | Error) => void) | undefined;
  private closed = false;
  private listener: PrivateListener | undefined;
  private listening = false;
  private readonly maxPending: number;

  constructor(private readonly options: ListenOptions = {}) {
    this.maxPending = options.maxPending ?? 4;
  }

  /**
   * Binds a Unix socket at `address.path` with mode 0600 (never reachable with another mode),
   * after removing a stale socket left by a dead server. Rejects with `SocketPathError` if a live
   * server holds the path or it is not a socket, and with `DelimitedUsageError`
   * (`WK_ADDRESS_UNSUPPORTED`) for a `{ host, port }` address. `options` override the
   * constructor's socket options.
   */
  async listen(address: SocketAddress, options: PrivateListenOptions = {}): Promise<this> {
    const socketPath = socketPathOf(address);
    if (this.closed) throw new ServerClosedError();
    if (this.listening) throw new DelimitedUsageError('WK_BUSY', 'listen() was already called on this server');
    this.listening = true;
    let listener: PrivateListener;
    try {
      listener = await listenPrivate(socketPath, { ...this.options, ...options });
    } catch (err) {
      this.listening = false;
      throw err;
    }
    if (this.closed) {
      // close() ran while the socket was being bound.
      await listener.close();
      throw new ServerClosedError();
    }
    this.listener = listener;
    listener.server.on('connection', (s) => this.onConnection(s));
    listener.server.on('error', () => {});
    return this;
  }

  /**
   * @deprecated use `new DelimitedServer(options).listen({ path })` or the module's `listen({ path }, options)`.
   * Creates a server and listens on `path` (or `address`).
   */
  static async listen(path: string | SocketAddress, options: ListenOptions = {}): Promise<DelimitedServer> {
    return new DelimitedServer(options).listen(typeof path === 'string' ? { path } : path);
  }

  /** Absolute path of the socket (empty before `listen()` resolved). */
  get path(): string {
    return this.listener?.path ?? '';
  }

  /** Where the server listens, as a `SocketAddress` (`undefined` before `listen()` resolved). */
  get address(): SocketAddress | undefined {
    return this.listener ? { path: this.listener.path } : undefined;
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
    if (this.waiter) return Promise.reject(new DelimitedUsageError('WK_BUSY', 'accept() is already waiting'));
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
    await this.listener?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Creates a server and listens on `address` (`{ path }`): `new DelimitedServer(options).listen(address)`.
 * A plain path string is still accepted (deprecated: pass `{ path }`).
 */
export function listen(address: SocketAddress | string, options: ListenOptions = {}): Promise<DelimitedServer> {
  return new DelimitedServer(options).listen(typeof address === 'string' ? { path: address } : address);
}

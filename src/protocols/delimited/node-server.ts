/**
 * Node driver, the listening side of the `%base64$` delimited protocol (the original `UDSServer`):
 * binds a private Unix socket, then `accept()` (the original `wait_for_connection`) takes a
 * handshaken connection. Handshakes run concurrently, each bounded by its `handshakeTimeout`, so a
 * client that stays silent never delays another. A client may connect before `accept()` is called;
 * its connection waits (its handshake starts at the next `accept()`).
 */
import net from 'node:net';
import { attachWait } from '../../channels/frame-channel.js';
import type { SocketAddress } from '../../channels/connect.js';
import { DelimitedUsageError, HandshakeError, ServerClosedError } from './errors.js';
import { handshake, waitOptions, type DelimitedConnection, type HandshakeOptions } from './node-connection.js';
import { listenPrivate, type PrivateListener, type PrivateListenOptions } from './node-private-socket.js';

export interface ListenOptions extends PrivateListenOptions {
  /**
   * Connections not yet taken by `accept()` (waiting, in their handshake, or handshaken); more are
   * closed at once. Default 4.
   */
  maxPending?: number;
}

export interface AcceptOptions extends HandshakeOptions {
  /** How long to wait for a client to connect, in ms (`Infinity`: forever). Default 30 000. */
  timeout?: number;
}

export const DEFAULT_ACCEPT_TIMEOUT = 30_000;

type AnyConnection = DelimitedConnection<string> | DelimitedConnection<Uint8Array>;

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
  /** Connections whose handshake has not started (no `accept()` was waiting), with their close listener. */
  private readonly pending = new Map<net.Socket, () => void>();
  /** Connections in their handshake. */
  private readonly handshaking = new Set<net.Socket>();
  /** Handshaken connections that no `accept()` has taken yet. */
  private readonly ready: AnyConnection[] = [];
  private waiter: { options: AcceptOptions; settle: (c: AnyConnection | Error) => void } | undefined;
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
   * Waits (within `timeout`) for the next client whose READY/OK handshake completes. The handshakes
   * of all waiting clients, and of those that connect meanwhile, run at once with this call's
   * options, each within `handshakeTimeout`; one that ends after this call returned is kept for the
   * next `accept()` (a failed one is dropped). Rejects with `TimeoutError`, `AbortedError`,
   * `ServerClosedError`, or the `HandshakeError`/`TimeoutError` of a client whose handshake failed
   * while this call waited (wrong word, closed before READY, silent).
   */
  accept(options: AcceptOptions & { binary: true }): Promise<DelimitedConnection<Uint8Array>>;
  accept(options?: AcceptOptions & { binary?: false }): Promise<DelimitedConnection<string>>;
  async accept(options: AcceptOptions = {}): Promise<AnyConnection> {
    if (this.closed) throw new ServerClosedError();
    if (this.waiter) throw new DelimitedUsageError('WK_BUSY', 'accept() is already waiting');
    const ready = this.ready.shift();
    if (ready) return ready;
    return new Promise<AnyConnection>((resolve, reject) => {
      const cleanup = attachWait('accept', waitOptions(options.timeout ?? DEFAULT_ACCEPT_TIMEOUT, options.signal), (err) => {
        this.waiter = undefined;
        reject(err);
      });
      this.waiter = {
        options,
        settle: (c) => {
          this.waiter = undefined;
          cleanup();
          if (c instanceof Error) reject(c);
          else resolve(c);
        },
      };
      const waiting = [...this.pending.keys()];
      for (const s of waiting) this.startHandshake(s, options);
    });
  }

  /** Runs the handshake of `socket` on its own; its outcome goes to the waiting `accept()` or is kept. */
  private startHandshake(socket: net.Socket, options: AcceptOptions): void {
    const onClose = this.pending.get(socket);
    if (onClose) socket.off('close', onClose);
    this.pending.delete(socket);
    // Not the accept()'s signal or timeout: the handshake outlives the call that started it.
    const { signal: _signal, timeout: _timeout, ...handshakeOptions } = options;
    this.handshaking.add(socket);
    (handshake(socket, 'server', handshakeOptions) as Promise<AnyConnection>).then(
      (conn) => {
        this.handshaking.delete(socket);
        if (this.closed) conn.close();
        else if (this.waiter) this.waiter.settle(conn);
        else this.ready.push(conn);
      },
      (err: unknown) => {
        this.handshaking.delete(socket);
        if (!this.closed) this.waiter?.settle(err instanceof Error ? err : new HandshakeError(String(err), { origin: 'remote' }));
      },
    );
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => {});
    if (this.closed || this.pending.size + this.handshaking.size + this.ready.length >= this.maxPending) {
      socket.destroy();
      return;
    }
    if (this.waiter) return this.startHandshake(socket, this.waiter.options);
    const onClose = () => this.pending.delete(socket);
    this.pending.set(socket, onClose);
    socket.once('close', onClose);
  }

  /**
   * Stops listening and removes the socket file (if it is still the one created here). Connections
   * not yet accepted (waiting, in their handshake, handshaken) are closed; accepted ones stay open
   * until closed by their owner.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.pending.keys()) s.destroy();
    this.pending.clear();
    for (const s of this.handshaking) s.destroy();
    for (const c of this.ready.splice(0)) c.close();
    this.waiter?.settle(new ServerClosedError());
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

/**
 * Node driver, the connecting side of the `%base64$` delimited protocol (the original
 * `UDSClient`): connects to the server's socket through `connectSocket` and sends READY; the
 * server must answer OK.
 */
import { connectSocket, type SocketAddress } from '../../channels/connect.js';
import { handshake, waitOptions, type DelimitedConnection, type MessageOptions } from './node-connection.js';

export interface ConnectOptions extends MessageOptions {
  /** Time allowed for connecting and the whole handshake, in ms (`Infinity`: forever). Default 30 000. */
  timeout?: number;
  /** Cancels connecting and the handshake. */
  signal?: AbortSignal;
}

export const DEFAULT_CONNECT_TIMEOUT = 30_000;

/**
 * Connects to a delimited-protocol server at `address` (`{ path }` for its Unix socket; a
 * `{ host, port }` address connects over TCP, for a peer that listens there) and completes the
 * handshake. A plain path string is still accepted (deprecated: pass `{ path }`). Rejects with
 * `ConnectError` (`WK_CONNECT`: no socket, refused), `HandshakeError` (the server answered
 * something else than OK, or closed first), `TimeoutError` or `AbortedError`.
 *
 * ```ts
 * const conn = await connect({ path: process.argv[2]! }, { timeout: 5000 });
 * for (;;) {
 *   const cmd = await conn.receive();
 *   if (cmd === 'QUIT') break;
 *   await conn.send(`done: ${cmd}`);
 * }
 * conn.close();
 * ```
 */
export function connect(address: SocketAddress | string, options: ConnectOptions & { binary: true }): Promise<DelimitedConnection<Uint8Array>>;
export function connect(address: SocketAddress | string, options?: ConnectOptions & { binary?: false }): Promise<DelimitedConnection<string>>;
export async function connect(address: SocketAddress | string, options: ConnectOptions = {}): Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>> {
  const deadline = options.timeout ?? DEFAULT_CONNECT_TIMEOUT;
  const started = performance.now();
  const target: SocketAddress = typeof address === 'string' ? { path: address } : address;
  // Not half-open: when the peer ends, this side ends too, as the original client's socket does.
  const socket = await connectSocket(target, { ...waitOptions(deadline, options.signal), allowHalfOpen: false });
  const left = Number.isFinite(deadline) ? Math.max(1, deadline - (performance.now() - started)) : Infinity;
  return handshake(socket, 'client', { ...options, handshakeTimeout: left }) as Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>>;
}

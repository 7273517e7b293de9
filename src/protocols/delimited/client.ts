/**
 * The connecting side of the seed 002 channel (the seed's `UDSClient`): connects to the server's
 * Unix socket and sends READY; the server must answer OK.
 */
import net from 'node:net';
import { withWait } from '../../channels/index.js';
import { handshake, waitOptions, type DelimitedConnection, type MessageOptions } from './connection.js';
import { ConnectError } from './errors.js';

export interface ConnectOptions extends MessageOptions {
  /** Time allowed for connecting and the whole handshake, in ms (`Infinity`: forever). Default 30 000. */
  timeout?: number;
  /** Cancels connecting and the handshake. */
  signal?: AbortSignal;
}

export const DEFAULT_CONNECT_TIMEOUT = 30_000;

/**
 * Connects to a seed 002 server at `path` and completes the handshake. Rejects with
 * `ConnectError` (no socket, refused), `HandshakeError` (the server answered something else than
 * OK, or closed first), `TimeoutError` or `AbortedError`.
 *
 * ```ts
 * const conn = await connect(process.argv[2]!, { timeout: 5000 });
 * for (;;) {
 *   const cmd = await conn.receive();
 *   if (cmd === 'QUIT') break;
 *   await conn.send(`done: ${cmd}`);
 * }
 * conn.close();
 * ```
 */
export function connect(path: string, options: ConnectOptions & { binary: true }): Promise<DelimitedConnection<Uint8Array>>;
export function connect(path: string, options?: ConnectOptions & { binary?: false }): Promise<DelimitedConnection<string>>;
export async function connect(path: string, options: ConnectOptions = {}): Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>> {
  const deadline = options.timeout ?? DEFAULT_CONNECT_TIMEOUT;
  const started = performance.now();
  const socket = net.createConnection({ path });
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve();
    });
    socket.once('error', (err) => reject(new ConnectError(path, err)));
  });
  try {
    await withWait('connect', waitOptions(deadline, options.signal), connected);
  } catch (err) {
    socket.on('error', () => {});
    socket.destroy();
    throw err;
  }
  const left = Number.isFinite(deadline) ? Math.max(1, deadline - (performance.now() - started)) : Infinity;
  return handshake(socket, 'client', { ...options, handshakeTimeout: left }) as Promise<DelimitedConnection<string> | DelimitedConnection<Uint8Array>>;
}

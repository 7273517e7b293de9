/**
 * One way to open a client socket: Unix or TCP, optionally TLS, under a timeout and an
 * AbortSignal. Every client driver in wirekit connects through `connectSocket`.
 */
import { ConnectError } from './errors.js';
import net from 'node:net';
import tls from 'node:tls';
import { attachWait, type WaitOptions } from './frame-channel.js';

/** Where a socket listens or connects: a Unix socket path, or a TCP host and port. */
export type SocketAddress = { readonly path: string } | { readonly host: string; readonly port: number };

export interface ConnectSocketOptions extends WaitOptions {
  /** TLS over TCP: `true` for the defaults, or Node's TLS options (ca, servername, ...). Ignored for Unix sockets. */
  tls?: boolean | tls.ConnectionOptions;
  /** Keep the writable side open after the peer ends its side. Default true. */
  allowHalfOpen?: boolean;
  /** Disable Nagle's algorithm on TCP. Default true. */
  noDelay?: boolean;
}


/** `unix:/run/x.sock` or `tcp://host:port` style text for messages. */
export function describeAddress(address: SocketAddress): string {
  if ('path' in address) return address.path;
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Connects to `address` and resolves once the socket (and its TLS handshake, if any) is ready.
 * Rejects with `ConnectError`, `TimeoutError` (`options.timeout` ms) or `AbortedError`; the socket
 * is destroyed on every failure.
 */
export function connectSocket(address: SocketAddress, options: ConnectSocketOptions = {}): Promise<net.Socket> {
  const allowHalfOpen = options.allowHalfOpen ?? true;
  const what = describeAddress(address);
  return new Promise<net.Socket>((resolve, reject) => {
    let socket: net.Socket;
    let ready = 'connect';
    if ('path' in address) {
      socket = net.connect({ path: address.path, allowHalfOpen });
    } else if (options.tls) {
      const extra = typeof options.tls === 'object' ? options.tls : {};
      socket = tls.connect({
        host: address.host,
        port: address.port,
        servername: net.isIP(address.host) ? undefined : address.host,
        ...extra,
        // Node's TLS socket takes allowHalfOpen through its options too.
        ...({ allowHalfOpen } as object),
      });
      ready = 'secureConnect';
    } else {
      socket = net.connect({ host: address.host, port: address.port, allowHalfOpen });
    }
    const fail = (err: Error) => {
      socket.removeListener(ready, onReady);
      socket.removeListener('error', onError);
      socket.on('error', () => {});
      socket.destroy();
      reject(err);
    };
    const disarm = attachWait(`connect to ${what}`, options, fail);
    const onError = (err: Error) => {
      disarm();
      fail(new ConnectError(what, err));
    };
    const onReady = () => {
      disarm();
      socket.removeListener('error', onError);
      if (!('path' in address) && options.noDelay !== false) socket.setNoDelay(true);
      resolve(socket);
    };
    socket.once(ready, onReady);
    socket.once('error', onError);
  });
}

export { ConnectError };

import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SocketAddress } from '../../channels/connect.js';
import { channel } from '../../channels/node-channel.js';
import { TruncatedFrameError } from '../../codecs/errors.js';
import { ConnectionClosedError } from '../../errors.js';
import { CommandRunner, type CommandHandler, type FrameServerOptions } from './command-runner.js';
import { encodeFrames, frameCodec } from './frame.js';
import { errorFrame } from './responses.js';
import { ServerReactor } from './server-reactor.js';

/** Options of a full-duplex frame server connection. */
export interface SocketServeOptions extends FrameServerOptions {
  /** Close a connection that sends nothing for this many milliseconds. Default: no limit. */
  idleTimeout?: number;
}

/** A served connection. */
export interface ServedConnection {
  /** Resolves when the connection is finished (input ended and every response sent). */
  readonly done: Promise<void>;
  /** Destroys the connection, aborting running commands. */
  close(): void;
  /** Commands received and not yet done (at most `maxQueuedCommands` waiting, plus the running one). */
  readonly queuedCommands: number;
}

/**
 * Serves Mercurial's frame protocol on one full-duplex stream (a TCP or Unix socket): frames are
 * read and fed to a `ServerReactor`, commands run one at a time through `handler`, and responses
 * are written as soon as they are ready. Reading waits for writing: once `maxQueuedCommands`
 * commands wait (their responses not yet written, e.g. a client that pipelines and never reads),
 * no more frames are read until one is done. A protocol error is answered with a protocol
 * error-response frame after the responses already due, then the connection is closed.
 */
export function serveConnection(stream: Duplex, handler: CommandHandler, options: SocketServeOptions = {}): ServedConnection {
  const ch = channel(stream, frameCodec({ maxFrameLength: options.maxFrameLength ?? 1024 * 1024 }));
  const reactor = new ServerReactor({ ...options, deferOutput: false });
  const runner = new CommandRunner(reactor, handler, (frames) => ch.writeBytes(encodeFrames(frames)), options);
  const onClose = () => runner.abort(new ConnectionClosedError());
  stream.once('close', onClose);
  const done = (async () => {
    let protocolError: string | undefined;
    try {
      for (;;) {
        const f = await ch.read(options.idleTimeout === undefined ? {} : { timeout: options.idleTimeout });
        if (f === null) break;
        protocolError = await runner.onFrame(f);
        if (protocolError !== undefined) break;
      }
    } catch (err) {
      if (err instanceof TruncatedFrameError || err instanceof ConnectionClosedError) {
        runner.abort(err);
        stream.destroy();
        await runner.idle().catch(() => {});
        return;
      }
      protocolError = err instanceof Error ? err.message : String(err);
    }
    runner.inputEnded();
    try {
      await runner.idle();
      if (protocolError !== undefined) await ch.writeBytes(encodeFrames([errorFrame(protocolError, { protocol: true }, options.maxFrameSize)]));
      await ch.end();
    } catch {
      stream.destroy();
    } finally {
      stream.off('close', onClose);
    }
    if (protocolError !== undefined) stream.destroy();
  })();
  return {
    done,
    close: () => {
      stream.destroy();
    },
    get queuedCommands() {
      return runner.queued;
    },
  };
}

/**
 * A TCP or Unix-socket server of the frame protocol.
 *
 * ```ts
 * const server = new FrameSocketServer(async (cmd) => `hello ${cmd.name}`);
 * const addr = await server.listen({ host: '127.0.0.1', port: 0 });
 * // ...
 * await server.close();
 * ```
 */
export class FrameSocketServer {
  /** The underlying `net.Server`. */
  readonly server: net.Server;
  private readonly connections = new Set<ServedConnection>();

  constructor(handler: CommandHandler, options: SocketServeOptions = {}) {
    this.server = net.createServer((socket) => {
      const conn = serveConnection(socket, handler, options);
      this.connections.add(conn);
      void conn.done.finally(() => this.connections.delete(conn));
    });
  }

  /**
   * Starts listening on a TCP address (`{ host, port }`, port 0 for any) or a Unix socket
   * (`{ path }`); resolves with the bound address (`AddressInfo` or the socket path).
   */
  listen(address: { readonly host: string; readonly port: number }): Promise<net.AddressInfo>;
  listen(address: { readonly path: string }): Promise<string>;
  listen(address: SocketAddress): Promise<net.AddressInfo | string>;
  listen(address: SocketAddress): Promise<net.AddressInfo | string> {
    return listenOn(this.server, address);
  }

  /** Stops listening and destroys every open connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const c of this.connections) c.close();
    });
  }
}

/** Makes `server` listen on a `SocketAddress`; resolves with the bound address (rejects with Node's error). */
export function listenOn(server: net.Server, address: SocketAddress): Promise<net.AddressInfo | string> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    const ready = () => {
      server.off('error', onError);
      resolve(server.address()!);
    };
    if ('path' in address) server.listen({ path: address.path }, ready);
    else server.listen({ host: address.host, port: address.port }, ready);
  });
}

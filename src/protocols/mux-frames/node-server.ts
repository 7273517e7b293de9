/**
 * Node driver of the multiplexed frame profile: serves it on full-duplex streams (TCP and Unix
 * sockets). Frames are read into a `ServerReactor`; each command runs through the handler as soon
 * as it is complete (several at once, their responses interleaved on one output stream), and
 * frames are written in the order the reactor produced them.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { SocketAddress } from '../../channels/connect.js';
import { channel } from '../../channels/node-channel.js';
import { concatBytes } from '../../bytes/text.js';
import { ConnectionClosedError } from '../../errors.js';
import type { CborObject, CborValue } from './cbor.js';
import { MuxApplicationError } from './errors.js';
import { muxFrame } from './frame.js';
import { nodeDeflateRaw } from './node-encodings.js';
import type { ResponseWriter } from './response-writer.js';
import { ServerReactor, type ServerAction, type ServerReactorOptions } from './server-reactor.js';
import type { OutputStream } from './streams.js';

/** A command as a handler sees it. */
export interface MuxCommand {
  readonly requestId: number;
  readonly name: string;
  readonly args: CborObject | Map<CborValue, CborValue>;
  readonly redirect: CborValue | null;
  /** Command data, or null when the request announced none. */
  readonly data: Uint8Array | null;
  /** Aborted when the connection goes away. */
  readonly signal: AbortSignal;
  /** Sends a progress frame for this command. */
  progress(topic: string, pos: number, total: number, extra?: { label?: string; item?: string }): void;
  /** Sends a text-output frame for this command. */
  text(atoms: { msg: string | Uint8Array; args?: (string | Uint8Array)[]; labels?: string[] }[]): void;
}

/**
 * What a handler returns: the response objects (each sent as one CBOR value), as a list or an
 * (async) iterable sent as it yields; a lone byte string or string is one object; nothing means an
 * empty response.
 */
export type MuxCommandResult = Iterable<CborValue> | AsyncIterable<CborValue> | Uint8Array | string | null | undefined | void;

/** Runs a command. Throwing `MuxApplicationError` answers with a command error, anything else with a server error. */
export type MuxCommandHandler = (command: MuxCommand) => MuxCommandResult | Promise<MuxCommandResult>;

/** Options of a served connection. */
export interface MuxServeOptions extends Omit<ServerReactorOptions, 'deferOutput'> {
  /** Largest frame payload accepted, checked from the header. Default 65535. */
  maxFrameLength?: number;
  /** Close a connection that sends nothing for this many milliseconds. Default: no limit. */
  idleTimeout?: number;
  /** Called with errors thrown by handlers (they are also sent to the client). */
  onHandlerError?: (err: unknown, command: MuxCommand) => void;
}

/** A served connection. */
export interface MuxServedConnection {
  /** Resolves when the connection is finished (input ended and every response sent). */
  readonly done: Promise<void>;
  /** Destroys the connection, aborting running commands. */
  close(): void;
}

/**
 * Serves the multiplexed frame protocol on one full-duplex stream. zlib responses use node:zlib
 * unless `options.deflateRaw` says otherwise. A protocol error closes the connection once the
 * responses already started are sent.
 */
export function serveMuxConnection(stream: Duplex, handler: MuxCommandHandler, options: MuxServeOptions = {}): MuxServedConnection {
  const ch = channel(stream, muxFrame({ maxFrameLength: options.maxFrameLength }));
  const reactor = new ServerReactor({ deflateRaw: nodeDeflateRaw, ...options, deferOutput: false });
  const controller = new AbortController();
  const running = new Set<Promise<void>>();
  let out: OutputStream | undefined;
  let writeChain: Promise<void> = Promise.resolve();
  let broken = false;

  const send = (action: ServerAction): void => {
    if (action.type !== 'sendFrames' || broken) return;
    const bytes = concatBytes(action.frames);
    writeChain = writeChain.then(() => ch.writeBytes(bytes)).catch(() => {
      broken = true;
      stream.destroy();
    });
  };

  const run = async (a: Extract<ServerAction, { type: 'runCommand' }>): Promise<void> => {
    out ??= reactor.makeOutputStream();
    const w: ResponseWriter = reactor.startResponse(out, a.requestId);
    const command: MuxCommand = {
      requestId: a.requestId,
      name: a.command,
      args: a.args,
      redirect: a.redirect,
      data: a.data,
      signal: controller.signal,
      progress: (topic, pos, total, extra) => send(w.progress(topic, pos, total, extra)),
      text: (atoms) => send(w.text(atoms)),
    };
    let emitted = false;
    try {
      const result = await handler(command);
      if (result instanceof Uint8Array || typeof result === 'string') {
        // One byte string, not a list of its bytes.
        emitted = true;
        send(w.write(result));
      } else if (result !== null && result !== undefined) {
        for await (const o of result as AsyncIterable<CborValue>) {
          if (controller.signal.aborted) return;
          emitted = true;
          send(w.write(o));
        }
      }
      if (!w.ended) send(w.end());
    } catch (err) {
      options.onHandlerError?.(err, command);
      if (w.ended || controller.signal.aborted) return;
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof MuxApplicationError && !emitted) send(w.commandError(message, err.args));
      else send(w.fail(message || 'command failed'));
    }
  };

  const onClose = () => controller.abort(new ConnectionClosedError());
  stream.once('close', onClose);
  const done = (async () => {
    let failed = false;
    try {
      for (;;) {
        const f = await ch.read(options.idleTimeout === undefined ? {} : { timeout: options.idleTimeout });
        if (f === null) break;
        const a = reactor.onFrame(f);
        if (a.type === 'runCommand') {
          const p = run(a);
          running.add(p);
          void p.finally(() => running.delete(p));
        } else if (a.type === 'error') {
          failed = true;
          break;
        } else send(a);
      }
    } catch {
      failed = true;
    }
    try {
      await Promise.all(running);
      await writeChain;
      if (failed) stream.destroy();
      else await ch.end();
    } catch {
      stream.destroy();
    } finally {
      stream.off('close', onClose);
    }
  })();
  return { done, close: () => stream.destroy() };
}

/**
 * A TCP or Unix-socket server of the multiplexed frame protocol.
 *
 * ```ts
 * const server = new MuxFrameServer(async (cmd) => [`hello ${cmd.name}`]);
 * const addr = await server.listen({ host: '127.0.0.1', port: 0 });
 * // ...
 * await server.close();
 * ```
 */
export class MuxFrameServer {
  /** The underlying `net.Server`. */
  readonly server: net.Server;
  private readonly connections = new Set<MuxServedConnection>();

  constructor(handler: MuxCommandHandler, options: MuxServeOptions = {}) {
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      const conn = serveMuxConnection(socket, handler, options);
      this.connections.add(conn);
      void conn.done.finally(() => this.connections.delete(conn));
    });
  }

  /** Starts listening on `{ host, port }` (port 0 for any) or `{ path }`; resolves with the bound address. */
  listen(address: SocketAddress): Promise<net.AddressInfo | string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const ready = () => {
        this.server.off('error', reject);
        resolve(this.server.address()!);
      };
      if ('path' in address) this.server.listen({ path: address.path }, ready);
      else this.server.listen({ host: address.host, port: address.port }, ready);
    });
  }

  /** Stops listening and destroys every open connection. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const c of this.connections) c.close();
    });
  }
}

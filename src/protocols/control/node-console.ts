/**
 * Node stream drivers of the console protocol (see `console.ts`) on a hijacked connection.
 */
import type { Duplex } from 'node:stream';
import { channel, type NodeFrameChannel } from '../../channels/node-channel.js';
import { MalformedFrameError } from '../../codecs/errors.js';
import type { LinesOptions } from '../../codecs/lines.js';
import { ConnectionClosedError } from '../../errors.js';
import { consoleInputCodec, encodeConsoleKeys, encodeConsoleResize, type ConsoleInput } from './console.js';

/** Client side of a console on a hijacked stream. Terminal output is read from `output`. */
export interface ConsoleClient {
  /** The raw stream: read terminal output from it. */
  readonly output: Duplex;
  /** Sends keystrokes. */
  keys(data: Uint8Array | string): Promise<void>;
  /** Sends the terminal size. */
  resize(rows: number, cols: number): Promise<void>;
  /** Ends the input direction. */
  end(): void;
}

/** Wraps a hijacked client stream for the console protocol. */
export function consoleClient(stream: Duplex): ConsoleClient {
  const write = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      if (stream.destroyed || stream.writableEnded) return reject(new ConnectionClosedError('console stream is closed'));
      stream.write(bytes, (err) => (err ? reject(new ConnectionClosedError('console write failed', err)) : resolve()));
    });
  return {
    output: stream,
    keys: (data) => write(encodeConsoleKeys(data)),
    resize: (rows, cols) => write(encodeConsoleResize(rows, cols)),
    end: () => stream.end(),
  };
}

/** Handlers of the server side of a console. */
export interface ConsoleHandlers {
  keys(data: Uint8Array): void | Promise<void>;
  resize?(rows: number, cols: number): void | Promise<void>;
  /** A bad input line (skipped); default: ignored. */
  invalid?(err: MalformedFrameError): void;
}

/** Server side of a console on a hijacked stream. */
export interface ConsoleServer {
  /** Sends terminal output (raw bytes). */
  write(data: Uint8Array): Promise<void>;
  /** Ends the output direction. */
  end(): Promise<void>;
  /** Resolves when the client ended its input (or the stream closed). */
  readonly done: Promise<void>;
  /** The frame channel reading the input. */
  readonly channel: NodeFrameChannel<ConsoleInput>;
}

/** Reads console input from a hijacked server stream and dispatches it to `handlers`. */
export function serveConsole(stream: Duplex, handlers: ConsoleHandlers, options: LinesOptions = {}): ConsoleServer {
  const ch = channel(stream, consoleInputCodec(options));
  const done = (async () => {
    for (;;) {
      let msg: ConsoleInput | null;
      try {
        msg = await ch.read();
      } catch (err) {
        if (err instanceof MalformedFrameError) {
          handlers.invalid?.(err);
          continue;
        }
        if (err instanceof ConnectionClosedError) return;
        throw err;
      }
      if (msg === null) return;
      if (msg.type === 'keys') await handlers.keys(msg.data);
      else await handlers.resize?.(msg.rows, msg.cols);
    }
  })();
  return {
    write: (data) => ch.writeBytes(data),
    end: () => ch.end(),
    done,
    channel: ch,
  };
}

/**
 * The console protocol osctld speaks after a hijack: the client sends `{"keys": "<base64>"}`
 * and `{"rows": R, "cols": C}` lines, the server sends raw terminal bytes.
 */
import type { Duplex } from 'node:stream';
import type { ByteQueue } from '../../bytes/byte-queue.js';
import { base64Decode, base64Encode, utf8Decode, utf8Encode } from '../../bytes/text.js';
import { channel, type NodeFrameChannel } from '../../channels/node-channel.js';
import type { Codec } from '../../codecs/codec.js';
import { MalformedFrameError } from '../../codecs/errors.js';
import { lines, type LinesOptions } from '../../codecs/lines.js';
import { ConnectionClosedError } from '../../errors.js';

/** One console input message. */
export type ConsoleInput = { type: 'keys'; data: Uint8Array } | { type: 'resize'; rows: number; cols: number };

/** The line (with `\n`) carrying keystrokes. */
export function encodeConsoleKeys(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? utf8Encode(data) : data;
  return utf8Encode(`{"keys":"${utf8Decode(base64Encode(bytes))}"}\n`);
}

/** The line (with `\n`) carrying a terminal size. */
export function encodeConsoleResize(rows: number, cols: number): Uint8Array {
  if (!isDimension(rows) || !isDimension(cols)) throw new RangeError(`invalid terminal size ${rows}x${cols}`);
  return utf8Encode(`{"rows":${rows},"cols":${cols}}\n`);
}

function isDimension(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 65535;
}

/**
 * Decoder (and encoder) of console input lines. A line that is not a valid keys or resize
 * message raises `MalformedFrameError` and is skipped. Default line limit 1 MiB.
 */
export function consoleInputCodec(options: LinesOptions = {}): Codec<ConsoleInput> {
  const inner = lines(options);
  return {
    name: 'console input line',
    decode(queue: ByteQueue): ConsoleInput | undefined {
      const line = inner.decode(queue);
      if (line === undefined) return undefined;
      return parseConsoleInput(line);
    },
    decodeEof(queue: ByteQueue): ConsoleInput | undefined {
      queue.skip(queue.length);
      return undefined;
    },
    encode(msg: ConsoleInput): Uint8Array {
      return msg.type === 'keys' ? encodeConsoleKeys(msg.data) : encodeConsoleResize(msg.rows, msg.cols);
    },
  };
}

function parseConsoleInput(line: Uint8Array): ConsoleInput {
  let v: unknown;
  try {
    v = JSON.parse(utf8Decode(line));
  } catch (err) {
    throw new MalformedFrameError('console input is not valid JSON', line, err);
  }
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    if (typeof o['keys'] === 'string') {
      const data = base64Decode(utf8Encode(o['keys']));
      if (typeof data === 'number') throw new MalformedFrameError('console keys are not valid base64', line);
      return { type: 'keys', data };
    }
    if (isDimension(o['rows']) && isDimension(o['cols'])) return { type: 'resize', rows: o['rows'], cols: o['cols'] };
  }
  throw new MalformedFrameError('unknown console input', line);
}

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

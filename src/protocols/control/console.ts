/**
 * The console protocol osctld speaks after a hijack: the client sends `{"keys": "<base64>"}`
 * and `{"rows": R, "cols": C}` lines, the server sends raw terminal bytes. Sans-I/O: the line
 * encoders and the input codec; the stream drivers are in `node-console.ts`.
 */
import { UsageError } from '../../errors.js';
import type { ByteQueue } from '../../bytes/byte-queue.js';
import type { ByteWriter } from '../../bytes/byte-writer.js';
import { base64Decode, base64Encode, utf8Decode, utf8Encode } from '../../bytes/text.js';
import type { Codec } from '../../codecs/codec.js';
import { MalformedFrameError } from '../../codecs/errors.js';
import { lines, type LinesOptions } from '../../codecs/lines.js';

/** One console input message. */
export type ConsoleInput = { type: 'keys'; data: Uint8Array } | { type: 'resize'; rows: number; cols: number };

/** The line (with `\n`) carrying keystrokes. */
export function encodeConsoleKeys(data: Uint8Array | string): Uint8Array {
  const bytes = typeof data === 'string' ? utf8Encode(data) : data;
  return utf8Encode(`{"keys":"${utf8Decode(base64Encode(bytes))}"}\n`);
}

/** The line (with `\n`) carrying a terminal size. */
export function encodeConsoleResize(rows: number, cols: number): Uint8Array {
  if (!isDimension(rows) || !isDimension(cols)) throw new UsageError(`invalid terminal size ${rows}x${cols}`);
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
    encode(msg: ConsoleInput, out: ByteWriter): void {
      out.append(msg.type === 'keys' ? encodeConsoleKeys(msg.data) : encodeConsoleResize(msg.rows, msg.cols));
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

/**
 * The session data channel (sans-I/O): after a session command is accepted, exec, terminal and
 * forward sessions exchange typed, length-prefixed frames.
 *
 * ```
 * +--------+----------------------+----------------------+
 * | type   | length (u32, BE)     | payload (length B)   |
 * | 1 byte | 4 bytes              |                      |
 * +--------+----------------------+----------------------+
 * ```
 *
 * Terminal data and window-size changes travel in different frame types, so no byte value of the
 * data can ever be taken for a control message (Overlord's 0x80 marker collides with UTF-8).
 */
import type { ByteQueue } from '../bytes/byte-queue.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { utf8Decode, utf8Encode } from '../bytes/text.js';
import type { Codec } from '../codecs/codec.js';
import { MalformedFrameError } from '../codecs/errors.js';
import { LengthFieldCodec } from '../codecs/length-field.js';

/** Frame types of the session data channel. */
export const FrameType = {
  /** Bytes of the main stream: stdin (to an exec), terminal input or output, forwarded bytes. */
  DATA: 0x01,
  /** Standard output of an exec session (daemon to client). */
  STDOUT: 0x02,
  /** Standard error of an exec session (daemon to client). */
  STDERR: 0x03,
  /** End of the sender's DATA stream (stdin end-of-file, half-close of a forwarded connection). Empty payload. */
  EOF: 0x04,
  /** Window size: u16 BE columns, u16 BE rows. Terminal sessions only, client to daemon. */
  RESIZE: 0x05,
  /** The program ended: JSON `{ "code": number | null, "signal": string | null }`. Daemon to client, last frame. */
  EXIT: 0x06,
  /** The session failed: JSON `{ "code": "WK_...", "message": string }`. Last frame. */
  ERROR: 0x07,
  /** Keepalive probe; the payload (at most 64 bytes) is echoed back in a PONG. */
  PING: 0x08,
  /** Keepalive answer. */
  PONG: 0x09,
  /** Deliver a signal to the program: UTF-8 signal name such as `SIGINT`. Client to daemon. */
  SIGNAL: 0x0a,
} as const;

export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

const TYPE_NAMES = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));

/** The name of a frame type (`'DATA'`), or `undefined` for an unknown byte. */
export function frameTypeName(type: number): string | undefined {
  return TYPE_NAMES.get(type);
}

/** One frame of the session data channel. */
export interface SessionFrame {
  type: FrameTypeValue;
  payload: Uint8Array;
}

/** Exit status carried by an EXIT frame. */
export interface ExitStatus {
  /** Exit code, or `null` when the program was killed by a signal. */
  code: number | null;
  /** Signal name (`'SIGKILL'`), or `null`. */
  signal: string | null;
}

/** Header size of a session frame. */
export const SESSION_HEADER_SIZE = 5;
/** Default maximum payload of a session frame (1 MiB). */
export const DEFAULT_MAX_SESSION_FRAME = 1024 * 1024;
const MAX_PING_PAYLOAD = 64;

/**
 * Codec for session frames. The declared length is checked against `maxFrameLength` before the
 * payload is buffered; an unknown type byte raises `MalformedFrameError` (the frame is consumed).
 */
export class SessionCodec implements Codec<SessionFrame> {
  readonly name = 'session frame';
  private readonly inner: LengthFieldCodec<'type'>;

  constructor(options: { maxFrameLength?: number } = {}) {
    this.inner = new LengthFieldCodec<'type'>({
      lengthOffset: 1,
      lengthSize: 4,
      headerSize: SESSION_HEADER_SIZE,
      fields: { type: { offset: 0, size: 1 } },
      maxFrameLength: options.maxFrameLength ?? DEFAULT_MAX_SESSION_FRAME,
      name: 'session frame',
    });
  }

  get maxFrameLength(): number {
    return this.inner.maxFrameLength;
  }

  decode(queue: ByteQueue): SessionFrame | undefined {
    const f = this.inner.decode(queue);
    if (f === undefined) return undefined;
    const type = f.fields.type as number;
    if (!TYPE_NAMES.has(type)) throw new MalformedFrameError(`unknown session frame type 0x${type.toString(16).padStart(2, '0')}`);
    if (type === FrameType.RESIZE && f.payload.length !== 4) throw new MalformedFrameError(`RESIZE frame of ${f.payload.length} bytes (expected 4)`);
    if ((type === FrameType.PING || type === FrameType.PONG) && f.payload.length > MAX_PING_PAYLOAD) {
      throw new MalformedFrameError(`keepalive frame of ${f.payload.length} bytes (at most ${MAX_PING_PAYLOAD})`);
    }
    return { type: type as FrameTypeValue, payload: f.payload };
  }

  decodeEof(queue: ByteQueue): SessionFrame | undefined {
    this.inner.decodeEof(queue);
    return undefined;
  }

  /** The 5-byte header of a frame, for writers that send the payload separately (no copy). */
  header(type: FrameTypeValue, payloadLength: number): Uint8Array {
    return this.inner.encodeHeader(payloadLength, { type });
  }

  encode(frame: SessionFrame, out: ByteWriter): void {
    this.inner.encode({ payload: frame.payload, fields: { type: frame.type } }, out);
  }
}

/** Creates a session frame codec. */
export function sessionCodec(options?: { maxFrameLength?: number }): SessionCodec {
  return new SessionCodec(options);
}

/** Payload of a RESIZE frame. */
export function encodeResize(cols: number, rows: number): Uint8Array {
  const out = new Uint8Array(4);
  const c = clampU16(cols);
  const r = clampU16(rows);
  out[0] = c >> 8;
  out[1] = c & 0xff;
  out[2] = r >> 8;
  out[3] = r & 0xff;
  return out;
}

/** Reads a RESIZE payload; sizes of 0 are raised to 1. */
export function decodeResize(payload: Uint8Array): { cols: number; rows: number } {
  if (payload.length !== 4) throw new MalformedFrameError('RESIZE payload must be 4 bytes', payload);
  return { cols: Math.max(1, (payload[0]! << 8) | payload[1]!), rows: Math.max(1, (payload[2]! << 8) | payload[3]!) };
}

function clampU16(n: number): number {
  if (!Number.isFinite(n)) return 1;
  return Math.min(0xffff, Math.max(1, Math.floor(n)));
}

/** Payload of an EXIT frame. */
export function encodeExit(status: ExitStatus): Uint8Array {
  return utf8Encode(JSON.stringify({ code: status.code, signal: status.signal }));
}

/** Reads an EXIT payload. */
export function decodeExit(payload: Uint8Array): ExitStatus {
  const v = parseJsonObject(payload, 'EXIT');
  const code = v.code;
  const signal = v.signal;
  if (!(code === null || (typeof code === 'number' && Number.isInteger(code))) || !(signal === null || typeof signal === 'string')) {
    throw new MalformedFrameError('EXIT payload must be {"code": integer|null, "signal": string|null}', payload);
  }
  return { code: code as number | null, signal: signal as string | null };
}

/** Payload of an ERROR frame. */
export function encodeError(code: string, message: string): Uint8Array {
  return utf8Encode(JSON.stringify({ code, message }));
}

/** Reads an ERROR payload. */
export function decodeError(payload: Uint8Array): { code: string; message: string } {
  const v = parseJsonObject(payload, 'ERROR');
  return { code: typeof v.code === 'string' ? v.code : 'WK_REMOTE_COMMAND_FAILED', message: typeof v.message === 'string' ? v.message : 'remote error' };
}

function parseJsonObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(utf8Decode(payload));
  } catch (err) {
    throw new MalformedFrameError(`${what} payload is not JSON`, payload, err);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new MalformedFrameError(`${what} payload is not a JSON object`, payload);
  return v as Record<string, unknown>;
}

/** Shortcut: a frame of `type` with a UTF-8 or byte payload. */
export function frame(type: FrameTypeValue, payload: Uint8Array | string = new Uint8Array(0)): SessionFrame {
  return { type, payload: typeof payload === 'string' ? utf8Encode(payload) : payload };
}

import type { ByteQueue } from '../../bytes/byte-queue.js';
import type { ByteWriter } from '../../bytes/byte-writer.js';
import type { Codec } from '../../codecs/codec.js';
import { typedFrame, type LengthFieldCodec } from '../../codecs/length-field.js';
import { MalformedFrameError, TruncatedFrameError } from '../../codecs/errors.js';
import { FRAME_HEADER_SIZE, MAX_PAYLOAD_LENGTH } from './constants.js';
import { FrameEncodingError } from './errors.js';
import { parseFrameNotation } from './notation.js';

/** One frame of Mercurial's frame protocol: a type (0-15), flags (0-15) and a payload. */
export interface Frame {
  type: number;
  flags: number;
  payload: Uint8Array;
}

/** Builds a frame object, checking type, flags and payload size. */
export function frame(type: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Frame {
  checkNibble('frame type', type);
  checkNibble('frame flags', flags);
  if (payload.length > MAX_PAYLOAD_LENGTH) throw new FrameEncodingError(`frame payload of ${payload.length} bytes does not fit the 24-bit length field`);
  return { type, flags, payload };
}

function checkNibble(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 15) throw new FrameEncodingError(`${what} ${v} does not fit in 4 bits`);
}

/** The 4-byte header of a frame with `payloadLength` bytes of payload. */
export function encodeHeader(type: number, flags: number, payloadLength: number): Uint8Array {
  checkNibble('frame type', type);
  checkNibble('frame flags', flags);
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > MAX_PAYLOAD_LENGTH) {
    throw new FrameEncodingError(`frame payload of ${payloadLength} bytes does not fit the 24-bit length field`);
  }
  return new Uint8Array([payloadLength & 0xff, (payloadLength >>> 8) & 0xff, (payloadLength >>> 16) & 0xff, (type << 4) | flags]);
}

/** Encodes one frame (Mercurial's `makeframe`), refusing payloads the length field cannot hold. */
export function encodeFrame(f: Frame): Uint8Array {
  const hdr = encodeHeader(f.type, f.flags, f.payload.length);
  const out = new Uint8Array(FRAME_HEADER_SIZE + f.payload.length);
  out.set(hdr, 0);
  out.set(f.payload, FRAME_HEADER_SIZE);
  return out;
}

/** Encodes several frames into one contiguous buffer. */
export function encodeFrames(frames: Iterable<Frame>): Uint8Array {
  const list = Array.isArray(frames) ? (frames as Frame[]) : [...frames];
  let total = 0;
  for (const f of list) total += FRAME_HEADER_SIZE + f.payload.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const f of list) {
    out.set(encodeHeader(f.type, f.flags, f.payload.length), o);
    out.set(f.payload, o + FRAME_HEADER_SIZE);
    o += FRAME_HEADER_SIZE + f.payload.length;
  }
  return out;
}

/**
 * Parses a frame header at the start of `bytes` (at least 4 bytes). Unlike Mercurial's
 * `parseheader`, which multiplies the third byte by 16384, the length is correct for every
 * 24-bit value.
 */
export function parseHeader(bytes: Uint8Array): { type: number; flags: number; length: number } {
  if (bytes.length < FRAME_HEADER_SIZE) throw new TruncatedFrameError('a frame header', bytes.length);
  const length = bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16);
  const tf = bytes[3]!;
  return { type: tf >>> 4, flags: tf & 0x0f, length };
}

/**
 * Parses one complete serialized frame (header plus exactly its payload; the payload is a view).
 * Throws `TruncatedFrameError` when the bytes are shorter than the header says,
 * `MalformedFrameError` when bytes follow the payload.
 */
export function parseFrame(bytes: Uint8Array): Frame;
/** @deprecated a string is frame notation: use `parseFrameNotation`. */
export function parseFrame(text: string): Frame;
export function parseFrame(input: Uint8Array | string): Frame {
  if (typeof input === 'string') return parseFrameNotation(input);
  const { type, flags, length } = parseHeader(input);
  if (input.length < FRAME_HEADER_SIZE + length) throw new TruncatedFrameError('a frame', input.length);
  if (input.length > FRAME_HEADER_SIZE + length) {
    throw new MalformedFrameError(`frame declares ${length} payload bytes but ${input.length - FRAME_HEADER_SIZE} follow the header`);
  }
  return { type, flags, payload: input.subarray(FRAME_HEADER_SIZE) };
}

/** Options of the frame codec. */
export interface FrameCodecOptions {
  /** Largest payload accepted, checked from the header before buffering. Default 0xffffff (the field's maximum). */
  maxFrameLength?: number;
}

/**
 * Sans-I/O codec of Mercurial's frames, built on the shared `typedFrame()` header codec. Decoding
 * yields `Frame` objects whose payloads are zero-copy views when a frame lies within one chunk.
 */
export class FrameCodec implements Codec<Frame> {
  readonly name = 'Mercurial frame';
  private readonly inner: LengthFieldCodec<'type' | 'flags'>;

  constructor(options: FrameCodecOptions = {}) {
    this.inner = typedFrame(options.maxFrameLength === undefined ? {} : { maxFrameLength: options.maxFrameLength });
  }

  /** The payload size limit in force. */
  get maxFrameLength(): number {
    return this.inner.maxFrameLength;
  }

  decode(queue: ByteQueue): Frame | undefined {
    const f = this.inner.decode(queue);
    if (f === undefined) return undefined;
    return { type: f.fields.type as number, flags: f.fields.flags as number, payload: f.payload };
  }

  decodeEof(queue: ByteQueue): Frame | undefined {
    const f = this.inner.decodeEof(queue);
    if (f === undefined) return undefined;
    return { type: f.fields.type as number, flags: f.fields.flags as number, payload: f.payload };
  }

  encode(f: Frame, out: ByteWriter): void {
    out.bytes(encodeHeader(f.type, f.flags, f.payload.length));
    out.append(f.payload);
  }
}

/** A new codec of Mercurial's frames. */
export function frameCodec(options: FrameCodecOptions = {}): FrameCodec {
  return new FrameCodec(options);
}

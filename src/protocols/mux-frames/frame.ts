/**
 * Wire format of the multiplexed frame profile (Mercurial's later "hgrpc" framing):
 *
 * ```
 * offset 0  3 bytes  payload length, unsigned little-endian (b0 + 256*b1 + 65536*b2)
 * offset 3  2 bytes  request id, unsigned little-endian
 * offset 5  1 byte   stream id
 * offset 6  1 byte   stream flags (0x01 stream-begin, 0x02 stream-end, 0x04 encoded)
 * offset 7  1 byte   frame type (high nibble) | frame flags (low nibble)
 * offset 8  ...      payload
 * ```
 */
import type { ByteQueue } from '../../bytes/byte-queue.js';
import type { ByteWriter } from '../../bytes/byte-writer.js';
import type { Codec } from '../../codecs/codec.js';
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../../codecs/errors.js';
import { MuxProtocolError } from './errors.js';

export const FRAME_HEADER_SIZE = 8;
/** Largest payload Mercurial puts in one frame when it splits data. */
export const DEFAULT_MAX_FRAME_SIZE = 32768;
/** Largest payload a peer may send without negotiating more (the spec's "MUST NOT exceed 65535"). */
export const DEFAULT_MAX_RECEIVE_FRAME_SIZE = 65535;
/** What the 24-bit length field can describe. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

/** Stream flags (header byte 6). */
export const StreamFlag = {
  BEGIN: 0x01,
  END: 0x02,
  ENCODED: 0x04,
} as const;

/** Frame types (high nibble of header byte 7). */
export const FrameType = {
  COMMAND_REQUEST: 0x01,
  COMMAND_DATA: 0x02,
  COMMAND_RESPONSE: 0x03,
  ERROR_RESPONSE: 0x05,
  TEXT_OUTPUT: 0x06,
  PROGRESS: 0x07,
  SENDER_PROTOCOL_SETTINGS: 0x08,
  STREAM_SETTINGS: 0x09,
} as const;

/** Flags of command-request frames. */
export const CommandRequestFlag = { NEW: 0x01, CONTINUATION: 0x02, MORE_FRAMES: 0x04, EXPECT_DATA: 0x08 } as const;
/** Flags of command-data frames. */
export const CommandDataFlag = { CONTINUATION: 0x01, EOS: 0x02 } as const;
/** Flags of command-response frames. */
export const CommandResponseFlag = { CONTINUATION: 0x01, EOS: 0x02 } as const;
/** Flags of sender-protocol-settings frames. */
export const ProtocolSettingsFlag = { CONTINUATION: 0x01, EOS: 0x02 } as const;
/** Flags of stream-settings frames. */
export const StreamSettingsFlag = { CONTINUATION: 0x01, EOS: 0x02 } as const;

/** Names used by the human-readable notation (and by Mercurial). */
export const STREAM_FLAG_NAMES: Readonly<Record<string, number>> = {
  'stream-begin': StreamFlag.BEGIN,
  'stream-end': StreamFlag.END,
  encoded: StreamFlag.ENCODED,
};

export const FRAME_TYPE_NAMES: Readonly<Record<string, number>> = {
  'command-request': FrameType.COMMAND_REQUEST,
  'command-data': FrameType.COMMAND_DATA,
  'command-response': FrameType.COMMAND_RESPONSE,
  'error-response': FrameType.ERROR_RESPONSE,
  'text-output': FrameType.TEXT_OUTPUT,
  progress: FrameType.PROGRESS,
  'sender-protocol-settings': FrameType.SENDER_PROTOCOL_SETTINGS,
  'stream-settings': FrameType.STREAM_SETTINGS,
};

/** Flag names per frame type. */
export const FRAME_FLAG_NAMES: Readonly<Record<number, Readonly<Record<string, number>>>> = {
  [FrameType.COMMAND_REQUEST]: { new: 0x01, continuation: 0x02, more: 0x04, 'have-data': 0x08 },
  [FrameType.COMMAND_DATA]: { continuation: 0x01, eos: 0x02 },
  [FrameType.COMMAND_RESPONSE]: { continuation: 0x01, eos: 0x02 },
  [FrameType.ERROR_RESPONSE]: {},
  [FrameType.TEXT_OUTPUT]: {},
  [FrameType.PROGRESS]: {},
  [FrameType.SENDER_PROTOCOL_SETTINGS]: { continuation: 0x01, eos: 0x02 },
  [FrameType.STREAM_SETTINGS]: { continuation: 0x01, eos: 0x02 },
};

/** One frame of the multiplexed profile. */
export interface MuxFrame {
  requestId: number;
  streamId: number;
  streamFlags: number;
  /** Frame type, 0..15 (see `FrameType`). */
  type: number;
  /** Frame flags, 0..15; their meaning depends on the type. */
  flags: number;
  payload: Uint8Array;
}

/** Name of a frame type, or `<unknown 0xNN>`. */
export function frameTypeName(type: number): string {
  for (const [name, v] of Object.entries(FRAME_TYPE_NAMES)) if (v === type) return name;
  return `<unknown 0x${type.toString(16).padStart(2, '0')}>`;
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new MuxProtocolError(`${name} ${value} is outside 0..${max}`, { origin: 'local' });
  }
}

/** Writes the 8-byte header of `frame` into `out` at `offset`. */
export function writeFrameHeader(out: Uint8Array, offset: number, frame: Omit<MuxFrame, 'payload'>, payloadLength: number): void {
  checkField('payload length', payloadLength, MAX_FRAME_PAYLOAD);
  checkField('request id', frame.requestId, 0xffff);
  checkField('stream id', frame.streamId, 0xff);
  checkField('stream flags', frame.streamFlags, 0xff);
  checkField('frame type', frame.type, 0x0f);
  checkField('frame flags', frame.flags, 0x0f);
  out[offset] = payloadLength & 0xff;
  out[offset + 1] = (payloadLength >>> 8) & 0xff;
  out[offset + 2] = payloadLength >>> 16;
  out[offset + 3] = frame.requestId & 0xff;
  out[offset + 4] = frame.requestId >>> 8;
  out[offset + 5] = frame.streamId;
  out[offset + 6] = frame.streamFlags;
  out[offset + 7] = (frame.type << 4) | frame.flags;
}

/** Serializes one frame (header and payload) into a new array. */
export function encodeFrame(frame: MuxFrame): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + frame.payload.length);
  writeFrameHeader(out, 0, frame, frame.payload.length);
  out.set(frame.payload, FRAME_HEADER_SIZE);
  return out;
}

/** Parses a complete serialized frame (header plus exactly its payload). */
export function parseFrame(bytes: Uint8Array): MuxFrame {
  if (bytes.length < FRAME_HEADER_SIZE) throw new TruncatedFrameError('a mux frame header', bytes.length);
  const len = bytes[0]! + 256 * bytes[1]! + 65536 * bytes[2]!;
  if (bytes.length !== FRAME_HEADER_SIZE + len) {
    throw new MalformedFrameError(`mux frame declares ${len} payload bytes but ${bytes.length - FRAME_HEADER_SIZE} follow the header`);
  }
  return {
    requestId: bytes[3]! | (bytes[4]! << 8),
    streamId: bytes[5]!,
    streamFlags: bytes[6]!,
    type: bytes[7]! >> 4,
    flags: bytes[7]! & 0x0f,
    payload: bytes.subarray(FRAME_HEADER_SIZE),
  };
}

/** Options of `MuxFrameCodec`. */
export interface MuxFrameCodecOptions {
  /**
   * Largest payload accepted, checked from the header before the payload is buffered.
   * Default 65535 (the protocol's limit without negotiation); at most 0xffffff.
   */
  maxFrameLength?: number;
}

/**
 * Decoder/encoder of mux frames over a `ByteQueue` (use with `FrameReader` or `channel`). A frame
 * over the limit raises `FrameTooLargeError`; the stream is then unusable, as its framing is lost.
 */
export class MuxFrameCodec implements Codec<MuxFrame> {
  readonly name = 'mux frame';
  readonly maxFrameLength: number;
  private failed: Error | undefined;

  constructor(options: MuxFrameCodecOptions = {}) {
    this.maxFrameLength = Math.min(options.maxFrameLength ?? DEFAULT_MAX_RECEIVE_FRAME_SIZE, MAX_FRAME_PAYLOAD);
  }

  decode(queue: ByteQueue): MuxFrame | undefined {
    if (this.failed) throw this.failed;
    if (queue.length < FRAME_HEADER_SIZE) return undefined;
    const hdr = queue.peek(FRAME_HEADER_SIZE)!;
    const len = hdr[0]! + 256 * hdr[1]! + 65536 * hdr[2]!;
    if (len > this.maxFrameLength) {
      this.failed = new FrameTooLargeError(this.name, len, this.maxFrameLength, true);
      throw this.failed;
    }
    if (queue.length < FRAME_HEADER_SIZE + len) return undefined;
    const frame: MuxFrame = {
      requestId: hdr[3]! | (hdr[4]! << 8),
      streamId: hdr[5]!,
      streamFlags: hdr[6]!,
      type: hdr[7]! >> 4,
      flags: hdr[7]! & 0x0f,
      payload: new Uint8Array(0),
    };
    queue.skip(FRAME_HEADER_SIZE);
    if (len > 0) frame.payload = queue.read(len)!;
    return frame;
  }

  decodeEof(queue: ByteQueue): MuxFrame | undefined {
    if (queue.length === 0) return undefined;
    const n = queue.length;
    queue.skip(n);
    throw new TruncatedFrameError('a mux frame', n);
  }

  encode(frame: MuxFrame, out: ByteWriter): void {
    const hdr = new Uint8Array(FRAME_HEADER_SIZE);
    writeFrameHeader(hdr, 0, frame, frame.payload.length);
    out.bytes(hdr);
    out.append(frame.payload);
  }
}

/** Factory for `MuxFrameCodec`. */
export function muxFrame(options: MuxFrameCodecOptions = {}): MuxFrameCodec {
  return new MuxFrameCodec(options);
}

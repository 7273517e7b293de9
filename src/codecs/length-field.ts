import type { ByteQueue } from '../bytes/byte-queue.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import type { Codec } from './codec.js';
import { CodecError, CodecUsageError, EncodeError, FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from './errors.js';

/** An extra header field returned with the payload (a type byte, a flags nibble, an id). */
export interface HeaderField {
  /** Offset of the field in the header, in bytes. */
  offset: number;
  /** Size of the field in bytes. */
  size: 1 | 2 | 3 | 4 | 8;
  littleEndian?: boolean;
  /** For sub-byte fields: mask applied to the raw value, then shifted right by `shift`. */
  mask?: number;
  shift?: number;
  /**
   * 8-byte fields: return a `bigint` always. Without it, values above 2^53 - 1 raise
   * `MalformedFrameError` instead of being silently rounded.
   */
  bigint?: boolean;
}

/** A header layout, in the manner of Netty's `LengthFieldBasedFrameDecoder` and tokio-util's `LengthDelimitedCodec`. */
export interface LengthFieldLayout {
  /** Offset of the length field in the header. Default 0. */
  lengthOffset?: number;
  /** Size of the length field in bytes, or `'varint'` for unsigned LEB128. */
  lengthSize: 1 | 2 | 3 | 4 | 8 | 'varint';
  /** Byte order of the length field. Default big-endian. */
  littleEndian?: boolean;
  /**
   * Total header size. Default: `lengthOffset + lengthSize` (fixed sizes); for varint lengths the
   * header always ends with the length field.
   */
  headerSize?: number;
  /** The length field counts the header as well as the payload. Default false. */
  lengthIncludesHeader?: boolean;
  /** Added to the length field value to get the payload size (Netty's `lengthAdjustment`). Default 0. */
  lengthAdjustment?: number;
  /** Extra header fields, returned in `frame.fields`. */
  fields?: Readonly<Record<string, HeaderField>>;
  /** Maximum payload size in bytes, checked as soon as the header is read. Default 8 MiB. */
  maxFrameLength?: number;
  /** Name used in error messages. */
  name?: string;
}

/** A decoded frame: its payload and the extra header fields. */
export interface HeaderFrame<K extends string = string> {
  payload: Uint8Array;
  fields: Record<K, number | bigint>;
}

export const DEFAULT_MAX_FRAME_LENGTH = 8 * 1024 * 1024;
const TWO32 = 0x1_0000_0000;

function readUInt(bytes: Uint8Array, offset: number, size: number, little: boolean): number {
  let v = 0;
  if (little) for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
  else for (let i = 0; i < size; i++) v = v * 256 + bytes[offset + i]!;
  return v;
}

function readU64(bytes: Uint8Array, offset: number, little: boolean): { hi: number; lo: number } {
  const a = readUInt(bytes, offset, 4, little);
  const b = readUInt(bytes, offset + 4, 4, little);
  return little ? { hi: b, lo: a } : { hi: a, lo: b };
}

function writeUInt(out: Uint8Array, offset: number, size: number, little: boolean, value: number): void {
  let v = value;
  for (let i = 0; i < size; i++) {
    const b = v % 256;
    v = Math.floor(v / 256);
    out[little ? offset + i : offset + size - 1 - i] = b;
  }
}

function writeU64(out: Uint8Array, offset: number, little: boolean, value: number | bigint): void {
  const big = BigInt(value);
  if (big < 0n || big >= 1n << 64n) throw new EncodeError(`value ${value} does not fit in 8 bytes`);
  const hi = Number(big >> 32n);
  const lo = Number(big & 0xffffffffn);
  writeUInt(out, offset, 4, little, little ? lo : hi);
  writeUInt(out, offset + 4, 4, little, little ? hi : lo);
}

/** Number of bytes of the unsigned LEB128 encoding of `n`. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as unsigned LEB128 at `offset`; returns the offset after it. */
export function writeVarint(out: Uint8Array, offset: number, n: number): number {
  while (n >= 128) {
    out[offset++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[offset++] = n;
  return offset;
}

interface CompiledField {
  name: string;
  spec: HeaderField;
}

/**
 * Frames with a length field in a configurable header. Decodes to `HeaderFrame` (payload plus
 * named header fields); see `LengthPrefixCodec` for plain payloads.
 *
 * The declared payload size is checked against `maxFrameLength` as soon as the header is complete,
 * before any payload is buffered or allocated; a frame over the limit raises `FrameTooLargeError`
 * (fatal: `error.fatal` is true) and the stream is then unusable (every later call raises the same
 * error), since its framing can no longer be trusted. Every header error is fatal.
 */
export class LengthFieldCodec<K extends string = string> implements Codec<HeaderFrame<K>> {
  readonly name: string;
  readonly maxFrameLength: number;
  protected readonly lengthOffset: number;
  protected readonly lengthSize: number | 'varint';
  protected readonly little: boolean;
  protected readonly headerSize: number; // fixed part (for varint: bytes before the length)
  protected readonly adjust: number;
  private readonly fieldList: CompiledField[];
  private failed: CodecError | undefined;

  constructor(layout: LengthFieldLayout) {
    this.lengthOffset = layout.lengthOffset ?? 0;
    this.lengthSize = layout.lengthSize;
    this.little = layout.littleEndian ?? false;
    this.name = layout.name ?? 'length-prefixed frame';
    if (this.lengthSize === 'varint') {
      if (layout.headerSize !== undefined && layout.headerSize !== this.lengthOffset) {
        throw new CodecUsageError('LengthFieldCodec: with a varint length the header ends with the length field');
      }
      this.headerSize = this.lengthOffset;
    } else {
      this.headerSize = layout.headerSize ?? this.lengthOffset + this.lengthSize;
      if (this.headerSize < this.lengthOffset + this.lengthSize) throw new CodecUsageError('LengthFieldCodec: headerSize too small for the length field');
    }
    this.adjust = (layout.lengthAdjustment ?? 0) - (layout.lengthIncludesHeader ? this.headerSize : 0);
    if (layout.lengthIncludesHeader && this.lengthSize === 'varint') {
      throw new CodecUsageError('LengthFieldCodec: lengthIncludesHeader is not supported with varint lengths');
    }
    const fieldMax = this.lengthSize === 'varint' ? Number.MAX_SAFE_INTEGER : this.lengthSize === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * this.lengthSize) - 1 + this.adjust;
    const max = layout.maxFrameLength ?? DEFAULT_MAX_FRAME_LENGTH;
    // As tokio's adjust_max_frame_len: the limit cannot exceed what the field can describe.
    this.maxFrameLength = Math.min(max, fieldMax);
    this.fieldList = Object.entries(layout.fields ?? {}).map(([name, spec]) => {
      const end = spec.offset + spec.size;
      const limit = this.lengthSize === 'varint' ? this.lengthOffset : this.headerSize;
      if (end > limit) throw new CodecUsageError(`LengthFieldCodec: field ${name} lies outside the header`);
      return { name, spec };
    });
  }

  /** Size of the header of a frame with the given payload length. */
  headerLength(payloadLength: number): number {
    if (this.lengthSize === 'varint') return this.headerSize + varintSize(payloadLength - this.adjust);
    return this.headerSize;
  }

  decode(queue: ByteQueue): HeaderFrame<K> | undefined {
    const plen = this.parseHeader(queue);
    if (plen < 0) return undefined;
    const hlen = this.parsedHeaderLength;
    if (queue.length < hlen + plen) return undefined;
    const fields = this.fieldList.length > 0 ? this.readFields(queue.peek(this.headerSize)!) : ({} as Record<K, number | bigint>);
    queue.skip(hlen);
    return { payload: queue.read(plen)!, fields };
  }

  /** Header length found by the last successful `parseHeader`. */
  parsedHeaderLength = 0;

  /**
   * Reads and validates the header at the front of `queue` without consuming it. Returns the
   * payload length (and sets `parsedHeaderLength`), or -1 when the header is incomplete.
   */
  parseHeader(queue: ByteQueue): number {
    if (this.failed) throw this.failed;
    let hlen = this.headerSize;
    let raw: number;
    if (this.lengthSize === 'varint') {
      raw = 0;
      let scale = 1;
      let i = 0;
      for (;;) {
        const b = queue.byteAt(this.lengthOffset + i);
        if (b < 0) return -1;
        raw += (b & 0x7f) * scale;
        scale *= 128;
        i++;
        if ((b & 0x80) === 0) break;
        if (i >= 10) return this.fail(new MalformedFrameError(`${this.name}: varint length longer than 10 bytes`, queue.peek(this.lengthOffset + i), undefined, { fatal: true }));
      }
      hlen += i;
      if (raw > Number.MAX_SAFE_INTEGER) return this.fail(new FrameTooLargeError(this.name, raw, this.maxFrameLength, true));
    } else {
      if (queue.length < hlen) return -1;
      const size = this.lengthSize;
      const o = this.lengthOffset;
      if (size === 8) {
        const { hi, lo } = readU64(queue.peek(hlen)!, o, this.little);
        if (hi > 0x1fffff) {
          const big = (BigInt(hi) << 32n) | BigInt(lo);
          return this.fail(new FrameTooLargeError(this.name, big, this.maxFrameLength, true));
        }
        raw = hi * TWO32 + lo;
      } else {
        raw = 0;
        if (this.little) for (let i = size - 1; i >= 0; i--) raw = raw * 256 + queue.byteAt(o + i);
        else for (let i = 0; i < size; i++) raw = raw * 256 + queue.byteAt(o + i);
      }
    }
    const plen = raw + this.adjust;
    if (plen < 0) return this.fail(new MalformedFrameError(`${this.name}: length field ${raw} is smaller than the header`, undefined, undefined, { fatal: true }));
    if (plen > this.maxFrameLength) return this.fail(new FrameTooLargeError(this.name, plen, this.maxFrameLength, true));
    this.parsedHeaderLength = hlen;
    return plen;
  }

  decodeEof(queue: ByteQueue): HeaderFrame<K> | undefined {
    if (queue.length === 0) return undefined;
    let detail = '';
    try {
      const plen = this.parseHeader(queue);
      if (plen >= 0) detail = ` (header declares ${plen} payload bytes, ${queue.length - this.parsedHeaderLength} arrived)`;
      else detail = ' (incomplete header)';
    } catch {
      // already reported
    }
    const n = queue.length;
    queue.skip(n);
    throw new TruncatedFrameError(`a ${this.name}`, n, detail);
  }

  private fail(err: CodecError): never {
    this.failed = err;
    throw err;
  }

  private readFields(hdr: Uint8Array): Record<K, number | bigint> {
    const out: Record<string, number | bigint> = {};
    for (const { name, spec } of this.fieldList) {
      const little = spec.littleEndian ?? false;
      let v: number | bigint;
      if (spec.size === 8) {
        const { hi, lo } = readU64(hdr, spec.offset, little);
        if (spec.bigint) v = (BigInt(hi) << 32n) | BigInt(lo);
        else if (hi > 0x1fffff) {
          const big = (BigInt(hi) << 32n) | BigInt(lo);
          return this.fail(new MalformedFrameError(`${this.name}: header field ${name} = ${big} exceeds 2^53 - 1 (declare the field with bigint: true)`, undefined, undefined, { fatal: true }));
        } else v = hi * TWO32 + lo;
      } else {
        v = readUInt(hdr, spec.offset, spec.size, little);
        if (spec.mask !== undefined) v = v & spec.mask;
        if (spec.shift) v = v >>> spec.shift;
      }
      out[name] = v;
    }
    return out as Record<K, number | bigint>;
  }

  /** The header of a frame with `payloadLength` bytes of payload, as a new array. */
  encodeHeader(payloadLength: number, fields: Partial<Record<K, number | bigint>> = {}): Uint8Array {
    this.checkLength(payloadLength);
    const hdr = new Uint8Array(this.headerLength(payloadLength));
    this.fillHeader(hdr, payloadLength, fields);
    return hdr;
  }

  /** Writes the header of a frame with `payloadLength` bytes of payload into `out` (the payload is the caller's to append). */
  writeHeader(out: ByteWriter, payloadLength: number, fields: Partial<Record<K, number | bigint>> = {}): void {
    this.checkLength(payloadLength);
    const hdr = out.reserve(this.headerLength(payloadLength));
    try {
      this.fillHeader(hdr, payloadLength, fields);
    } catch (err) {
      out.unwrite(hdr.length);
      throw err;
    }
  }

  /** Header, then the payload by reference (copied into the writer's scratch when small). */
  encode(frame: { payload: Uint8Array; fields?: Partial<Record<K, number | bigint>> }, out: ByteWriter): void {
    this.writeHeader(out, frame.payload.length, frame.fields);
    if (frame.payload.length > 0) out.append(frame.payload);
  }

  private checkLength(payloadLength: number): void {
    if (!Number.isSafeInteger(payloadLength) || payloadLength < 0) throw new EncodeError(`${this.name}: invalid payload length ${payloadLength}`);
    if (payloadLength > this.maxFrameLength) {
      throw new EncodeError(`${this.name}: payload of ${payloadLength} bytes is over the limit of ${this.maxFrameLength} bytes`, { code: 'WK_FRAME_TOO_LARGE' });
    }
  }

  /** Fills a zeroed header array. */
  private fillHeader(hdr: Uint8Array, payloadLength: number, fields: Partial<Record<K, number | bigint>>): void {
    const raw = payloadLength - this.adjust;
    for (const { name, spec } of this.fieldList) {
      const value = (fields as Record<string, number | bigint | undefined>)[name] ?? 0;
      const little = spec.littleEndian ?? false;
      if (spec.size === 8) writeU64(hdr, spec.offset, little, value);
      else {
        let v = Number(value);
        const mask = spec.mask ?? 2 ** (8 * spec.size) - 1;
        if (spec.shift) v = v * 2 ** spec.shift;
        if (v < 0 || v > mask || !Number.isInteger(v) || (spec.mask !== undefined && (v & ~mask) !== 0)) {
          throw new EncodeError(`${this.name}: header field ${name} = ${value} does not fit its bits`);
        }
        // OR into the existing bytes so fields sharing a byte (nibbles) combine.
        const existing = readUInt(hdr, spec.offset, spec.size, little);
        writeUInt(hdr, spec.offset, spec.size, little, spec.mask !== undefined ? (existing | v) >>> 0 : v);
      }
    }
    if (this.lengthSize === 'varint') writeVarint(hdr, this.lengthOffset, raw);
    else if (this.lengthSize === 8) writeU64(hdr, this.lengthOffset, this.little, raw);
    else writeUInt(hdr, this.lengthOffset, this.lengthSize, this.little, raw);
  }
}

/** A length-prefixed codec whose frames are plain payloads (no extra header fields). */
export class LengthPrefixCodec implements Codec<Uint8Array> {
  private readonly inner: LengthFieldCodec<never>;
  readonly name: string;

  constructor(layout: Omit<LengthFieldLayout, 'fields'>) {
    this.inner = new LengthFieldCodec<never>({ ...layout, fields: {} });
    this.name = this.inner.name;
  }

  get maxFrameLength(): number {
    return this.inner.maxFrameLength;
  }

  decode(queue: ByteQueue): Uint8Array | undefined {
    const plen = this.inner.parseHeader(queue);
    if (plen < 0) return undefined;
    const hlen = this.inner.parsedHeaderLength;
    if (queue.length < hlen + plen) return undefined;
    queue.skip(hlen);
    return queue.read(plen);
  }

  decodeEof(queue: ByteQueue): Uint8Array | undefined {
    return this.inner.decodeEof(queue)?.payload;
  }

  encodeHeader(payloadLength: number): Uint8Array {
    return this.inner.encodeHeader(payloadLength);
  }

  encode(payload: Uint8Array, out: ByteWriter): void {
    this.inner.encode({ payload }, out);
  }
}

/** 4-byte big-endian length prefix, then the payload. */
export function u32be(options: { maxFrameLength?: number } = {}): LengthPrefixCodec {
  return new LengthPrefixCodec({ lengthSize: 4, maxFrameLength: options.maxFrameLength, name: 'u32be frame' });
}

/** Unsigned LEB128 varint length prefix, then the payload (as protobuf's delimited streams). */
export function varint(options: { maxFrameLength?: number } = {}): LengthPrefixCodec {
  return new LengthPrefixCodec({ lengthSize: 'varint', maxFrameLength: options.maxFrameLength, name: 'varint frame' });
}

/**
 * The frame header of Mercurial's first unified framing: 24-bit little-endian payload
 * length, then one byte with the frame type in the high nibble and the flags in the low nibble.
 */
export const FRAME_HEADER_LAYOUT = {
  lengthSize: 3,
  littleEndian: true,
  headerSize: 4,
  fields: {
    type: { offset: 3, size: 1, mask: 0xf0, shift: 4 },
    flags: { offset: 3, size: 1, mask: 0x0f },
  },
  name: 'typed frame',
} as const satisfies LengthFieldLayout;

/** Codec for Mercurial's frame header; frames carry `fields.type` and `fields.flags`. */
export function typedFrame(options: { maxFrameLength?: number } = {}): LengthFieldCodec<'type' | 'flags'> {
  return new LengthFieldCodec<'type' | 'flags'>({ ...FRAME_HEADER_LAYOUT, maxFrameLength: options.maxFrameLength ?? 0xffffff });
}

/**
 * Armchair's packet header: 8-byte big-endian payload length, 1-byte packet type,
 * 8-byte big-endian command id, then the payload. 17 bytes in all.
 */
export const PACKET_HEADER_LAYOUT = {
  lengthSize: 8,
  headerSize: 17,
  fields: {
    type: { offset: 8, size: 1 },
    id: { offset: 9, size: 8 },
  },
  name: 'packet',
} as const satisfies LengthFieldLayout;

/**
 * Codec for Armchair's packet header; frames carry `fields.type` and `fields.id`. Ids above 2^53 - 1
 * raise `MalformedFrameError` unless `bigintIds` is set, in which case ids are bigints.
 */
export function packetFrame(options: { maxFrameLength?: number; bigintIds?: boolean } = {}): LengthFieldCodec<'type' | 'id'> {
  return new LengthFieldCodec<'type' | 'id'>({
    ...PACKET_HEADER_LAYOUT,
    fields: { type: PACKET_HEADER_LAYOUT.fields.type, id: { offset: 9, size: 8, bigint: options.bigintIds ?? false } },
    maxFrameLength: options.maxFrameLength,
  });
}

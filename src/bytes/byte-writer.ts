import { UsageError } from '../errors.js';
import { concatBytes } from './text.js';

/**
 * A growable output buffer that the caller owns and encoders write into.
 *
 * Small writes (headers, integers, short strings) land in one contiguous scratch buffer. A large
 * part handed to `append` is kept by reference, never copied: the writer seals what the scratch
 * holds so far as one part and puts the large part after it, as tokio's encoders append to a
 * caller's buffer and ws keeps a frame's header and payload apart. `parts()` gives the sealed parts
 * in order (a channel corks the socket and writes each); `finish()` gives one contiguous copy for
 * callers that need it.
 *
 * ```ts
 * const out = new ByteWriter();
 * out.u8(0x01);
 * out.u32(payload.length);
 * out.append(payload); // kept by reference when large
 * socket.cork(); for (const p of out.parts()) socket.write(p); socket.uncork();
 * ```
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  /** Start of the scratch region not yet sealed into `sealed`. */
  private start = 0;
  private end = 0;
  private readonly sealed: Uint8Array[] = [];
  private sealedBytes = 0;
  /** Parts at least this long are appended by reference. */
  readonly copyThreshold: number;

  constructor(options: { initialSize?: number; copyThreshold?: number } = {}) {
    this.buf = new Uint8Array(Math.max(16, options.initialSize ?? 256));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.copyThreshold = options.copyThreshold ?? 4096;
  }

  /** Bytes written so far, sealed parts and scratch together. */
  get length(): number {
    return this.sealedBytes + (this.end - this.start);
  }

  /** Makes room for `n` more scratch bytes. Sealed views into the old buffer stay valid. */
  private ensure(n: number): void {
    if (this.end + n <= this.buf.length) return;
    const pending = this.end - this.start;
    let size = Math.max(this.buf.length, 16);
    while (size < pending + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(this.start, this.end));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
    this.start = 0;
    this.end = pending;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.end++] = v;
  }

  u16(v: number, littleEndian = false): void {
    this.ensure(2);
    this.view.setUint16(this.end, v, littleEndian);
    this.end += 2;
  }

  u32(v: number, littleEndian = false): void {
    this.ensure(4);
    this.view.setUint32(this.end, v, littleEndian);
    this.end += 4;
  }

  /** A 64-bit unsigned integer from a bigint or a safe integer. */
  u64(v: number | bigint, littleEndian = false): void {
    this.ensure(8);
    this.view.setBigUint64(this.end, typeof v === 'bigint' ? v : BigInt(v), littleEndian);
    this.end += 8;
  }

  f64(v: number, littleEndian = false): void {
    this.ensure(8);
    this.view.setFloat64(this.end, v, littleEndian);
    this.end += 8;
  }

  /**
   * Reserves `n` zeroed scratch bytes and returns them for the caller to fill at once (a header
   * whose fields are written in place). The view stays valid: the writer never reuses scratch
   * bytes it handed out, but the caller must fill it before the next write.
   */
  reserve(n: number): Uint8Array {
    this.ensure(n);
    const view = this.buf.subarray(this.end, this.end + n);
    view.fill(0);
    this.end += n;
    return view;
  }

  /** Copies `bytes` into the scratch buffer. */
  bytes(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.end);
    this.end += bytes.length;
  }

  /**
   * Adds `part` after what was written so far: by reference when it is at least `copyThreshold`
   * long (the caller must not change it until the parts are written), copied otherwise.
   */
  append(part: Uint8Array): void {
    if (part.length < this.copyThreshold) {
      this.bytes(part);
      return;
    }
    this.seal();
    this.sealed.push(part);
    this.sealedBytes += part.length;
  }

  private seal(): void {
    if (this.end === this.start) return;
    const part = this.buf.subarray(this.start, this.end);
    this.sealed.push(part);
    this.sealedBytes += part.length;
    this.start = this.end;
  }

  /**
   * Takes back the last `n` scratch bytes (a header reserved and then refused). Only bytes
   * written since the last large `append` can be taken back.
   */
  unwrite(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.end - this.start) throw new UsageError(`ByteWriter.unwrite: cannot take back ${n} bytes`);
    this.end -= n;
  }

  /** Drops everything written and not yet taken (after an encoder failed half-way). */
  discard(): void {
    this.sealed.length = 0;
    this.sealedBytes = 0;
    this.start = this.end;
  }

  /** The written bytes as parts in order, and an empty writer after. */
  parts(): Uint8Array[] {
    this.seal();
    const parts = this.sealed.splice(0);
    this.sealedBytes = 0;
    return parts;
  }

  /** The written bytes as one array (no copy when they form a single part), and an empty writer after. */
  finish(): Uint8Array {
    return concatBytes(this.parts());
  }

}

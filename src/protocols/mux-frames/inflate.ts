/**
 * A synchronous, incremental zlib (RFC 1950) / DEFLATE (RFC 1951) decompressor, written for
 * wirekit.
 *
 * Node's zlib bindings are either asynchronous (streams) or one-shot (`inflateSync`, which cannot
 * keep the dictionary between calls), while a stream of this protocol carries one long-lived
 * compression context across frames: each frame payload is an arbitrary slice of one zlib stream.
 * This decoder keeps that context and returns, for every slice pushed, all output of the DEFLATE
 * blocks completed so far (a block cut off by the end of a slice is finished by the next push; a
 * sender's sync flush always ends a block). Output per push and bytes held for an unfinished block
 * are limited.
 */
import { concatBytes } from '../../bytes/text.js';
import { StreamEncodingError } from './errors.js';

const LEN_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577];
const DIST_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
const CL_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
const WINDOW = 32768;

/** A canonical Huffman code: number of codes per length, and symbols in code order. */
interface Huffman {
  counts: Uint16Array;
  symbols: Uint16Array;
}

function buildHuffman(lengths: ArrayLike<number>, n: number): Huffman {
  const counts = new Uint16Array(16);
  for (let i = 0; i < n; i++) counts[lengths[i]!]!++;
  counts[0] = 0;
  // Reject over-subscribed codes (incomplete ones are allowed, as zlib allows a single distance code).
  let left = 1;
  for (let len = 1; len < 16; len++) {
    left = left * 2 - counts[len]!;
    if (left < 0) throw new StreamEncodingError('zlib: over-subscribed Huffman code', { origin: 'remote' });
  }
  const offsets = new Uint16Array(16);
  for (let len = 1; len < 15; len++) offsets[len + 1] = offsets[len]! + counts[len]!;
  const symbols = new Uint16Array(n);
  for (let i = 0; i < n; i++) if (lengths[i]) symbols[offsets[lengths[i]!]!++] = i;
  return { counts, symbols };
}

let fixedLit: Huffman | undefined;
let fixedDist: Huffman | undefined;
function fixedTables(): [Huffman, Huffman] {
  if (!fixedLit || !fixedDist) {
    const l = new Uint8Array(288);
    l.fill(8, 0, 144);
    l.fill(9, 144, 256);
    l.fill(7, 256, 280);
    l.fill(8, 280, 288);
    fixedLit = buildHuffman(l, 288);
    fixedDist = buildHuffman(new Uint8Array(30).fill(5), 30);
  }
  return [fixedLit, fixedDist];
}

/** Thrown internally when the input ends inside a block; the block is retried on the next push. */
const NEED_MORE = Symbol('need more input');

/** Adler-32 over `data`, continuing from `adler`. */
export function adler32(data: Uint8Array, adler = 1): number {
  let a = adler & 0xffff;
  let b = adler >>> 16;
  let i = 0;
  while (i < data.length) {
    const end = Math.min(i + 5552, data.length);
    for (; i < end; i++) {
      a += data[i]!;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** Options of `ZlibInflater`. */
export interface InflaterLimits {
  /** Most output bytes one `push` may produce (a guard against compression bombs). Default 64 MiB. */
  maxOutputPerPush?: number;
  /** Most compressed bytes held while waiting for the end of a block. Default 8 MiB. */
  maxPendingInput?: number;
}

/** Incremental zlib-format decompressor; see the module comment. */
export class ZlibInflater {
  private input: Uint8Array = new Uint8Array(0);
  private pos = 0; // byte position in input
  private bitBuf = 0;
  private bitCnt = 0;
  private state: 'header' | 'block' | 'trailer' | 'done' = 'header';
  private win: Uint8Array = new Uint8Array(4 * WINDOW);
  private winLen = 0;
  private committed = 0; // win[0, committed) is output already returned
  private adler = 1;
  private readonly maxOut: number;
  private readonly maxPending: number;
  private outThisPush = 0;
  private failed: StreamEncodingError | undefined;

  constructor(limits: InflaterLimits = {}) {
    this.maxOut = limits.maxOutputPerPush ?? 64 * 1024 * 1024;
    this.maxPending = limits.maxPendingInput ?? 8 * 1024 * 1024;
  }

  /** True once the zlib stream's final block and checksum have been read. */
  get finished(): boolean {
    return this.state === 'done';
  }

  /** Feeds compressed bytes; returns the decompressed bytes that became available. */
  push(chunk: Uint8Array): Uint8Array {
    if (this.failed) throw this.failed;
    if (this.state === 'done') {
      if (chunk.length === 0) return new Uint8Array(0);
      this.failed = new StreamEncodingError('zlib: data after the end of the compressed stream', { origin: 'remote' });
      throw this.failed;
    }
    const rest = this.input.subarray(this.pos);
    if (rest.length === 0) this.input = chunk;
    else {
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      this.input = joined;
    }
    this.pos = 0;
    this.outThisPush = 0;
    const parts: Uint8Array[] = [];
    try {
      this.run(parts);
    } catch (err) {
      this.failed = err instanceof StreamEncodingError ? err : new StreamEncodingError(`zlib: ${String(err)}`, { origin: 'remote', cause: err });
      throw this.failed;
    }
    if (this.input.length - this.pos > this.maxPending) {
      this.failed = new StreamEncodingError(`zlib: more than ${this.maxPending} compressed bytes without the end of a block`, { origin: 'remote' });
      throw this.failed;
    }
    return concatBytes(parts);
  }

  private run(parts: Uint8Array[]): void {
    for (;;) {
      const savePos = this.pos;
      const saveBuf = this.bitBuf;
      const saveCnt = this.bitCnt;
      const saveWin = this.winLen;
      try {
        if (this.state === 'header') {
          const cmf = this.bits(8);
          const flg = this.bits(8);
          if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7) throw new StreamEncodingError(`zlib: bad header 0x${cmf.toString(16)}`, { origin: 'remote' });
          if ((cmf * 256 + flg) % 31 !== 0) throw new StreamEncodingError('zlib: header check bits are wrong', { origin: 'remote' });
          if (flg & 0x20) throw new StreamEncodingError('zlib: preset dictionaries are not supported', { origin: 'remote' });
          this.state = 'block';
        } else if (this.state === 'block') {
          const final = this.bits(1);
          const type = this.bits(2);
          if (type === 0) this.stored();
          else if (type === 1) {
            const [l, d] = fixedTables();
            this.codes(l, d);
          } else if (type === 2) this.dynamic();
          else throw new StreamEncodingError('zlib: invalid block type 3', { origin: 'remote' });
          this.commit(parts);
          if (final) {
            this.bitBuf = 0;
            this.bitCnt = 0; // to byte boundary
            this.state = 'trailer';
          }
        } else if (this.state === 'trailer') {
          if (this.input.length - this.pos < 4) throw NEED_MORE;
          const want = ((this.input[this.pos]! << 24) | (this.input[this.pos + 1]! << 16) | (this.input[this.pos + 2]! << 8) | this.input[this.pos + 3]!) >>> 0;
          this.pos += 4;
          if (want !== this.adler) throw new StreamEncodingError('zlib: Adler-32 checksum mismatch', { origin: 'remote' });
          this.state = 'done';
          if (this.pos < this.input.length) throw new StreamEncodingError('zlib: data after the end of the compressed stream', { origin: 'remote' });
          return;
        } else return;
      } catch (err) {
        if (err !== NEED_MORE) throw err;
        this.pos = savePos;
        this.bitBuf = saveBuf;
        this.bitCnt = saveCnt;
        this.winLen = saveWin;
        return;
      }
    }
  }

  private commit(parts: Uint8Array[]): void {
    if (this.winLen > this.committed) {
      const out = this.win.slice(this.committed, this.winLen);
      this.outThisPush += out.length;
      if (this.outThisPush > this.maxOut) throw new StreamEncodingError(`zlib: output over the limit of ${this.maxOut} bytes per frame`, { origin: 'remote' });
      this.adler = adler32(out, this.adler);
      parts.push(out);
    }
    // Keep only the last 32 KiB as history.
    if (this.winLen > 2 * WINDOW) {
      this.win.copyWithin(0, this.winLen - WINDOW, this.winLen);
      this.winLen = WINDOW;
    }
    this.committed = this.winLen;
  }

  private bits(n: number): number {
    while (this.bitCnt < n) {
      if (this.pos >= this.input.length) throw NEED_MORE;
      this.bitBuf |= this.input[this.pos++]! << this.bitCnt;
      this.bitCnt += 8;
    }
    const v = this.bitBuf & ((1 << n) - 1);
    this.bitBuf >>>= n;
    this.bitCnt -= n;
    return v;
  }

  private put(byte: number): void {
    if (this.winLen === this.win.length) this.grow(1);
    this.win[this.winLen++] = byte;
  }

  private grow(n: number): void {
    const produced = this.winLen - this.committed;
    if (this.outThisPush + produced + n > this.maxOut) {
      throw new StreamEncodingError(`zlib: output over the limit of ${this.maxOut} bytes per frame`, { origin: 'remote' });
    }
    let size = this.win.length * 2;
    while (size < this.winLen + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.win.subarray(0, this.winLen));
    this.win = next;
  }

  private stored(): void {
    this.bitBuf = 0;
    this.bitCnt = 0;
    if (this.input.length - this.pos < 4) throw NEED_MORE;
    const p = this.pos;
    const len = this.input[p]! | (this.input[p + 1]! << 8);
    const nlen = this.input[p + 2]! | (this.input[p + 3]! << 8);
    if ((len ^ 0xffff) !== nlen) throw new StreamEncodingError('zlib: stored block length check failed', { origin: 'remote' });
    if (this.input.length - p - 4 < len) throw NEED_MORE;
    if (this.winLen + len > this.win.length) this.grow(len);
    this.win.set(this.input.subarray(p + 4, p + 4 + len), this.winLen);
    this.winLen += len;
    this.pos = p + 4 + len;
  }

  private decodeSym(h: Huffman): number {
    let code = 0;
    let first = 0;
    let index = 0;
    for (let len = 1; len < 16; len++) {
      code |= this.bits(1);
      const count = h.counts[len]!;
      if (code - first < count) return h.symbols[index + code - first]!;
      index += count;
      first = (first + count) << 1;
      code <<= 1;
    }
    throw new StreamEncodingError('zlib: invalid Huffman code', { origin: 'remote' });
  }

  private codes(lit: Huffman, dist: Huffman): void {
    for (;;) {
      const sym = this.decodeSym(lit);
      if (sym < 256) {
        this.put(sym);
        continue;
      }
      if (sym === 256) return;
      const li = sym - 257;
      if (li >= 29) throw new StreamEncodingError('zlib: invalid length symbol', { origin: 'remote' });
      const len = LEN_BASE[li]! + this.bits(LEN_EXTRA[li]!);
      const ds = this.decodeSym(dist);
      if (ds >= 30) throw new StreamEncodingError('zlib: invalid distance symbol', { origin: 'remote' });
      const d = DIST_BASE[ds]! + this.bits(DIST_EXTRA[ds]!);
      if (d > this.winLen) throw new StreamEncodingError('zlib: distance reaches before the start of the output', { origin: 'remote' });
      if (this.winLen + len > this.win.length) this.grow(len);
      const w = this.win;
      let from = this.winLen - d;
      for (let i = 0; i < len; i++) w[this.winLen++] = w[from++]!;
    }
  }

  private dynamic(): void {
    const nlen = this.bits(5) + 257;
    const ndist = this.bits(5) + 1;
    const ncode = this.bits(4) + 4;
    if (nlen > 286 || ndist > 30) throw new StreamEncodingError('zlib: bad dynamic block counts', { origin: 'remote' });
    const cl = new Uint8Array(19);
    for (let i = 0; i < ncode; i++) cl[CL_ORDER[i]!] = this.bits(3);
    const clh = buildHuffman(cl, 19);
    const lengths = new Uint8Array(nlen + ndist);
    let i = 0;
    while (i < nlen + ndist) {
      const sym = this.decodeSym(clh);
      if (sym < 16) {
        lengths[i++] = sym;
        continue;
      }
      let rep: number;
      let val = 0;
      if (sym === 16) {
        if (i === 0) throw new StreamEncodingError('zlib: repeat with no previous length', { origin: 'remote' });
        val = lengths[i - 1]!;
        rep = 3 + this.bits(2);
      } else if (sym === 17) rep = 3 + this.bits(3);
      else rep = 11 + this.bits(7);
      if (i + rep > nlen + ndist) throw new StreamEncodingError('zlib: too many code lengths', { origin: 'remote' });
      lengths.fill(val, i, i + rep);
      i += rep;
    }
    if (lengths[256] === 0) throw new StreamEncodingError('zlib: no end-of-block code', { origin: 'remote' });
    this.codes(buildHuffman(lengths.subarray(0, nlen), nlen), buildHuffman(lengths.subarray(nlen), ndist));
  }
}

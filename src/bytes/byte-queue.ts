/**
 * A queue of byte chunks with exact reads, resumable delimiter scans and pushback.
 *
 * Chunks are kept as pushed (never copied on push). A read that lies inside one chunk returns a
 * zero-copy `subarray` view of it; a read that spans chunks copies once into a new array. Callers
 * must therefore not mutate a chunk after pushing it.
 *
 * Delimiter scans remember how far they got: when `indexOf` finds nothing, the next call resumes
 * where the last one stopped, so finding the end of a long frame that arrives in many small chunks
 * is linear in its length, not quadratic.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  /** Index in `chunks` of the first chunk still holding unread bytes. */
  private head = 0;
  /** Offset of the first unread byte in `chunks[head]`. */
  private headOffset = 0;
  private size = 0;

  // Resumable scan state: bytes [0, scanned) from the front hold no match for `scanNeedle`.
  private scanNeedle: number | Uint8Array | undefined;
  private scanned = 0;
  // Where the scan cursor sits: absolute chunk index and offset within it.
  private scanChunk = 0;
  private scanOffset = 0;

  /**
   * Changes whenever bytes leave or are put back at the front (read, skip, unread, drain, clear),
   * never on push. A decoder that caches a view of the front can check it is still valid.
   */
  frontVersion = 0;

  /** Number of bytes buffered. */
  get length(): number {
    return this.size;
  }

  /** Appends a chunk. Empty chunks are ignored. The chunk is kept by reference. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /**
   * Puts bytes back in front of the queue, to be read before anything already buffered
   * (Overlord's ghost's `UnRecv`).
   */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.headOffset > 0) {
      this.chunks[this.head] = this.chunks[this.head]!.subarray(this.headOffset);
      this.headOffset = 0;
    }
    if (this.head > 0) {
      this.head--;
      this.chunks[this.head] = bytes;
    } else {
      this.chunks.unshift(bytes);
      this.scanChunk++;
    }
    this.size += bytes.length;
    this.frontVersion++;
    this.resetScan();
  }

  /** The unread part of the first chunk (a view), or `undefined` when the queue is empty. */
  frontChunk(): Uint8Array | undefined {
    if (this.size === 0) return undefined;
    const c = this.chunks[this.head]!;
    return this.headOffset === 0 ? c : c.subarray(this.headOffset);
  }

  /** The byte at `index` from the front, or -1 when fewer bytes are buffered. */
  byteAt(index: number): number {
    if (index < 0 || index >= this.size) return -1;
    let i = this.head;
    let off = this.headOffset + index;
    for (;;) {
      const c = this.chunks[i]!;
      if (off < c.length) return c[off]!;
      off -= c.length;
      i++;
    }
  }

  /**
   * Returns the first `n` bytes without consuming them, or `undefined` when fewer are buffered.
   * Zero-copy when they lie in one chunk.
   */
  peek(n: number, offset = 0): Uint8Array | undefined {
    if (offset + n > this.size) return undefined;
    if (n === 0) return new Uint8Array(0);
    let i = this.head;
    let off = this.headOffset + offset;
    while (off >= this.chunks[i]!.length) {
      off -= this.chunks[i]!.length;
      i++;
    }
    const first = this.chunks[i]!;
    if (off + n <= first.length) return first.subarray(off, off + n);
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[i]!;
      const take = Math.min(c.length - off, n - filled);
      out.set(c.subarray(off, off + take), filled);
      filled += take;
      off = 0;
      i++;
    }
    return out;
  }

  /**
   * Removes and returns exactly `n` bytes, or returns `undefined` (consuming nothing) when fewer
   * are buffered. Zero-copy when the bytes lie inside one chunk.
   */
  read(n: number): Uint8Array | undefined {
    if (n > this.size) return undefined;
    if (n === 0) return new Uint8Array(0);
    const first = this.chunks[this.head]!;
    const start = this.headOffset;
    if (start + n <= first.length) {
      const view = first.subarray(start, start + n);
      this.advance(n);
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const take = Math.min(c.length - this.headOffset, n - filled);
      out.set(c.subarray(this.headOffset, this.headOffset + take), filled);
      filled += take;
      this.advance(take);
    }
    return out;
  }

  /** Discards `n` bytes from the front (all of them when fewer are buffered). */
  skip(n: number): void {
    this.advance(Math.min(n, this.size));
  }

  /**
   * Finds `needle` (a byte value or a byte sequence) and returns its offset from the front, or -1
   * if it is not among the first `limit` bytes scanned so far. Resumes where the previous call
   * for the same needle stopped. At most `limit + needle length` bytes are examined in total, so a
   * caller can enforce a maximum frame size while scanning. Matches before offset `from` are
   * not reported.
   */
  indexOf(needle: number | Uint8Array, limit = Infinity, from = 0): number {
    if (needle !== this.scanNeedle) {
      this.scanNeedle = needle;
      this.resetScan();
    }
    if (this.scanned < from) this.moveScanTo(Math.min(from, this.size));
    const needleLen = typeof needle === 'number' ? 1 : needle.length;
    if (needleLen === 0) return 0;
    // Scan bytes [scanned, end) where end is bounded by the limit plus the needle itself.
    const end = Math.min(this.size, limit + needleLen);
    if (typeof needle === 'number') return this.scanByte(needle, end);
    return this.scanSequence(needle, end);
  }

  /**
   * Removes and returns the bytes before the next `delimiter`, consuming the delimiter too.
   * Returns `undefined` when no delimiter is buffered yet. Throws nothing itself: when `max` is
   * given and more than `max` bytes are buffered without a delimiter, returns `null` so the
   * caller can report an oversize frame.
   */
  readUntil(delimiter: number | Uint8Array, max = Infinity): Uint8Array | undefined | null {
    const at = this.indexOf(delimiter, max);
    if (at < 0) return this.size > max ? null : undefined;
    if (at > max) return null;
    const body = this.read(at)!;
    this.advance(typeof delimiter === 'number' ? 1 : delimiter.length);
    return body;
  }

  /** Removes and returns everything buffered as one array (Overlord's ghost's `RecvBuf`). */
  drain(): Uint8Array {
    if (this.size === 0) return new Uint8Array(0);
    return this.read(this.size)!;
  }

  /** Removes and returns everything buffered as the chunks it is made of, without copying. */
  drainChunks(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.head; i < this.chunks.length; i++) {
      const c = this.chunks[i]!;
      out.push(i === this.head && this.headOffset > 0 ? c.subarray(this.headOffset) : c);
    }
    this.clear();
    return out;
  }

  /** Discards everything buffered. */
  clear(): void {
    this.frontVersion++;
    this.chunks = [];
    this.head = 0;
    this.headOffset = 0;
    this.size = 0;
    this.resetScan();
  }

  private resetScan(): void {
    this.scanned = 0;
    this.scanChunk = this.head;
    this.scanOffset = this.headOffset;
  }

  private advance(n: number): void {
    if (n === 0) return;
    this.frontVersion++;
    this.size -= n;
    // Keep the scan cursor valid: bytes skipped from the front were already scanned (or not).
    if (this.scanned >= n) this.scanned -= n;
    else this.scanned = -1;
    let left = n;
    while (left > 0) {
      const c = this.chunks[this.head]!;
      const avail = c.length - this.headOffset;
      if (left < avail) {
        this.headOffset += left;
        left = 0;
      } else {
        left -= avail;
        this.head++;
        this.headOffset = 0;
      }
    }
    if (this.scanned < 0) this.resetScan();
    if (this.size === 0) {
      this.chunks = [];
      this.head = 0;
      this.headOffset = 0;
      this.resetScan();
    } else if (this.head > 64 && this.head * 2 > this.chunks.length) {
      // Compact consumed chunk slots so the array does not grow without bound.
      this.chunks = this.chunks.slice(this.head);
      this.scanChunk -= this.head;
      this.head = 0;
    }
  }

  private scanByte(byte: number, end: number): number {
    let pos = this.scanned;
    let ci = this.scanChunk;
    let off = this.scanOffset;
    while (pos < end) {
      const c = this.chunks[ci]!;
      const stop = Math.min(c.length, off + (end - pos));
      const found = c.indexOf(byte, off);
      if (found >= 0 && found < stop) {
        const at = pos + (found - off);
        // Leave the cursor at the match so a repeated call is O(1).
        this.scanned = at;
        this.scanChunk = ci;
        this.scanOffset = found;
        return at;
      }
      pos += stop - off;
      if (stop === c.length) {
        ci++;
        off = 0;
      } else {
        off = stop;
      }
    }
    this.scanned = pos;
    this.scanChunk = ci;
    this.scanOffset = off;
    return -1;
  }

  private scanSequence(seq: Uint8Array, end: number): number {
    const first = seq[0]!;
    for (;;) {
      const at = this.scanByte(first, end);
      if (at < 0) {
        // Back up so a sequence split across the scan boundary is found next time.
        const back = Math.min(this.scanned, seq.length - 1);
        if (back > 0) this.rewindScan(back);
        return -1;
      }
      if (at + seq.length > this.size) {
        // Possible match not complete yet: resume from here when more bytes arrive.
        return -1;
      }
      let ok = true;
      for (let k = 1; k < seq.length; k++) {
        if (this.byteAt(at + k) !== seq[k]) {
          ok = false;
          break;
        }
      }
      if (ok) return at;
      this.stepScan();
    }
  }

  /** Places the scan cursor at `pos` bytes from the front. */
  private moveScanTo(pos: number): void {
    let i = this.head;
    let off = this.headOffset + pos;
    while (i < this.chunks.length && off >= this.chunks[i]!.length) {
      off -= this.chunks[i]!.length;
      i++;
    }
    this.scanned = pos;
    this.scanChunk = i;
    this.scanOffset = off;
  }

  /** Moves the scan cursor one byte forward (past a false match). */
  private stepScan(): void {
    this.scanned++;
    this.scanOffset++;
    if (this.scanOffset >= this.chunks[this.scanChunk]!.length) {
      this.scanChunk++;
      this.scanOffset = 0;
    }
  }

  /** Moves the scan cursor `n` bytes back. */
  private rewindScan(n: number): void {
    this.scanned -= n;
    let left = n;
    while (left > 0) {
      if (this.scanOffset === 0 || this.scanChunk >= this.chunks.length) {
        this.scanChunk--;
        this.scanOffset = this.chunks[this.scanChunk]!.length;
      }
      const take = Math.min(left, this.scanOffset);
      this.scanOffset -= take;
      left -= take;
    }
  }
}

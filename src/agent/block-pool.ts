/**
 * Process-wide pools of equal-sized transfer blocks. A transfer takes blocks, lends them to the
 * file, the socket and the hash thread, and gives them back; the next transfer reuses them. Free
 * blocks are kept up to a cap, so memory stays flat across transfers instead of each one leaving
 * its blocks for a major collection that a small heap seldom runs.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];
  private made = 0;

  constructor(
    readonly blockSize: number,
    /** Free blocks kept for reuse at most; more are dropped. */
    readonly maxFree = 8,
  ) {}

  /** Free blocks held now. */
  get size(): number {
    return this.free.length;
  }

  /** Blocks allocated so far (not taken from the free list). */
  get allocated(): number {
    return this.made;
  }

  /** A block of `blockSize` bytes (contents undefined). */
  take(): Buffer {
    const b = this.free.pop();
    if (b) return b;
    this.made++;
    return Buffer.allocUnsafeSlow(this.blockSize);
  }

  /** Returns a block's memory; the caller must not use it afterwards. Other sizes are ignored. */
  give(block: ArrayBuffer | Uint8Array): void {
    const ab = block instanceof ArrayBuffer ? block : block.buffer;
    if (!(ab instanceof ArrayBuffer) || ab.byteLength !== this.blockSize) return;
    if (block instanceof Uint8Array && (block.byteOffset !== 0 || block.byteLength !== ab.byteLength)) return;
    if (this.free.length < this.maxFree) this.free.push(Buffer.from(ab));
  }
}

const pools = new Map<number, BlockPool>();

/** The shared pool for blocks of `blockSize` bytes. */
export function blockPool(blockSize: number): BlockPool {
  let p = pools.get(blockSize);
  if (!p) pools.set(blockSize, (p = new BlockPool(blockSize)));
  return p;
}

/** The block sizes that have a shared pool (for diagnostics and tests). */
export function sharedBlockSizes(): number[] {
  return [...pools.keys()];
}

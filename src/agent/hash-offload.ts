/**
 * The hash (SHA-256 or BLAKE3, see `hash-algorithms.ts`) of a stream of chunks, computed either
 * inline or on a shared worker thread.
 *
 * Hashing a large transfer on the thread that also drives the socket and the file serialises the
 * three: the socket sits idle while a block is hashed. `OffloadedHash` hands each chunk (by
 * transferring its `ArrayBuffer`, no copy, once the caller no longer needs it) to one worker thread
 * shared by every transfer in the process, so hashing runs beside the I/O. Small transfers use
 * `InlineHash`, which avoids the round trip.
 */
import { Worker } from 'node:worker_threads';
import { HashStateError, HashWorkerError } from './errors.js';
import { createHasher, type Hasher, type HashName } from './hash-algorithms.js';

/** Messages to the hash worker. */
export type HashRequest =
  | { op: 'update'; id: number; algorithm: HashName; chunks: Uint8Array[]; giveBack: number[] }
  | { op: 'digest'; id: number; algorithm: HashName }
  | { op: 'abort'; id: number };

/** Messages from the hash worker. */
export type HashReply = { op: 'recycled'; id: number; buffers: ArrayBuffer[] } | { op: 'digest'; id: number; digest: Uint8Array };

/** An incremental hash whose digest may be computed elsewhere. */
export interface StreamHash {
  /**
   * Adds chunks, in order. The chunks are given away: the caller must not touch them afterwards
   * (their memory may be moved to another thread). `recycle`, when given, gets each distinct
   * chunk's `ArrayBuffer` back once it is free again, for reuse.
   */
  update(chunks: readonly Uint8Array[], recycle?: (buffer: ArrayBuffer) => void): void;
  /** The digest of everything added. The hash is finished afterwards; a later `update` throws. */
  digest(): Promise<Uint8Array>;
  /**
   * Drops the hash without a digest. A transfer's I/O completions may still arrive afterwards (a
   * disk write or socket write that was in flight when the transfer failed): `update` then drops
   * their chunks (handing them to `recycle`) instead of throwing.
   */
  abort(): void;
}

/** Hashes on the calling thread. */
export class InlineHash implements StreamHash {
  private readonly hash: Hasher;
  private state: 'open' | 'digested' | 'aborted' = 'open';

  constructor(algorithm: HashName = 'sha256') {
    this.hash = createHasher(algorithm);
  }

  update(chunks: readonly Uint8Array[], recycle?: (buffer: ArrayBuffer) => void): void {
    if (this.state === 'digested') throw new HashStateError('update() after digest()');
    if (this.state === 'open') for (const c of chunks) this.hash.update(c);
    if (recycle) giveBackAll(chunks, recycle);
  }

  digest(): Promise<Uint8Array> {
    if (this.state !== 'open') return Promise.reject(new HashStateError(`digest() after ${this.state === 'digested' ? 'digest()' : 'abort()'}`));
    this.state = 'digested';
    return Promise.resolve(this.hash.digest());
  }

  abort(): void {
    if (this.state === 'open') this.state = 'aborted';
  }
}

/** Hands each distinct `ArrayBuffer` of `chunks` to `recycle`. */
function giveBackAll(chunks: readonly Uint8Array[], recycle: (buffer: ArrayBuffer) => void): void {
  const seen = new Set<ArrayBufferLike>();
  for (const c of chunks) {
    if (seen.has(c.buffer) || !(c.buffer instanceof ArrayBuffer)) continue;
    seen.add(c.buffer);
    recycle(c.buffer);
  }
}

interface Job {
  recycle?: (buffer: ArrayBuffer) => void;
  resolve?: (d: Uint8Array) => void;
  reject?: (err: Error) => void;
}

/** The process-wide hash worker; started on first use, referenced only while jobs are open. */
class HashThread {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  open(job: Job): number {
    const id = this.nextId++;
    this.jobs.set(id, job);
    const w = this.ensure();
    if (this.jobs.size === 1) w.ref();
    return id;
  }

  post(m: HashRequest, transfer: ArrayBuffer[] = []): void {
    this.ensure().postMessage(m, transfer);
  }

  close(id: number): void {
    if (!this.jobs.delete(id)) return;
    if (this.jobs.size === 0) this.worker?.unref();
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    // The worker only hashes: a small heap keeps its memory down.
    const w = new Worker(new URL('./hash-worker.js', import.meta.url), { resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 2 } });
    w.unref();
    w.on('message', (m: HashReply) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      if (m.op === 'recycled') {
        if (job.recycle) for (const b of m.buffers) job.recycle(b);
      } else {
        this.close(m.id);
        job.resolve?.(m.digest);
      }
    });
    const fail = (err: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const jobs = [...this.jobs.values()];
      this.jobs.clear();
      const e = new HashWorkerError(`hash worker failed: ${err.message}`, err);
      for (const j of jobs) j.reject?.(e);
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new HashWorkerError(`exited with code ${code}`)));
    this.worker = w;
    return w;
  }
}

let thread: HashThread | undefined;

/** Hashes on the shared worker thread. */
export class OffloadedHash implements StreamHash {
  private readonly id: number;
  private readonly job: Job = {};
  private failure: Error | undefined;
  private finished = false;
  private aborted = false;

  constructor(private readonly algorithm: HashName = 'sha256') {
    thread ??= new HashThread();
    this.job.reject = (err) => (this.failure = err);
    this.id = thread.open(this.job);
  }

  update(chunks: readonly Uint8Array[], recycle?: (buffer: ArrayBuffer) => void): void {
    if (this.aborted) {
      // A late completion of an aborted transfer: nothing to hash, the blocks go back.
      if (recycle) giveBackAll(chunks, recycle);
      return;
    }
    if (this.finished) throw new HashStateError('update() after digest()');
    if (chunks.length === 0) return;
    if (recycle) this.job.recycle = recycle;
    const sent: Uint8Array[] = [];
    const transfer: ArrayBuffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    const freeNow: ArrayBuffer[] = [];
    const giveBack: number[] = [];
    for (const c of chunks) {
      // Move whole, unshared buffers; copy views into a larger buffer (its other bytes may still
      // be in use elsewhere) and any buffer seen twice in this batch. A copied view's buffer is
      // free at once; a moved one comes back from the worker.
      const whole = c.buffer instanceof ArrayBuffer && c.byteOffset === 0 && c.byteLength === c.buffer.byteLength;
      const move = whole && !seen.has(c.buffer);
      if (!move && !seen.has(c.buffer) && c.buffer instanceof ArrayBuffer) freeNow.push(c.buffer);
      seen.add(c.buffer);
      if (move) {
        if (recycle) giveBack.push(sent.length);
        sent.push(c);
        transfer.push(c.buffer as ArrayBuffer);
      } else {
        sent.push(c.slice());
      }
    }
    thread!.post({ op: 'update', id: this.id, algorithm: this.algorithm, chunks: sent, giveBack }, transfer);
    if (recycle) for (const b of freeNow) recycle(b);
  }

  digest(): Promise<Uint8Array> {
    if (this.finished) return Promise.reject(new HashStateError('digest() called twice'));
    this.finished = true;
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.job.resolve = resolve;
      this.job.reject = reject;
      thread!.post({ op: 'digest', id: this.id, algorithm: this.algorithm });
    });
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.aborted = true;
    thread!.post({ op: 'abort', id: this.id });
    thread!.close(this.id);
  }
}

/** Transfers at least this large are hashed on the worker thread by default. */
export const OFFLOAD_THRESHOLD = 8 * 1024 * 1024;

/** A SHA-256 stream hash for a transfer of `size` bytes: offloaded when large. */
export function sha256For(size: number, threshold = OFFLOAD_THRESHOLD): StreamHash {
  return streamHashFor('sha256', size, threshold);
}

/**
 * A stream hash of `algorithm` for a transfer of `size` bytes: SHA-256 is offloaded when large;
 * BLAKE3 always runs inline (about 0.15 ms per 1 MiB block here, less than handing the block to
 * the worker and back costs, and a `wirekit cp` process then starts no second isolate: measured
 * less CPU and 10 MB less peak RSS on both sides, and faster copies on a busy 2-core machine).
 * Throws `WK_HASH_UNSUPPORTED` at once when the algorithm is not available here.
 */
export function streamHashFor(algorithm: HashName, size: number, threshold = OFFLOAD_THRESHOLD): StreamHash {
  if (algorithm === 'blake3' || size < threshold) return new InlineHash(algorithm);
  createHasher(algorithm); // fails here, not later on the worker
  return new OffloadedHash(algorithm);
}

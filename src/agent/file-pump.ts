/**
 * Node driver for the transfer stream (see `transfer.ts`): moves a file between a file handle and
 * a raw socket with the data hashed on the way, keeping the file and socket busy at the same time.
 *
 * Sending reads the file ahead into a small pool of reused buffers and keeps a window of written
 * but unflushed bytes on the socket, so hashing one block overlaps with the kernel taking the
 * previous ones (waiting for `drain` after every block would leave the socket idle while hashing).
 * Receiving gathers the socket's chunks and writes them with one `writev` at a time, pausing the
 * socket while more than a window of bytes waits for the disk. Memory stays bounded by the windows.
 */
import type { Duplex } from 'node:stream';
import { AbortedError, ConnectionClosedError, TimeoutError, WirekitError } from '../errors.js';
import { ChecksumError, SessionProtocolError } from './errors.js';
import { BlockPool, blockPool } from './block-pool.js';
import { sha256For, type StreamHash } from './hash-offload.js';
import type { TransferReceiver } from './transfer.js';

/** What `sendFile` needs of a file (a `FileHandle` fits). */
export interface FileSource {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** What `receiveFile` needs of a file (a `FileHandle` fits). */
export interface FileSink {
  writev(buffers: Uint8Array[], position: number): Promise<{ bytesWritten: number }>;
}

/** Tuning of `sendFile`. */
export interface SendFileOptions {
  /** Bytes per file read and socket write (default 1 MiB). */
  blockSize?: number;
  /** Written-but-unflushed bytes allowed on the socket before waiting (default 4 MiB). */
  window?: number;
  /** Called after each block is handed to the socket, with the bytes sent so far. */
  onProgress?: (bytes: number) => void;
  /** The hash to use (default: `sha256For(size)`, on the worker thread when large). */
  hash?: StreamHash;
  /** Fails with `TimeoutError` when no block leaves for this long (the peer stopped reading). */
  stallTimeoutMs?: number;
  /** Stops the transfer (rejects with `AbortedError`, or the signal's reason if it is an Error). */
  signal?: AbortSignal;
  /** Send from this offset on (a resumed transfer; the caller hashed the bytes before it). */
  start?: number;
}

/**
 * Fails a transfer that makes no progress: `touch()` on every completed I/O step; after
 * `timeoutMs` without one, or when `signal` aborts, `onFail` gets the error. `stop()` when done.
 */
function stallWatch(what: string, timeoutMs: number | undefined, signal: AbortSignal | undefined, onFail: (err: Error) => void): { touch(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    if (timeoutMs === undefined || timeoutMs <= 0) return;
    timer = setTimeout(() => onFail(new TimeoutError(`${what} (no progress)`, timeoutMs)), timeoutMs);
    timer.unref?.();
  };
  const onAbort = () => onFail(signal!.reason instanceof Error ? signal!.reason : new AbortedError(what, signal!.reason));
  if (signal?.aborted) queueMicrotask(onAbort);
  else signal?.addEventListener('abort', onAbort, { once: true });
  arm();
  return {
    touch() {
      if (timer) timer.refresh();
    },
    stop() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Sends exactly `size` bytes of `fh` (from offset 0) to `out` and returns their SHA-256. Does not
 * write the digest or end `out`. Rejects with `ChecksumError` if the file shrinks while being read,
 * `ConnectionClosedError` if `out` closes first.
 */
export async function sendFile(fh: FileSource, size: number, out: Duplex, opts: SendFileOptions = {}): Promise<Uint8Array> {
  const blockSize = opts.blockSize ?? 1024 * 1024;
  const window = Math.max(opts.window ?? 4 * 1024 * 1024, blockSize);
  const hash = opts.hash ?? sha256For(size);
  let wake: (() => void) | undefined;
  const pool = blockPool(blockSize);
  // Blocks out of the pool: being read, on the socket, or waiting for the hash thread. Bounded,
  // so a hash that falls behind the socket holds the sender back instead of piling up blocks.
  let lent = 0;
  const maxLent = Math.ceil(window / blockSize) + 4;
  const recycle = (b: ArrayBuffer) => {
    lent--;
    pool.give(b);
    wake?.();
  };
  const take = () => {
    lent++;
    return pool.take();
  };

  let readPos = opts.start ?? 0;
  /** Reads in order, at most two ahead of the hashing. */
  const reads: Promise<{ buf: Buffer; n: number; want: number }>[] = [];
  const startRead = () => {
    if (readPos >= size || reads.length >= 2) return;
    const want = Math.min(blockSize, size - readPos);
    const buf = take();
    const at = readPos;
    readPos += want;
    reads.push(readFully(fh, buf, want, at).then((n) => ({ buf, n, want })));
  };

  let inFlight = 0;
  let failure: Error | undefined;
  const onClose = () => {
    failure ??= new ConnectionClosedError('connection closed while sending a file');
    wake?.();
  };
  const onError = (err: Error) => {
    failure ??= err;
    wake?.();
  };
  out.once('close', onClose);
  out.on('error', onError);
  const watch = stallWatch('sending a file', opts.stallTimeoutMs, opts.signal, onError);
  try {
    let sent = opts.start ?? 0;
    startRead();
    startRead();
    while (sent < size) {
      const { buf, n, want } = await reads.shift()!;
      if (n < want) throw new ChecksumError(`file changed size while being sent (${sent + n} of ${size} bytes)`, 'local');
      const view = n === buf.length ? buf : buf.subarray(0, n);
      if (failure) throw failure;
      inFlight += n;
      // Hashed once the socket is done with it, on the worker thread for large files; the block
      // then comes back to the pool.
      out.write(view, (err) => {
        inFlight -= n;
        watch.touch();
        if (err) failure ??= err;
        // Once the transfer failed, a late completion only gives its block back.
        else if (!failure) hash.update([view], recycle);
        else recycle(view.buffer as ArrayBuffer);
        wake?.();
      });
      sent += n;
      opts.onProgress?.(sent);
      while ((inFlight > window - blockSize || lent >= maxLent) && !failure) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      startRead();
      startRead();
    }
    while (inFlight > 0 && !failure) await new Promise<void>((r) => (wake = r));
    if (failure) throw failure;
    return await hash.digest();
  } catch (err) {
    // Every write still in flight sees the failure when it completes and leaves the hash alone.
    failure ??= err as Error;
    hash.abort();
    throw err;
  } finally {
    watch.stop();
    out.off('close', onClose);
    out.off('error', onError);
    // Let outstanding reads finish before the caller closes the handle.
    await Promise.allSettled(reads);
  }
}

async function readFully(fh: FileSource, buf: Buffer, want: number, position: number): Promise<number> {
  let got = 0;
  while (got < want) {
    const { bytesRead } = await fh.read(buf, got, want - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** Runs a garbage collection of the given kind (see `ReceiveFileOptions.collectGarbage`). */
export type CollectGarbage = (kind: 'minor' | 'major') => void;

/** Tuning of `receiveFile`. */
export interface ReceiveFileOptions {
  /** Size of the blocks the socket's chunks are gathered into for writing and hashing (1 MiB). */
  blockSize?: number;
  /** Bytes waiting for the disk or the hash before the socket is paused (default 4 MiB). */
  window?: number;
  /** Called as data arrives, with the file bytes received so far. */
  onProgress?: (bytes: number) => void;
  /** The hash to use (default: `sha256For(rx.size)`, on the worker thread when large). */
  hash?: StreamHash;
  /**
   * Called with `'minor'` after every `collectEvery` bytes received (default 8 MiB), to release
   * the socket's spent read buffers, and with `'major'` once at the end. Node allocates a fresh
   * 64 KiB buffer for every socket read; V8 sees them only as external memory and, with a small
   * JavaScript heap, lets tens of megabytes of them wait for a collection. A driver that can
   * reach V8's collector (`v8Collector()` in `gc.ts`) passes it here to keep the receiver's peak
   * memory near its window, transfer after transfer.
   */
  collectGarbage?: CollectGarbage;
  collectEvery?: number;
  /** Fails with `TimeoutError` when neither data arrives nor a write completes for this long. */
  stallTimeoutMs?: number;
  /** Stops the transfer (rejects with `AbortedError`, or the signal's reason if it is an Error). */
  signal?: AbortSignal;
  /** Write from this file offset on (a resumed transfer; the caller hashed the bytes before it). */
  start?: number;
}

/**
 * Feeds the first `length` bytes of `fh` to `hash` (the part of a resumed transfer that is
 * already in place, so the digest at the end covers the whole file).
 */
export async function hashPrefix(fh: FileSource, length: number, hash: StreamHash): Promise<void> {
  for (let pos = 0; pos < length; ) {
    const buf = Buffer.alloc(Math.min(1024 * 1024, length - pos));
    const n = await readFully(fh, buf, buf.length, pos);
    if (n < buf.length) throw new ChecksumError(`the partial file is shorter than ${length} bytes`, 'local');
    hash.update([new Uint8Array(buf.buffer, buf.byteOffset, n)]);
    pos += n;
  }
}

/**
 * Feeds `io`'s bytes through `rx` (made without a hasher: this function hashes) and writes the
 * file data to `fh` (from offset 0) until the digest trailer arrived and matched and every byte
 * is on disk. Rejects with `ChecksumError` on a mismatch, `TruncatedFrameError` if `io` ends
 * early, `ConnectionClosedError` if it closes, `SessionProtocolError` if bytes follow the digest.
 * Stops listening to `io` when it settles.
 *
 * The socket's chunks (64 KiB each on Node) are copied into pooled blocks; a full block is
 * written with one `write` and then hashed, so there are few system calls and, when the hash is
 * offloaded, few messages to the hash thread, and the blocks come back for reuse.
 */
export function receiveFile(io: Duplex, rx: TransferReceiver, fh: FileSink, opts: ReceiveFileOptions = {}): Promise<void> {
  const fullBlock = opts.blockSize ?? 1024 * 1024;
  const blockSize = Math.max(1, Math.min(fullBlock, rx.size));
  const maxBlocks = Math.max(2, Math.ceil((opts.window ?? 4 * 1024 * 1024) / blockSize));
  const hash = opts.hash ?? sha256For(rx.size);
  const collect = opts.collectGarbage;
  const collectEvery = opts.collectEvery ?? 8 * 1024 * 1024;
  let nextCollect = collectEvery;
  return new Promise<void>((resolve, reject) => {
    // A file smaller than a block gets blocks of its own size from a pool of its own: shared
    // pools are per size, and one per file size would keep memory for every size ever seen.
    const pool = blockSize === fullBlock ? blockPool(blockSize) : new BlockPool(blockSize, 0);
    /** Blocks taken from the pool and not yet back. */
    let allocated = 0;
    let current: Buffer | undefined;
    let fill = 0;
    /** Full blocks waiting for the disk, in order. */
    const queue: Uint8Array[] = [];
    let writing = false;
    let position = opts.start ?? 0;
    const base = position;
    let complete = false;
    let settled = false;
    let paused = false;

    const recycle = (b: ArrayBuffer) => {
      allocated--;
      pool.give(b);
      retryBacklog();
    };
    const takeBlock = (): Buffer | undefined => {
      if (allocated >= maxBlocks) return undefined;
      allocated++;
      return pool.take();
    };
    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      watch.stop();
      if (collect && rx.received >= collectEvery) setImmediate(() => collect('major'));
      io.off('data', onData);
      io.off('end', onEnd);
      io.off('close', onClose);
      io.off('error', onClose);
      if (err) {
        hash.abort();
        reject(err);
        return;
      }
      hash.digest().then((d) => {
        try {
          rx.verify(d);
          resolve();
        } catch (e) {
          reject(e);
        }
      }, reject);
    };
    const writeNext = () => {
      if (settled || writing) return;
      const block = queue.shift();
      if (!block) {
        if (complete && !backlog) finish();
        return;
      }
      writing = true;
      writeAll(fh, [block], block.length, position)
        .then(
          () => {
            writing = false;
            watch.touch();
            // A write that completes after the transfer failed (connection closed, bad digest)
            // is ignored: the hash is aborted and the file is being removed.
            if (settled) return;
            position += block.length;
            // On disk: the block moves to the hash (and comes back through recycle).
            hash.update([block], recycle);
            writeNext();
          },
          (err: unknown) => finish(err),
        )
        .catch((err: unknown) => finish(err));
    };
    /** Copies file data into blocks; returns what did not fit because no block was free. */
    const store = (data: Uint8Array): Uint8Array | undefined => {
      let off = 0;
      while (off < data.length) {
        if (!current) {
          current = takeBlock();
          fill = 0;
          if (!current) return data.subarray(off);
        }
        const n = Math.min(blockSize - fill, data.length - off);
        current.set(data.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === blockSize) {
          queue.push(current);
          current = undefined;
        }
      }
      return undefined;
    };
    let backlog: Uint8Array | undefined;
    const watch = stallWatch('receiving a file', opts.stallTimeoutMs, opts.signal, (err) => finish(err));
    const onData = (chunk: Uint8Array) => {
      watch.touch();
      let step;
      try {
        step = rx.push(chunk);
      } catch (err) {
        finish(err);
        return;
      }
      if (step.extra) {
        finish(new SessionProtocolError('bytes after the file digest', 'remote'));
        return;
      }
      if (step.data) {
        opts.onProgress?.(base + rx.received);
        if (collect && rx.received >= nextCollect) {
          nextCollect = rx.received + collectEvery;
          collect('minor');
        }
        const rest = store(backlog ? concat2(backlog, step.data) : step.data);
        backlog = rest ? rest.slice() : undefined;
        if (rest && !paused) {
          paused = true;
          io.pause();
        }
      }
      if (step.done) {
        complete = true;
        if (!backlog) flushPartial();
      }
      writeNext();
    };
    /** Data that found no free block waits here, the socket paused, until a block comes back. */
    function retryBacklog() {
      if (settled) return;
      if (backlog) {
        const rest = store(backlog);
        backlog = rest ? rest.slice() : undefined;
        if (!backlog && complete) flushPartial();
      }
      if (!backlog && paused) {
        paused = false;
        io.resume();
      }
      writeNext();
    }
    function flushPartial() {
      if (current && fill > 0) {
        queue.push(current.subarray(0, fill));
        current = undefined;
      }
    }
    io.on('data', onData);
    io.on('end', onEnd);
    io.on('close', onClose);
    io.on('error', onClose);
    function onEnd() {
      try {
        rx.end();
      } catch (err) {
        finish(err);
      }
    }
    function onClose() {
      if (!complete) finish(new ConnectionClosedError('connection closed while receiving a file'));
    }
  });
}

function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

async function writeAll(fh: FileSink, bufs: Uint8Array[], bytes: number, position: number): Promise<void> {
  let done = 0;
  while (done < bytes) {
    const { bytesWritten } = await fh.writev(done === 0 ? bufs : remaining(bufs, done), position + done);
    if (bytesWritten <= 0) throw new WirekitError('WK_IO', 'the file system accepted no bytes', { origin: 'local' });
    done += bytesWritten;
  }
}

function remaining(bufs: Uint8Array[], skip: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of bufs) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}

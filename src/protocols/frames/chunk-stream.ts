import { attachWait, type WaitOptions } from '../../channels/frame-channel.js';
import { concatBytes } from '../../bytes/text.js';
import { ResponseTooLargeError, StreamConsumedError } from './errors.js';

/**
 * A push-to-pull byte stream used by the drivers: the producer `push`es chunks (and awaits
 * `ready()` when over the high-water mark), the consumer iterates with `for await`. Used for
 * streamed command data on the server and streamed response bodies on the client.
 */
export class ChunkStream implements AsyncIterable<Uint8Array> {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private failure: unknown = undefined;
  private discarding = false;
  private iterating = false;
  private readerWake: (() => void) | undefined;
  private writerWake: (() => void) | undefined;

  constructor(private readonly highWaterMark = 1024 * 1024) {}

  /** Bytes pushed and not yet consumed. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True once `end` or `fail` was called. */
  get done(): boolean {
    return this.ended || this.failure !== undefined;
  }

  /** Adds a chunk; returns false when the producer should await `ready()`. */
  push(chunk: Uint8Array): boolean {
    if (this.done) return true;
    if (this.discarding) return true;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    this.wakeReader();
    return this.buffered < this.highWaterMark;
  }

  /** Resolves when the buffer is below the high-water mark (or the consumer went away). */
  ready(options: WaitOptions = {}): Promise<void> {
    if (this.buffered < this.highWaterMark || this.discarding || this.done) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const cleanup = attachWait('waiting for the consumer', options, (err) => {
        this.writerWake = undefined;
        reject(err);
      });
      this.writerWake = () => {
        cleanup();
        resolve();
      };
    });
  }

  /** Marks the end of the stream. */
  end(): void {
    if (this.done) return;
    this.ended = true;
    this.wakeReader();
  }

  /** Ends the stream with an error, thrown to the consumer after the chunks already pushed. */
  fail(err: unknown): void {
    if (this.done) return;
    this.failure = err;
    this.wakeReader();
  }

  /** Drops buffered chunks and everything pushed later (the consumer has no more use for them). */
  discard(): void {
    this.discarding = true;
    this.chunks = [];
    this.buffered = 0;
    this.wakeWriter();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    if (this.iterating) throw new StreamConsumedError();
    this.iterating = true;
    try {
      for (;;) {
        if (this.chunks.length > 0) {
          const c = this.chunks.shift()!;
          this.buffered -= c.length;
          if (this.buffered < this.highWaterMark) this.wakeWriter();
          yield c;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.readerWake = resolve;
        });
      }
    } finally {
      if (!this.done) this.discard();
    }
  }

  /** Collects the whole stream, refusing more than `limit` bytes. */
  async collect(limit = Infinity, onOver?: (size: number) => Error): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const c of this) {
      size += c.length;
      if (size > limit) {
        this.discard();
        throw onOver ? onOver(size) : new ResponseTooLargeError(size, limit);
      }
      parts.push(c);
    }
    return concatBytes(parts);
  }

  private wakeReader(): void {
    const w = this.readerWake;
    this.readerWake = undefined;
    w?.();
  }

  private wakeWriter(): void {
    const w = this.writerWake;
    this.writerWake = undefined;
    w?.();
  }
}

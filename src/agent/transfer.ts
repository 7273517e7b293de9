/**
 * File transfer stream (sans-I/O). After an `upload` or `download` command is accepted, the
 * sending side writes exactly `size` bytes of file data, then the 32-byte digest of those bytes
 * (SHA-256, or BLAKE3 when both sides agreed on it in the request and reply):
 *
 * ```
 * +---------------------------+---------------------------------+
 * | file data (size bytes)    | SHA-256 or BLAKE3 (32 bytes)    |
 * +---------------------------+---------------------------------+
 * ```
 *
 * The size is declared before the switch (in the upload request, or the download reply), so the
 * data needs no framing and no magic end marker that the file could contain.
 */
import { UsageError } from '../errors.js';
import { TruncatedFrameError } from '../codecs/errors.js';
import { ChecksumError } from './errors.js';

/** Size of the digest trailer. */
export const DIGEST_SIZE = 32;

/** An incremental hash (node:crypto's `Hash` fits). */
export interface Hasher {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}

/** What `TransferReceiver.push` produced from one chunk. */
export interface TransferStep {
  /** File data to write (a view of the chunk; no copy). */
  data: Uint8Array | undefined;
  /**
   * True once the digest trailer was read and, with an inline hasher, matched. Without one the
   * caller hashes the data itself and calls `verify()`.
   */
  done: boolean;
  /** Bytes after the trailer (belong to whatever follows). */
  extra: Uint8Array | undefined;
}

function hex(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}

/**
 * Receives a transfer stream: splits chunks into file data and the digest trailer. With a
 * `hasher` it hashes the data and checks the digest itself; with `null` the caller hashes the data
 * (in another thread, say) and passes the result to `verify()`. Throws `ChecksumError` on a
 * mismatch, `TruncatedFrameError` from `end()` when the stream stopped early.
 */
export class TransferReceiver {
  /** File bytes received so far. */
  received = 0;
  private readonly trailer = new Uint8Array(DIGEST_SIZE);
  private trailerFill = 0;
  private finished = false;
  /** Hex SHA-256 of the data, once done (only when `algorithm` is SHA-256). */
  sha256: string | undefined;
  /** Hex digest of the data in `algorithm`, once done. */
  digestHex: string | undefined;

  constructor(
    readonly size: number,
    private readonly hasher: Hasher | null,
    /** The hash's name, for results and messages (the caller supplies the hash itself). */
    readonly algorithm: 'sha256' | 'blake3' = 'sha256',
  ) {
    if (!Number.isSafeInteger(size) || size < 0) throw new UsageError(`invalid transfer size ${size}`);
  }

  get done(): boolean {
    return this.finished;
  }

  push(chunk: Uint8Array): TransferStep {
    if (this.finished) return { data: undefined, done: true, extra: chunk.length > 0 ? chunk : undefined };
    let data: Uint8Array | undefined;
    let rest = chunk;
    const want = this.size - this.received;
    if (want > 0) {
      data = rest.length <= want ? rest : rest.subarray(0, want);
      rest = rest.subarray(data.length);
      this.received += data.length;
      this.hasher?.update(data);
    }
    if (rest.length > 0) {
      const take = Math.min(DIGEST_SIZE - this.trailerFill, rest.length);
      this.trailer.set(rest.subarray(0, take), this.trailerFill);
      this.trailerFill += take;
      rest = rest.subarray(take);
      if (this.trailerFill === DIGEST_SIZE) {
        if (this.hasher) this.verify(this.hasher.digest());
        else this.finished = true;
      }
    }
    return { data: data && data.length > 0 ? data : undefined, done: this.finished, extra: rest.length > 0 ? rest : undefined };
  }

  /** End of input: throws unless the whole stream arrived. */
  end(): void {
    if (this.finished) return;
    const got = this.received + this.trailerFill;
    throw new TruncatedFrameError('a file transfer', got, ` (expected ${this.size} data bytes and a ${DIGEST_SIZE}-byte digest)`);
  }

  /** The digest the sender declared (all zeros until the trailer arrived). */
  get declaredDigest(): Uint8Array {
    return this.trailer;
  }

  /**
   * Compares the digest of the data, computed by the caller, with the declared one; throws
   * `ChecksumError` on a mismatch. Called by `push` itself when there is an inline hasher.
   */
  verify(actual: Uint8Array): void {
    if (this.trailerFill !== DIGEST_SIZE) throw new UsageError('verify() before the digest trailer arrived');
    this.digestHex = hex(actual);
    if (this.algorithm === 'sha256') this.sha256 = this.digestHex;
    let diff = actual.length ^ DIGEST_SIZE;
    for (let i = 0; i < DIGEST_SIZE; i++) diff |= actual[i]! ^ this.trailer[i]!;
    const label = this.algorithm === 'sha256' ? 'SHA-256' : 'BLAKE3';
    if (diff !== 0) throw new ChecksumError(`${label} mismatch: received data hashes to ${this.digestHex}, sender declared ${hex(this.trailer)}`, 'remote');
    this.finished = true;
  }
}

export { hex as toHex };

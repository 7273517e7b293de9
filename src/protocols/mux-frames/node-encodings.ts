/** The Node half of the content encodings: node:zlib's raw DEFLATE for the zlib encoder. */
import * as zlib from 'node:zlib';
import type { EncodingOptions, RawDeflate } from './encodings.js';

/** Raw DEFLATE with a sync flush, by node:zlib (what the zlib stream encoder needs). */
export const nodeDeflateRaw: RawDeflate = (input) => zlib.deflateRawSync(input, { finishFlush: zlib.constants.Z_SYNC_FLUSH });

/** Encoding options with node:zlib's compressor: pass to `ServerReactor` or `createStreamEncoder`. */
export const nodeEncodings: EncodingOptions = Object.freeze({ deflateRaw: nodeDeflateRaw });

/**
 * Whether this runtime's `node:zlib` has zstd at all (`zstdCompressSync`, Node 22.15 / 23.8 and
 * later). Even then wirekit does not offer `zstd-8mb`: the protocol needs a decompression
 * context that lives across frames, and Node exposes zstd only as one-shot calls or asynchronous
 * streams; see docs/frames.md (profile 2).
 */
export function runtimeHasZstd(): boolean {
  return typeof (zlib as unknown as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
}

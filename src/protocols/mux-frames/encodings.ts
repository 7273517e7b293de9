/**
 * Stream content encodings ("content encoding profiles"): `identity`, `zlib`, and `zstd-8mb` where
 * the runtime could support it.
 *
 * An encoder turns the payload bytes of one outgoing stream into encoded bytes; `flush()` makes
 * everything written so far decodable by the peer without ending the stream (a zlib sync flush);
 * `finish()` ends the encoded stream. A decoder is the receiving half: it keeps one context for
 * the whole stream and turns each encoded frame payload into the bytes now available.
 *
 * This module imports no `node:*`: zlib compression takes a raw DEFLATE function as a parameter
 * (`EncodingOptions.deflateRaw`; the Node entry has `nodeDeflateRaw`, node:zlib's), and zlib
 * decompression uses wirekit's own incremental inflater unless `createInflater` gives another.
 */
import { StreamEncodingError } from './errors.js';
import { ZlibInflater, adler32 } from './inflate.js';
import type { InflaterLimits } from './inflate.js';

/**
 * Raw DEFLATE (RFC 1951, no zlib header or checksum) of `input`, ending in a sync flush (an empty
 * stored block, so everything so far is decodable): node:zlib's
 * `deflateRawSync(input, { finishFlush: Z_SYNC_FLUSH })`.
 */
export type RawDeflate = (input: Uint8Array) => Uint8Array;

/** An incremental zlib-format decompressor: each `push` returns the bytes that became available. */
export interface Inflater {
  push(chunk: Uint8Array): Uint8Array;
}

/** What the content encodings are built with. */
export interface EncodingOptions {
  /** Enables the `zlib` encoder. Without it only `identity` can be sent. */
  deflateRaw?: RawDeflate;
  /** The zlib decompressor of a received stream. Default wirekit's `ZlibInflater` (pure TypeScript). */
  createInflater?: (limits?: InflaterLimits) => Inflater;
  /** Limits of the default inflater. */
  inflaterLimits?: InflaterLimits;
}

/** Encoder half of a content encoding. */
export interface StreamEncoder {
  readonly name: string;
  encode(data: Uint8Array): Uint8Array;
  flush(): Uint8Array;
  finish(): Uint8Array;
}

/** Decoder half of a content encoding. */
export interface StreamDecoder {
  readonly name: string;
  decode(data: Uint8Array): Uint8Array;
}

const EMPTY = new Uint8Array(0);

class IdentityEncoder implements StreamEncoder {
  readonly name = 'identity';
  encode(data: Uint8Array): Uint8Array {
    return data;
  }
  flush(): Uint8Array {
    return EMPTY;
  }
  finish(): Uint8Array {
    return EMPTY;
  }
}

class IdentityDecoder implements StreamDecoder {
  readonly name = 'identity';
  decode(data: Uint8Array): Uint8Array {
    return data;
  }
}

const ZLIB_HEADER = Uint8Array.of(0x78, 0x9c);
const EMPTY_SYNC_BLOCK = Uint8Array.of(0x00, 0x00, 0x00, 0xff, 0xff);

/**
 * zlib encoder. Node has no synchronous compressor that keeps its context between calls, so each
 * flush unit is compressed on its own as raw DEFLATE blocks ending in a sync flush, and the units
 * are joined into one zlib stream (one header, Adler-32 over everything at `finish`). Any zlib
 * decoder reads the result as one stream; back-references just never cross a flush unit.
 * Input is buffered until `flush()` or until `unitSize` bytes are pending.
 */
class ZlibEncoder implements StreamEncoder {
  readonly name = 'zlib';
  private pending: Uint8Array[] = [];
  private pendingSize = 0;
  private headerSent = false;
  private adler = 1;
  private finished = false;

  constructor(
    private readonly deflateRaw: RawDeflate,
    private readonly unitSize = 256 * 1024,
  ) {}

  encode(data: Uint8Array): Uint8Array {
    if (this.finished) throw new StreamEncodingError('zlib: stream already finished', { origin: 'local' });
    if (data.length === 0) return EMPTY;
    this.pending.push(data);
    this.pendingSize += data.length;
    return this.pendingSize >= this.unitSize ? this.compressPending() : EMPTY;
  }

  flush(): Uint8Array {
    if (this.finished) return EMPTY;
    return this.compressPending();
  }

  finish(): Uint8Array {
    if (this.finished) return EMPTY;
    const body = this.compressPending();
    this.finished = true;
    const out = new Uint8Array(body.length + 6);
    out.set(body);
    out[body.length] = 0x03; // final, fixed Huffman, end of block
    out[body.length + 1] = 0x00;
    const a = this.adler;
    out[body.length + 2] = a >>> 24;
    out[body.length + 3] = (a >>> 16) & 0xff;
    out[body.length + 4] = (a >>> 8) & 0xff;
    out[body.length + 5] = a & 0xff;
    return out;
  }

  private compressPending(): Uint8Array {
    let input: Uint8Array;
    if (this.pending.length === 1) input = this.pending[0]!;
    else {
      input = new Uint8Array(this.pendingSize);
      let o = 0;
      for (const p of this.pending) {
        input.set(p, o);
        o += p.length;
      }
    }
    this.pending = [];
    this.pendingSize = 0;
    let body: Uint8Array;
    if (input.length === 0) body = EMPTY_SYNC_BLOCK;
    else {
      this.adler = adler32(input, this.adler);
      body = this.deflateRaw(input);
    }
    if (this.headerSent) return body;
    this.headerSent = true;
    const out = new Uint8Array(2 + body.length);
    out.set(ZLIB_HEADER);
    out.set(body, 2);
    return out;
  }
}

class ZlibDecoder implements StreamDecoder {
  readonly name = 'zlib';
  constructor(private readonly inflater: Inflater) {}
  decode(data: Uint8Array): Uint8Array {
    return this.inflater.push(data);
  }
}

/**
 * Content encodings that can be sent with `options`, most preferred first: `zlib` (when a
 * `deflateRaw` is given) and `identity`. Every one of them can be received.
 */
export function availableEncodings(options: EncodingOptions = {}): string[] {
  return options.deflateRaw ? ['zlib', 'identity'] : ['identity'];
}

function unavailable(name: string, origin: 'local' | 'remote'): StreamEncodingError {
  if (name === 'zstd-8mb' || name.startsWith('zstd')) {
    return new StreamEncodingError(`stream encoding ${name} is not available (wirekit has no incremental zstd; see docs/frames.md)`, { origin });
  }
  return new StreamEncodingError(`unknown stream encoding: ${name}`, { origin });
}

/** Creates the encoder of a content encoding; throws `StreamEncodingError` when it is not available. */
export function createStreamEncoder(name: string, options: EncodingOptions = {}): StreamEncoder {
  if (name === 'identity') return new IdentityEncoder();
  if (name === 'zlib') {
    if (!options.deflateRaw) throw new StreamEncodingError('the zlib encoder needs a deflateRaw function (nodeDeflateRaw from wirekit-js/protocols/mux-frames/node)', { origin: 'local' });
    return new ZlibEncoder(options.deflateRaw);
  }
  throw unavailable(name, 'local');
}

/**
 * Creates the decoder of a content encoding. `extra` holds the further CBOR values of the
 * stream-settings payload; the known profiles take none.
 */
export function createStreamDecoder(name: string, extra: readonly unknown[] = [], options: EncodingOptions | InflaterLimits = {}): StreamDecoder {
  if (name !== 'identity' && name !== 'zlib') throw unavailable(name, 'remote');
  if (extra.length > 0) throw new StreamEncodingError(`${name} decoder received unexpected additional values`, { origin: 'remote' });
  if (name === 'identity') return new IdentityDecoder();
  // A bare InflaterLimits object (the former third parameter) is still accepted.
  const o: EncodingOptions = 'deflateRaw' in options || 'createInflater' in options || 'inflaterLimits' in options ? (options as EncodingOptions) : { inflaterLimits: options as InflaterLimits };
  return new ZlibDecoder(o.createInflater ? o.createInflater(o.inflaterLimits) : new ZlibInflater(o.inflaterLimits));
}

/**
 * UTF-8 and base64 helpers over `Uint8Array`, runtime-agnostic, with a fast path on Node.js.
 */

type BufferLike = {
  prototype: { utf8Slice?: (this: Uint8Array, start: number, end: number) => string };
  from(data: string, encoding: string): Uint8Array;
  from(data: ArrayBufferLike, offset: number, length: number): Uint8Array & { toString(enc: string): string };
  byteLength(s: string, enc: string): number;
};
const NodeBuffer = (globalThis as { Buffer?: BufferLike }).Buffer;
const utf8Slice = NodeBuffer?.prototype.utf8Slice;

const lenientDecoder = new TextDecoder('utf-8');
const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Decodes UTF-8; invalid sequences become U+FFFD. */
export function utf8Decode(bytes: Uint8Array, start = 0, end = bytes.length): string {
  if (utf8Slice !== undefined) return utf8Slice.call(bytes, start, end);
  return lenientDecoder.decode(bytes.subarray(start, end));
}

/** Decodes UTF-8 and throws a `TypeError` on any invalid sequence. */
export function utf8DecodeStrict(bytes: Uint8Array): string {
  return strictDecoder.decode(bytes);
}

/** Encodes a string as UTF-8. */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const ENC = new Uint8Array(64);
const DEC = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) {
  ENC[i] = ALPHABET.charCodeAt(i);
  DEC[ALPHABET.charCodeAt(i)] = i;
}
const PAD = 0x3d; // '='

/** Encodes bytes as standard base64 (RFC 4648, with padding), returned as ASCII bytes. */
export function base64Encode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  const full = bytes.length - (bytes.length % 3);
  for (; i < full; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = ENC[n >>> 18]!;
    out[o++] = ENC[(n >>> 12) & 63]!;
    out[o++] = ENC[(n >>> 6) & 63]!;
    out[o++] = ENC[n & 63]!;
  }
  const rest = bytes.length - full;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out[o++] = ENC[n >>> 18]!;
    out[o++] = ENC[(n >>> 12) & 63]!;
    out[o++] = PAD;
    out[o++] = PAD;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out[o++] = ENC[n >>> 18]!;
    out[o++] = ENC[(n >>> 12) & 63]!;
    out[o++] = ENC[(n >>> 6) & 63]!;
    out[o++] = PAD;
  }
  return out;
}

/**
 * Decodes standard base64 given as ASCII bytes. Strict: the length must be a multiple of 4,
 * only the base64 alphabet is allowed, padding only at the end, and unused bits must be zero.
 * Returns the offset of the first offending byte as a negative number `-(offset + 1)` on error.
 */
export function base64Decode(src: Uint8Array): Uint8Array | number {
  const len = src.length;
  if (len === 0) return new Uint8Array(0);
  if (len % 4 !== 0) return -(len + 1);
  let pad = 0;
  if (src[len - 1] === PAD) pad = src[len - 2] === PAD ? 2 : 1;
  const out = new Uint8Array((len / 4) * 3 - pad);
  let o = 0;
  const body = len - 4; // last quantum handled separately
  for (let i = 0; i < body; i += 4) {
    const a = DEC[src[i]!]!;
    const b = DEC[src[i + 1]!]!;
    const c = DEC[src[i + 2]!]!;
    const d = DEC[src[i + 3]!]!;
    if ((a | b | c | d) < 0) {
      for (let k = 0; k < 4; k++) if (DEC[src[i + k]!]! < 0) return -(i + k + 1);
    }
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    out[o++] = (n >>> 8) & 255;
    out[o++] = n & 255;
  }
  const i = body;
  const a = DEC[src[i]!]!;
  const b = DEC[src[i + 1]!]!;
  if (a < 0) return -(i + 1);
  if (b < 0) return -(i + 2);
  if (pad === 2) {
    if (b & 15) return -(i + 2);
    out[o++] = (a << 2) | (b >>> 4);
    return out;
  }
  const c = DEC[src[i + 2]!]!;
  if (c < 0) return -(i + 3);
  if (pad === 1) {
    if (c & 3) return -(i + 3);
    out[o++] = (a << 2) | (b >>> 4);
    out[o++] = ((b & 15) << 4) | (c >>> 2);
    return out;
  }
  const d = DEC[src[i + 3]!]!;
  if (d < 0) return -(i + 4);
  const n = (a << 18) | (b << 12) | (c << 6) | d;
  out[o++] = n >>> 16;
  out[o++] = (n >>> 8) & 255;
  out[o++] = n & 255;
  return out;
}

/** Concatenates byte arrays into one new array (or returns the only one without copying). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Renders up to `max` bytes as a readable escaped string, for error messages. */
export function describeBytes(bytes: Uint8Array, max = 24): string {
  let s = '';
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b >= 0x20 && b < 0x7f && b !== 0x5c && b !== 0x22) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return `"${s}"${bytes.length > max ? `… (${bytes.length} bytes)` : ''}`;
}

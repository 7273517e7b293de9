/**
 * Argument names are bytes on the wire, and the original (Mercurial's `createcommandframes` and its
 * reactor) keys arguments by those bytes. The reactor's `args` record needs string keys, so a name
 * is keyed by a lossless text form: its UTF-8 decoding when it is valid UTF-8, otherwise each byte
 * that is not part of a valid sequence becomes U+DC80..U+DCFF (Python's `surrogateescape`).
 * Distinct names get distinct keys, and `argumentNameBytes(key)` gives the bytes back.
 */

const strict = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

/** Length of the valid UTF-8 sequence at `i`, or 0 (strict: no overlong forms, surrogates or > U+10FFFF). */
function sequenceLength(b: Uint8Array, i: number, end: number): number {
  const c = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < end && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** The key of an argument name: UTF-8 text, with `surrogateescape` for bytes that are not UTF-8. */
export function argumentKey(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const b = bytes.subarray(start, end);
  try {
    return strict.decode(b);
  } catch {
    // Not UTF-8: escape the offending bytes below.
  }
  let s = '';
  let run = 0;
  for (let i = 0; i < b.length; ) {
    const n = sequenceLength(b, i, b.length);
    if (n > 0) {
      i += n;
      continue;
    }
    s += strict.decode(b.subarray(run, i)) + String.fromCharCode(0xdc00 | b[i]!);
    i++;
    run = i;
  }
  return s + strict.decode(b.subarray(run));
}

/** The bytes of an argument name from its key (the inverse of `argumentKey`). */
export function argumentNameBytes(key: string): Uint8Array {
  if (!/[\udc80-\udcff]/.test(key)) return encoder.encode(key);
  const out: number[] = [];
  let run = 0;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    const lowAfterHigh = i > 0 && (key.charCodeAt(i - 1) & 0xfc00) === 0xd800;
    if (c >= 0xdc80 && c <= 0xdcff && !lowAfterHigh) {
      for (const byte of encoder.encode(key.slice(run, i))) out.push(byte);
      out.push(c & 0xff);
      run = i + 1;
    }
  }
  for (const byte of encoder.encode(key.slice(run))) out.push(byte);
  return Uint8Array.from(out);
}

/**
 * UTF-8 with Python's `surrogatepass` error handler, as pickle uses it for `str`: a lone surrogate
 * (U+D800..U+DFFF, as `os.listdir()` gives for undecodable file names) is written as its 3-byte
 * form (`ED A0..BF 80..BF`) and read back as itself. Everything else is strict UTF-8.
 *
 * One case cannot round-trip: Python may write a high and a low surrogate as two 3-byte forms;
 * they read back as two UTF-16 code units, which a JavaScript string cannot tell from the pair's
 * code point, so writing them again gives the 4-byte form.
 */

const strict = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Decodes UTF-8 that may hold surrogates in their 3-byte form; `null` when not valid otherwise. */
export function decodeSurrogatePass(b: Uint8Array): string | null {
  try {
    return strict.decode(b);
  } catch {
    // Slow path below: only input that is not plain UTF-8 gets here.
  }
  let s = '';
  let start = 0;
  for (let i = 0; i < b.length; ) {
    if (b[i] === 0xed && i + 2 < b.length && (b[i + 1]! & 0xe0) === 0xa0 && (b[i + 2]! & 0xc0) === 0x80) {
      const part = b.subarray(start, i);
      try {
        s += strict.decode(part);
      } catch {
        return null;
      }
      s += String.fromCharCode(0xd000 | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f));
      i += 3;
      start = i;
    } else i++;
  }
  try {
    return s + strict.decode(b.subarray(start));
  } catch {
    return null;
  }
}

/** Encodes a string as UTF-8, lone surrogates in their 3-byte form. */
export function encodeSurrogatePass(s: string): Uint8Array {
  if (!LONE_SURROGATE.test(s)) return encoder.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const paired = c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
    if (c >= 0xd800 && c < 0xe000 && !paired) {
      out.push(0xed, 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
      continue;
    }
    const cp = s.codePointAt(i)!;
    for (const byte of encoder.encode(String.fromCodePoint(cp))) out.push(byte);
    if (cp > 0xffff) i++;
  }
  return Uint8Array.from(out);
}

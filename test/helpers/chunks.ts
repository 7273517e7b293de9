import fc from 'fast-check';

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Splits `data` at the given cut points (taken modulo `data.length + 1`, sorted; duplicates give
 * empty chunks). Chunks are copies, so a decoder cannot depend on them sharing one buffer.
 */
export function splitAt(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = cuts.map((c) => Math.abs(c) % (data.length + 1)).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.slice(prev, p));
    prev = p;
  }
  out.push(data.slice(prev));
  return out;
}

/** Arbitrary cut points for a buffer of length `len` (a few random ones, or every byte). */
export function cutsFor(len: number): fc.Arbitrary<number[]> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.array(fc.integer({ min: 0, max: len }), { maxLength: 20 }) },
    { weight: 1, arbitrary: fc.constant(Array.from({ length: len + 1 }, (_, i) => i)) },
  );
}

/** Property helper: `data` with arbitrary chunkings (including empty and 1-byte chunks). */
export function chunkings(data: Uint8Array): fc.Arbitrary<Uint8Array[]> {
  return cutsFor(data.length).map((cuts) => splitAt(data, cuts));
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Asserts two byte arrays hold the same bytes (whatever their class: Buffer or Uint8Array). */
export function sameBytes(actual: Uint8Array | null | undefined, expected: Uint8Array, message?: string): void {
  if (!actual) throw new Error(`${message ?? 'bytes'}: got ${String(actual)}`);
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.length !== b.length) throw new Error(`${message ?? 'bytes'}: length ${a.length} !== ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) throw new Error(`${message ?? 'bytes'}: differ at offset ${i}: ${a[i]} !== ${b[i]}`);
  }
}

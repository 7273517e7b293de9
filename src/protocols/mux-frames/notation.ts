/**
 * The human-readable notation of this profile, as used by Mercurial's tests:
 *
 * ```
 * <request-id> <stream-id> <stream-flags> <type> <flags> <payload>
 * 1 1 stream-begin command-request new cbor:{b'name': b'heads'}
 * ```
 *
 * Stream flags, type and flags are names or integers; flags combine with `|`. A payload starting
 * with `cbor:` is a Python literal (bytes `b'..'`, integers, `True`/`False`/`None`, lists, tuples,
 * dicts, sets) encoded as CBOR; any other payload is the body of a Python bytes literal
 * (`\n`, `\x01`, `\\`, ... escapes).
 */
import type { CborValue } from './cbor.js';
import { decodeCborAll, encodeCbor } from './cbor.js';
import { FRAME_FLAG_NAMES, FRAME_TYPE_NAMES, STREAM_FLAG_NAMES, encodeFrame, frameTypeName } from './frame.js';
import type { MuxFrame } from './frame.js';
import { NotationError } from './errors.js';

export { NotationError };

function parseFlags(text: string, names: Readonly<Record<string, number>>): number {
  let v = 0;
  for (const part of text.split('|')) {
    if (Object.prototype.hasOwnProperty.call(names, part)) v |= names[part]!;
    else if (/^\d+$/.test(part)) v |= Number(part);
    else throw new NotationError(`unknown flag ${JSON.stringify(part)}`);
  }
  return v;
}

/** Parses one frame in the notation. */
export function parseFrameNotation(s: string): MuxFrame {
  const fields: string[] = [];
  let rest = s;
  for (let i = 0; i < 5; i++) {
    const sp = rest.indexOf(' ');
    if (sp < 0) throw new NotationError(`expected 6 space-separated fields in ${JSON.stringify(s)}`);
    fields.push(rest.slice(0, sp));
    rest = rest.slice(sp + 1);
  }
  const [req, stream, sflags, type, flags] = fields as [string, string, string, string, string];
  if (!/^\d+$/.test(req) || !/^\d+$/.test(stream)) throw new NotationError('request id and stream id must be integers');
  const typeId = Object.prototype.hasOwnProperty.call(FRAME_TYPE_NAMES, type) ? FRAME_TYPE_NAMES[type]! : /^\d+$/.test(type) ? Number(type) : NaN;
  if (Number.isNaN(typeId)) throw new NotationError(`unknown frame type ${JSON.stringify(type)}`);
  const payload = rest.startsWith('cbor:') ? encodeCbor(parseCborNotation(rest.slice(5))) : unescapeBytes(rest);
  return {
    requestId: Number(req),
    streamId: Number(stream),
    streamFlags: parseFlags(sflags, STREAM_FLAG_NAMES),
    type: typeId,
    flags: parseFlags(flags, FRAME_FLAG_NAMES[typeId] ?? {}),
    payload,
  };
}

/** Parses a frame in the notation and serializes it (Mercurial's `makeframefromhumanstring`). */
export function frameFromNotation(s: string): Uint8Array {
  return encodeFrame(parseFrameNotation(s));
}

function flagNames(value: number, names: Readonly<Record<string, number>>): string {
  if (value === 0) return '0';
  const parts: string[] = [];
  for (let bit = 1; bit <= value; bit <<= 1) {
    if (!(value & bit)) continue;
    const name = Object.keys(names).find((k) => names[k] === bit);
    parts.push(name ?? String(bit));
  }
  return parts.join('|');
}

const CBOR_TYPES = new Set([1, 5, 6, 7, 8, 9]);

/**
 * Formats a frame in the notation. Payloads of CBOR-carrying frame types that decode to exactly
 * one value (and are not content-encoded) are shown as `cbor:` literals.
 */
export function formatFrameNotation(frame: MuxFrame): string {
  const head = `${frame.requestId} ${frame.streamId} ${flagNames(frame.streamFlags, STREAM_FLAG_NAMES)} ${frameTypeName(frame.type).startsWith('<') ? frame.type : frameTypeName(frame.type)} ${flagNames(frame.flags, FRAME_FLAG_NAMES[frame.type] ?? {})}`;
  if (CBOR_TYPES.has(frame.type) && !(frame.streamFlags & 0x04) && frame.payload.length > 0) {
    try {
      const values = decodeCborAll(frame.payload);
      if (values.length === 1) return `${head} cbor:${formatCborNotation(values[0]!)}`;
    } catch {
      // not CBOR: show the bytes
    }
  }
  return `${head} ${escapeBytes(frame.payload)}`;
}

// ---------------------------------------------------------------------------------------------
// Python bytes escapes

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34 };

/** Decodes the body of a Python bytes literal (its escapes); other characters are taken as UTF-8. */
export function unescapeBytes(s: string): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out.push(...enc.encode(c));
      continue;
    }
    const n = s[i + 1]!;
    if (n in SIMPLE_ESCAPES) {
      out.push(SIMPLE_ESCAPES[n]!);
      i++;
    } else if (n === 'x') {
      const hex = s.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new NotationError(`invalid \\x escape at ${i}`);
      out.push(parseInt(hex, 16));
      i += 3;
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i + 1))![0];
      out.push(parseInt(m, 8) & 0xff);
      i += m.length;
    } else if (n === '\n') {
      i++;
    } else {
      out.push(92);
    }
  }
  return Uint8Array.from(out);
}

function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const x of b) {
    if (x === 92) s += '\\\\';
    else if (x === 10) s += '\\n';
    else if (x === 13) s += '\\r';
    else if (x === 9) s += '\\t';
    else if (x >= 0x20 && x < 0x7f) s += String.fromCharCode(x);
    else s += `\\x${x.toString(16).padStart(2, '0')}`;
  }
  return s;
}

function bytesLiteral(b: Uint8Array): string {
  return `b'${escapeBytes(b).replace(/'/g, "\\'")}'`;
}

/** Formats a CBOR value as a Python literal (the `cbor:` payload notation). */
export function formatCborNotation(v: CborValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return bytesLiteral(new TextEncoder().encode(v));
  if (v instanceof Uint8Array) return bytesLiteral(v);
  if (Array.isArray(v)) return `[${v.map(formatCborNotation).join(', ')}]`;
  if (v instanceof Set) return v.size === 0 ? 'set()' : `{${[...v].map(formatCborNotation).join(', ')}}`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${formatCborNotation(k)}: ${formatCborNotation(x)}`).join(', ')}}`;
  return `{${Object.entries(v).map(([k, x]) => `${formatCborNotation(k)}: ${formatCborNotation(x)}`).join(', ')}}`;
}

/** Parses a Python literal of the subset above (the `cbor:` payload notation) into a CBOR value. */
export function parseCborNotation(src: string): CborValue {
  let i = 0;
  const ws = (): void => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw new NotationError(`${what} at offset ${i} of ${JSON.stringify(src)}`);
  };
  const value = (depth: number): CborValue => {
    if (depth > 32) fail('literal nested too deeply');
    ws();
    const c = src[i];
    if (c === undefined) return fail('unexpected end');
    if (c === 'b' && (src[i + 1] === "'" || src[i + 1] === '"')) {
      const q = src[i + 1]!;
      let j = i + 2;
      let body = '';
      while (j < src.length && src[j] !== q) {
        if (src[j] === '\\' && j + 1 < src.length) {
          body += src[j]! + src[j + 1]!;
          j += 2;
        } else body += src[j++]!;
      }
      if (j >= src.length) fail('unterminated bytes literal');
      i = j + 1;
      return unescapeBytes(body);
    }
    if (c === "'" || c === '"') return fail('str literals are not allowed (use b\'...\')');
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const items: CborValue[] = [];
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          return items;
        }
        items.push(value(depth + 1));
        ws();
        if (src[i] === ',') i++;
        else if (src[i] !== close) fail(`expected , or ${close}`);
      }
    }
    if (c === '{') {
      i++;
      ws();
      if (src[i] === '}') {
        i++;
        return {};
      }
      const first = value(depth + 1);
      ws();
      if (src[i] === ':') {
        const m = new Map<CborValue, CborValue>();
        for (let key = first; ; ) {
          ws();
          if (src[i] !== ':') fail('expected :');
          i++;
          m.set(key, value(depth + 1));
          ws();
          if (src[i] === ',') i++;
          ws();
          if (src[i] === '}') {
            i++;
            break;
          }
          key = value(depth + 1);
        }
        return m;
      }
      const set = new Set<CborValue>([first]);
      for (;;) {
        ws();
        if (src[i] === ',') i++;
        ws();
        if (src[i] === '}') {
          i++;
          return set;
        }
        set.add(value(depth + 1));
      }
    }
    const word = /^(-?\d+|True|False|None|set\(\))/.exec(src.slice(i));
    if (!word) return fail('unexpected input');
    i += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    if (word[0] === 'set()') return new Set();
    const n = BigInt(word[0]);
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  };
  const v = value(0);
  ws();
  if (i !== src.length) fail('trailing input');
  return v;
}

/** @deprecated use `formatCborNotation`. */
export const pythonLiteral = formatCborNotation;
/** @deprecated use `parseCborNotation`. */
export const parsePythonLiteral = parseCborNotation;

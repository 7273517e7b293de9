/**
 * The reader of the plain-data subset of Python's pickle format (protocols 0 to 5).
 *
 * Supported values: `None` (`null`), booleans, integers (`number` when safe, else `bigint`),
 * floats, `str`, `bytes` (and protocol 5 `bytearray`) as `Uint8Array`, lists, tuples, dicts, sets
 * and frozensets. The reader refuses every opcode that imports a name, calls an object, builds an
 * instance or uses persistent ids or out-of-band buffers (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`,
 * `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `EXT1/2/4`, `PERSID`, `BINPERSID`, `NEXT_BUFFER`,
 * `READONLY_BUFFER`) with a `PickleError` (`WK_PICKLE_REFUSED`) naming the opcode, before looking at
 * its argument. Nothing is ever executed.
 *
 * Tuples are returned as arrays that `isTuple()` recognizes. Dicts whose keys are all strings
 * become plain objects, others `Map`s.
 *
 * Layout: `PickleMachine` holds the state (input, position, stack, marks, memo) and the argument
 * readers; each opcode group (control, scalars, text and bytes, containers, memo) is a table of
 * handlers; `unpickle` runs the machine until `STOP`, then `finalize` turns dicts into objects.
 */
import { PickleError } from './errors.js';
import * as op from './opcodes.js';
import { decodeSurrogatePass } from './surrogatepass.js';
import { asTuple, isTuple, tuple } from './tuples.js';

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** `'auto'` (default): dicts with only string keys become objects, others `Map`s. `'map'`: always `Map`. */
  dicts?: 'auto' | 'map';
  /** Maximum size of one integer, in bytes (LONG1/LONG4/text). Default 1024. */
  maxIntBytes?: number;
  /** Maximum nesting of containers. Default 1000. */
  maxDepth?: number;
}

const latin1 = new TextDecoder('latin1');

function malformed(msg: string, pos: number): PickleError {
  return new PickleError('WK_PICKLE_MALFORMED', `pickle: ${msg} at offset ${pos}`, 'remote');
}

function intTooLarge(n: number, limit: number): PickleError {
  return new PickleError('WK_PICKLE_LIMIT', `pickle: integer of ${n} bytes exceeds the limit of ${limit}`, 'remote');
}

/** The state of one `unpickle` run: input and position, the value stack, its marks and the memo. */
class PickleMachine {
  pos = 0;
  readonly stack: unknown[] = [];
  readonly marks: number[] = [];
  readonly memo = new Map<number, unknown>();
  /** Set by STOP. */
  stopped = false;
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly maxIntBytes: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ---- arguments ----

  need(n: number): void {
    if (n < 0 || this.pos + n > this.bytes.length) throw malformed(`truncated: ${n} bytes needed, ${this.bytes.length - this.pos} left`, this.pos);
  }

  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  u8(): number {
    return this.take(1)[0]!;
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An 8-byte length; refused above 2^53 - 1. */
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    if (hi >= 0x200000) throw malformed('8-byte length too large', this.pos - 8);
    return hi * 0x1_0000_0000 + lo;
  }

  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** A text argument up to the next newline (protocol 0 opcodes), latin-1. */
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0) throw malformed('truncated: no end of line', this.pos);
    const s = latin1.decode(this.bytes.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** A decimal index argument (PUT, GET). */
  lineIndex(what: string, at: number): number {
    const s = this.line();
    if (!/^\d+$/.test(s)) throw malformed(`bad ${what} index`, at);
    return Number(s);
  }

  /** A `str` as Python writes it: UTF-8 with `surrogatepass` (lone surrogates in their 3-byte form). */
  utf8(b: Uint8Array): string {
    const s = decodeSurrogatePass(b);
    if (s === null) throw malformed('invalid UTF-8 in a string', this.pos - b.length);
    return s;
  }

  /** A two's complement little-endian integer (LONG1, LONG4). */
  intFromLE(b: Uint8Array): number | bigint {
    if (b.length > this.maxIntBytes) throw intTooLarge(b.length, this.maxIntBytes);
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return normInt(v);
  }

  /** A decimal integer argument (INT, LONG), with Python 2's trailing `L` allowed. */
  textInt(s: string, at: number): number | bigint {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (t.length > this.maxIntBytes * 3) throw new PickleError('WK_PICKLE_LIMIT', `pickle: integer text of ${t.length} digits exceeds the limit`, 'remote');
    if (!/^[+-]?\d+$/.test(t)) throw malformed(`bad integer ${JSON.stringify(s)}`, at);
    return normInt(BigInt(t));
  }

  // ---- stack ----

  push(v: unknown): void {
    this.stack.push(v);
  }

  private checkAboveMark(): void {
    const { stack, marks } = this;
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw malformed('stack underflow', this.pos - 1);
  }

  pop(): unknown {
    this.checkAboveMark();
    return this.stack.pop();
  }

  top(): unknown {
    this.checkAboveMark();
    return this.stack[this.stack.length - 1];
  }

  /** Pops everything above the last MARK, and the mark. */
  popMark(): unknown[] {
    const m = this.marks.pop();
    if (m === undefined) throw malformed('no MARK on the stack', this.pos - 1);
    return this.stack.splice(m);
  }

  // ---- memo ----

  memoize(index: number): void {
    this.memo.set(index, this.top());
  }

  fetch(index: number): void {
    if (!this.memo.has(index)) throw malformed(`memo key ${index} not found`, this.pos);
    this.stack.push(this.memo.get(index));
  }
}

/** Runs one opcode; `at` is the offset of the opcode byte (for messages). */
type Handler = (m: PickleMachine, at: number) => void;

const control: Record<number, Handler> = {
  [op.PROTO]: (m, at) => {
    const v = m.u8();
    if (v > 5) throw malformed(`unsupported protocol ${v}`, at);
  },
  [op.FRAME]: (m) => void m.u64(),
  [op.STOP]: (m, at) => {
    if (m.marks.length > 0) throw malformed('MARK left open at STOP', at);
    if (m.stack.length !== 1) throw malformed(`stack holds ${m.stack.length} values at STOP`, at);
    if (m.pos !== m.bytes.length) throw malformed(`${m.bytes.length - m.pos} trailing bytes after STOP`, m.pos);
    m.stopped = true;
  },
  [op.MARK]: (m) => void m.marks.push(m.stack.length),
  [op.POP]: (m) => {
    if (m.marks.length > 0 && m.stack.length === m.marks[m.marks.length - 1]) m.popMark();
    else m.pop();
  },
  [op.POP_MARK]: (m) => void m.popMark(),
  [op.DUP]: (m) => m.push(m.top()),
};

const scalars: Record<number, Handler> = {
  [op.NONE]: (m) => m.push(null),
  [op.NEWTRUE]: (m) => m.push(true),
  [op.NEWFALSE]: (m) => m.push(false),
  [op.INT]: (m, at) => {
    const s = m.line();
    m.push(s === '00' ? false : s === '01' ? true : m.textInt(s, at));
  },
  [op.LONG]: (m, at) => m.push(m.textInt(m.line(), at)),
  [op.BININT]: (m) => m.push(m.i32()),
  [op.BININT1]: (m) => m.push(m.u8()),
  [op.BININT2]: (m) => m.push(m.u16()),
  [op.LONG1]: (m) => m.push(m.intFromLE(m.take(m.u8()))),
  [op.LONG4]: (m, at) => {
    const n = m.i32();
    if (n < 0) throw malformed('negative LONG4 length', at);
    if (n > m.maxIntBytes) throw intTooLarge(n, m.maxIntBytes);
    m.push(m.intFromLE(m.take(n)));
  },
  [op.FLOAT]: (m, at) => m.push(textFloat(m.line(), at)),
  [op.BINFLOAT]: (m) => m.push(m.f64()),
};

const textAndBytes: Record<number, Handler> = {
  [op.SHORT_BINUNICODE]: (m) => m.push(m.utf8(m.take(m.u8()))),
  [op.BINUNICODE]: (m) => m.push(m.utf8(m.take(m.u32()))),
  [op.BINUNICODE8]: (m) => m.push(m.utf8(m.take(m.u64()))),
  [op.UNICODE]: (m, at) => m.push(rawUnicodeEscape(m.line(), at)),
  [op.SHORT_BINSTRING]: (m) => m.push(latin1.decode(m.take(m.u8()))),
  [op.BINSTRING]: (m, at) => {
    const n = m.i32();
    if (n < 0) throw malformed('negative BINSTRING length', at);
    m.push(latin1.decode(m.take(n)));
  },
  [op.STRING]: (m, at) => m.push(pyStringLiteral(m.line(), at)),
  [op.SHORT_BINBYTES]: (m) => m.push(copy(m.take(m.u8()))),
  [op.BINBYTES]: (m) => m.push(copy(m.take(m.u32()))),
  [op.BINBYTES8]: (m) => m.push(copy(m.take(m.u64()))),
  [op.BYTEARRAY8]: (m) => m.push(copy(m.take(m.u64()))),
};

function append(list: unknown, items: unknown[], at: number): void {
  if (!Array.isArray(list) || isTuple(list)) throw malformed('APPEND(S) on a non-list', at);
  for (const x of items) list.push(x);
}

function setItems(dict: unknown, items: unknown[], at: number): void {
  if (!(dict instanceof Map)) throw malformed('SETITEM(S) on a non-dict', at);
  if (items.length % 2 !== 0) throw malformed('odd number of items for SETITEMS', at);
  for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
}

const containers: Record<number, Handler> = {
  [op.EMPTY_LIST]: (m) => m.push([]),
  [op.LIST]: (m) => m.push(m.popMark()),
  [op.APPEND]: (m, at) => {
    const x = m.pop();
    append(m.top(), [x], at);
  },
  [op.APPENDS]: (m, at) => {
    const items = m.popMark();
    append(m.top(), items, at);
  },
  [op.EMPTY_TUPLE]: (m) => m.push(tuple()),
  [op.TUPLE]: (m) => m.push(asTuple(m.popMark())),
  [op.TUPLE1]: (m) => m.push(tuple(m.pop())),
  [op.TUPLE2]: (m) => {
    const b = m.pop();
    const a = m.pop();
    m.push(tuple(a, b));
  },
  [op.TUPLE3]: (m) => {
    const c = m.pop();
    const b = m.pop();
    const a = m.pop();
    m.push(tuple(a, b, c));
  },
  [op.EMPTY_DICT]: (m) => m.push(new Map()),
  [op.DICT]: (m, at) => {
    const items = m.popMark();
    const d = new Map();
    setItems(d, items, at);
    m.push(d);
  },
  [op.SETITEM]: (m, at) => {
    const v = m.pop();
    const k = m.pop();
    setItems(m.top(), [k, v], at);
  },
  [op.SETITEMS]: (m, at) => {
    const items = m.popMark();
    setItems(m.top(), items, at);
  },
  [op.EMPTY_SET]: (m) => m.push(new Set()),
  [op.ADDITEMS]: (m, at) => {
    const items = m.popMark();
    const s = m.top();
    if (!(s instanceof Set)) throw malformed('ADDITEMS on a non-set', at);
    for (const x of items) s.add(x);
  },
  [op.FROZENSET]: (m) => m.push(new Set(m.popMark())),
};

const memo: Record<number, Handler> = {
  [op.PUT]: (m, at) => m.memoize(m.lineIndex('PUT', at)),
  [op.BINPUT]: (m) => m.memoize(m.u8()),
  [op.LONG_BINPUT]: (m) => m.memoize(m.u32()),
  [op.MEMOIZE]: (m) => m.memoize(m.memo.size),
  [op.GET]: (m, at) => m.fetch(m.lineIndex('GET', at)),
  [op.BINGET]: (m) => m.fetch(m.u8()),
  [op.LONG_BINGET]: (m) => m.fetch(m.u32()),
};

/** Every accepted opcode's handler, indexed by opcode byte. */
const HANDLERS: readonly (Handler | undefined)[] = (() => {
  const table: (Handler | undefined)[] = new Array<Handler | undefined>(256).fill(undefined);
  for (const group of [control, scalars, textAndBytes, containers, memo]) {
    for (const [code, handler] of Object.entries(group)) table[Number(code)] = handler;
  }
  return table;
})();

/**
 * Reads one pickle holding plain data. Throws `PickleError` on malformed input, refused opcodes
 * (anything that would import or call) and limits; never executes anything.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const m = new PickleMachine(bytes, options.maxIntBytes ?? 1024);
  while (!m.stopped) {
    if (m.pos >= bytes.length) throw malformed('truncated: no STOP opcode', m.pos);
    const at = m.pos;
    const code = bytes[m.pos++]!;
    const refused = op.REFUSED[code];
    if (refused !== undefined) {
      throw new PickleError(
        'WK_PICKLE_REFUSED',
        `pickle: refused opcode 0x${code.toString(16)} ${refused} at offset ${at}: only plain data (None, bool, int, float, str, bytes, list, tuple, dict, set) is accepted`,
        'remote',
      );
    }
    const handler = HANDLERS[code];
    if (handler === undefined) throw malformed(`unknown opcode 0x${code.toString(16).padStart(2, '0')}`, at);
    handler(m, at);
  }
  return finalize(m.stack[0], options);
}

/** A plain `Uint8Array` copy (input may be a Node `Buffer`, whose `slice` shares memory). */
function copy(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}

function normInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function textFloat(s: string, at: number): number {
  const v = Number(s);
  if (Number.isNaN(v) && !/^[+-]?nan$/i.test(s)) throw malformed(`bad float ${JSON.stringify(s)}`, at);
  return /^[+-]?inf$/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : v;
}

function rawUnicodeEscape(s: string, at: number): string {
  return s.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u4: string | undefined, u8: string | undefined) => {
    const cp = parseInt((u4 ?? u8)!, 16);
    if (cp > 0x10ffff) throw malformed('bad \\U escape', at);
    return String.fromCodePoint(cp);
  });
}

function pyStringLiteral(s: string, at: number): string {
  const q = s[0];
  if ((q !== "'" && q !== '"') || s.length < 2 || s[s.length - 1] !== q) throw malformed('STRING argument is not quoted', at);
  const body = s.slice(1, -1);
  const esc: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', '0': '\0' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) => {
    if (e.length === 3) return String.fromCharCode(parseInt(e.slice(1), 16));
    const r = esc[e];
    if (r === undefined) throw malformed(`unsupported escape \\${e} in STRING`, at);
    return r;
  });
}

/** Turns the reader's dict `Map`s into objects where possible; keeps shared and cyclic references. */
function finalize(root: unknown, options: UnpickleOptions): unknown {
  const maxDepth = options.maxDepth ?? 1000;
  const asMap = options.dicts === 'map';
  const done = new Map<object, unknown>();
  const visit = (v: unknown, depth: number): unknown => {
    if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return v;
    const seen = done.get(v);
    if (seen !== undefined) return seen;
    if (depth > maxDepth) throw new PickleError('WK_PICKLE_LIMIT', `pickle: containers nested deeper than ${maxDepth}`, 'remote');
    if (Array.isArray(v)) {
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = visit(v[i], depth + 1);
      return v;
    }
    if (v instanceof Set) {
      done.set(v, v);
      const items = [...v];
      v.clear();
      for (const x of items) v.add(visit(x, depth + 1));
      return v;
    }
    if (v instanceof Map) {
      const allStrings = !asMap && [...v.keys()].every((k) => typeof k === 'string');
      if (allStrings) {
        const obj: Record<string, unknown> = {};
        done.set(v, obj);
        for (const [k, x] of v) Object.defineProperty(obj, k as string, { value: visit(x, depth + 1), enumerable: true, writable: true, configurable: true });
        return obj;
      }
      const out = new Map<unknown, unknown>();
      done.set(v, out);
      for (const [k, x] of v) out.set(visit(k, depth + 1), visit(x, depth + 1));
      return out;
    }
    return v;
  };
  return visit(root, 0);
}

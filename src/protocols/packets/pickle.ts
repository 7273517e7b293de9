/**
 * A reader and writer for the plain-data subset of Python's pickle format (protocols 0 to 5).
 *
 * Supported values: `None` (`null`), booleans, integers (`number` when safe, else `bigint`),
 * floats, `str`, `bytes` (and protocol 5 `bytearray`) as `Uint8Array`, lists, tuples, dicts, sets
 * and frozensets. The reader refuses every opcode that imports a name, calls an object, builds an
 * instance or uses persistent ids or out-of-band buffers (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`,
 * `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, `EXT1/2/4`, `PERSID`, `BINPERSID`, `NEXT_BUFFER`,
 * `READONLY_BUFFER`) with a `PickleError` (`WK_PICKLE_REFUSED`) naming the opcode, before looking at
 * its argument. Nothing is ever executed.
 *
 * Tuples are returned as arrays that `isTuple()` recognizes; `tuple(...)` makes such an array so the
 * writer emits a tuple. Dicts whose keys are all strings become plain objects, others `Map`s.
 */
import { PickleError } from './errors.js';

const tuples = new WeakSet<readonly unknown[]>();

/** Makes an array that the pickle writer emits as a Python tuple. */
export function tuple<T extends unknown[]>(...items: T): T {
  tuples.add(items);
  return items;
}

/** Marks an existing array as a tuple (for the writer) and returns it. */
export function asTuple<T extends unknown[]>(items: T): T {
  tuples.add(items);
  return items;
}

/** True for arrays read from a pickled tuple or made by `tuple()`. */
export function isTuple(value: unknown): boolean {
  return Array.isArray(value) && tuples.has(value);
}

/** Options of `unpickle`. */
export interface UnpickleOptions {
  /** `'auto'` (default): dicts with only string keys become objects, others `Map`s. `'map'`: always `Map`. */
  dicts?: 'auto' | 'map';
  /** Maximum size of one integer, in bytes (LONG1/LONG4/text). Default 1024. */
  maxIntBytes?: number;
  /** Maximum nesting of containers. Default 1000. */
  maxDepth?: number;
}

// Opcodes.
const MARK = 0x28; // (
const STOP = 0x2e; // .
const POP = 0x30; // 0
const POP_MARK = 0x31; // 1
const DUP = 0x32; // 2
const FLOAT = 0x46; // F
const INT = 0x49; // I
const BININT = 0x4a; // J
const BININT1 = 0x4b; // K
const LONG = 0x4c; // L
const BININT2 = 0x4d; // M
const NONE = 0x4e; // N
const STRING = 0x53; // S
const BINSTRING = 0x54; // T
const SHORT_BINSTRING = 0x55; // U
const UNICODE = 0x56; // V
const BINUNICODE = 0x58; // X
const APPEND = 0x61; // a
const DICT = 0x64; // d
const EMPTY_DICT = 0x7d; // }
const APPENDS = 0x65; // e
const GET = 0x67; // g
const BINGET = 0x68; // h
const LONG_BINGET = 0x6a; // j
const LIST = 0x6c; // l
const EMPTY_LIST = 0x5d; // ]
const PUT = 0x70; // p
const BINPUT = 0x71; // q
const LONG_BINPUT = 0x72; // r
const SETITEM = 0x73; // s
const TUPLE = 0x74; // t
const EMPTY_TUPLE = 0x29; // )
const SETITEMS = 0x75; // u
const BINFLOAT = 0x47; // G
const PROTO = 0x80;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a;
const LONG4 = 0x8b;
const BINBYTES = 0x42; // B
const SHORT_BINBYTES = 0x43; // C
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const BINBYTES8 = 0x8e;
const EMPTY_SET = 0x8f;
const ADDITEMS = 0x90;
const FROZENSET = 0x91;
const MEMOIZE = 0x94;
const FRAME = 0x95;
const BYTEARRAY8 = 0x96;

/** Opcodes that import, call or build objects, or reach outside the pickle: always refused. */
const REFUSED: Readonly<Record<number, string>> = {
  0x63: 'GLOBAL (imports a name)',
  0x93: 'STACK_GLOBAL (imports a name)',
  0x52: 'REDUCE (calls an object)',
  0x62: 'BUILD (sets object state)',
  0x69: 'INST (imports and calls a class)',
  0x6f: 'OBJ (calls a class)',
  0x81: 'NEWOBJ (calls cls.__new__)',
  0x92: 'NEWOBJ_EX (calls cls.__new__)',
  0x82: 'EXT1 (imports from the extension registry)',
  0x83: 'EXT2 (imports from the extension registry)',
  0x84: 'EXT4 (imports from the extension registry)',
  0x50: 'PERSID (persistent id lookup)',
  0x51: 'BINPERSID (persistent id lookup)',
  0x97: 'NEXT_BUFFER (out-of-band buffer)',
  0x98: 'READONLY_BUFFER (out-of-band buffer)',
};

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(msg: string, pos: number): PickleError {
  return new PickleError('WK_PICKLE_MALFORMED', `pickle: ${msg} at offset ${pos}`);
}


/**
 * Reads one pickle holding plain data. Throws `PickleError` on malformed input, refused opcodes
 * (anything that would import or call) and limits; never executes anything.
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions = {}): unknown {
  const maxIntBytes = options.maxIntBytes ?? 1024;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;

  const need = (n: number): void => {
    if (n < 0 || pos + n > bytes.length) throw malformed(`truncated: ${n} bytes needed, ${bytes.length - pos} left`, pos);
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw malformed('truncated: no end of line', pos);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    const v = hi * 0x1_0000_0000 + lo;
    if (hi >= 0x200000) throw malformed('8-byte length too large', pos - 8);
    return v;
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw malformed('stack underflow', pos - 1);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw malformed('stack underflow', pos - 1);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw malformed('no MARK on the stack', pos - 1);
    return stack.splice(m);
  };
  const str = (b: Uint8Array): string => {
    try {
      return utf8.decode(b);
    } catch {
      throw malformed('invalid UTF-8 in a string', pos - b.length);
    }
  };
  const intFromLE = (b: Uint8Array): number | bigint => {
    if (b.length > maxIntBytes) throw new PickleError('WK_PICKLE_LIMIT', `pickle: integer of ${b.length} bytes exceeds the limit of ${maxIntBytes}`);
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return normInt(v);
  };
  const textInt = (s: string, at: number): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (t.length > maxIntBytes * 3) throw new PickleError('WK_PICKLE_LIMIT', `pickle: integer text of ${t.length} digits exceeds the limit`);
    if (!/^[+-]?\d+$/.test(t)) throw malformed(`bad integer ${JSON.stringify(s)}`, at);
    return normInt(BigInt(t));
  };
  const memoize = (index: number): void => {
    memo.set(index, top());
  };
  const fetch = (index: number): void => {
    if (!memo.has(index)) throw malformed(`memo key ${index} not found`, pos);
    stack.push(memo.get(index));
  };
  const setItems = (dict: unknown, items: unknown[], at: number): void => {
    if (!(dict instanceof Map)) throw malformed('SETITEM(S) on a non-dict', at);
    if (items.length % 2 !== 0) throw malformed('odd number of items for SETITEMS', at);
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[], at: number): void => {
    if (!Array.isArray(list) || tuples.has(list)) throw malformed('APPEND(S) on a non-list', at);
    for (const x of items) list.push(x);
  };

  for (;;) {
    if (pos >= bytes.length) throw malformed('truncated: no STOP opcode', pos);
    const at = pos;
    const op = bytes[pos++]!;
    const refused = REFUSED[op];
    if (refused !== undefined) {
      throw new PickleError('WK_PICKLE_REFUSED', `pickle: refused opcode 0x${op.toString(16)} ${refused} at offset ${at}: only plain data (None, bool, int, float, str, bytes, list, tuple, dict, set) is accepted`);
    }
    switch (op) {
      case PROTO: {
        const v = take(1)[0]!;
        if (v > 5) throw malformed(`unsupported protocol ${v}`, at);
        break;
      }
      case FRAME:
        u64();
        break;
      case STOP: {
        if (marks.length > 0) throw malformed('MARK left open at STOP', at);
        if (stack.length !== 1) throw malformed(`stack holds ${stack.length} values at STOP`, at);
        if (pos !== bytes.length) throw malformed(`${bytes.length - pos} trailing bytes after STOP`, pos);
        return finalize(stack[0], options);
      }
      case MARK:
        marks.push(stack.length);
        break;
      case POP:
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) popMark();
        else pop();
        break;
      case POP_MARK:
        popMark();
        break;
      case DUP:
        stack.push(top());
        break;
      case NONE:
        stack.push(null);
        break;
      case NEWTRUE:
        stack.push(true);
        break;
      case NEWFALSE:
        stack.push(false);
        break;
      case INT: {
        const s = line();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else stack.push(textInt(s, at));
        break;
      }
      case LONG:
        stack.push(textInt(line(), at));
        break;
      case BININT: {
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      }
      case BININT1:
        stack.push(take(1)[0]!);
        break;
      case BININT2: {
        need(2);
        stack.push(view.getUint16(pos, true));
        pos += 2;
        break;
      }
      case LONG1: {
        const n = take(1)[0]!;
        stack.push(intFromLE(take(n)));
        break;
      }
      case LONG4: {
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw malformed('negative LONG4 length', at);
        if (n > maxIntBytes) throw new PickleError('WK_PICKLE_LIMIT', `pickle: integer of ${n} bytes exceeds the limit of ${maxIntBytes}`);
        stack.push(intFromLE(take(n)));
        break;
      }
      case FLOAT: {
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[+-]?nan$/i.test(s)) throw malformed(`bad float ${JSON.stringify(s)}`, at);
        stack.push(/^[+-]?inf$/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : v);
        break;
      }
      case BINFLOAT: {
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case SHORT_BINUNICODE:
        stack.push(str(take(take(1)[0]!)));
        break;
      case BINUNICODE:
        stack.push(str(take(u32())));
        break;
      case BINUNICODE8:
        stack.push(str(take(u64())));
        break;
      case UNICODE:
        stack.push(rawUnicodeEscape(line(), at));
        break;
      case SHORT_BINSTRING:
        stack.push(latin1.decode(take(take(1)[0]!)));
        break;
      case BINSTRING: {
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw malformed('negative BINSTRING length', at);
        stack.push(latin1.decode(take(n)));
        break;
      }
      case STRING:
        stack.push(pyStringLiteral(line(), at));
        break;
      case SHORT_BINBYTES:
        stack.push(copy(take(take(1)[0]!)));
        break;
      case BINBYTES:
        stack.push(copy(take(u32())));
        break;
      case BINBYTES8:
      case BYTEARRAY8:
        stack.push(copy(take(u64())));
        break;
      case EMPTY_LIST:
        stack.push([]);
        break;
      case LIST:
        stack.push(popMark());
        break;
      case APPEND: {
        const x = pop();
        append(top(), [x], at);
        break;
      }
      case APPENDS: {
        const items = popMark();
        append(top(), items, at);
        break;
      }
      case EMPTY_TUPLE:
        stack.push(tuple());
        break;
      case TUPLE:
        stack.push(asTuple(popMark()));
        break;
      case TUPLE1: {
        const a = pop();
        stack.push(tuple(a));
        break;
      }
      case TUPLE2: {
        const b = pop();
        const a = pop();
        stack.push(tuple(a, b));
        break;
      }
      case TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(tuple(a, b, c));
        break;
      }
      case EMPTY_DICT:
        stack.push(new Map());
        break;
      case DICT: {
        const items = popMark();
        const d = new Map();
        setItems(d, items, at);
        stack.push(d);
        break;
      }
      case SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v], at);
        break;
      }
      case SETITEMS: {
        const items = popMark();
        setItems(top(), items, at);
        break;
      }
      case EMPTY_SET:
        stack.push(new Set());
        break;
      case ADDITEMS: {
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw malformed('ADDITEMS on a non-set', at);
        for (const x of items) s.add(x);
        break;
      }
      case FROZENSET:
        stack.push(new Set(popMark()));
        break;
      case PUT: {
        const s = line();
        if (!/^\d+$/.test(s)) throw malformed('bad PUT index', at);
        memoize(Number(s));
        break;
      }
      case BINPUT:
        memoize(take(1)[0]!);
        break;
      case LONG_BINPUT:
        memoize(u32());
        break;
      case MEMOIZE:
        memoize(memo.size);
        break;
      case GET: {
        const s = line();
        if (!/^\d+$/.test(s)) throw malformed('bad GET index', at);
        fetch(Number(s));
        break;
      }
      case BINGET:
        fetch(take(1)[0]!);
        break;
      case LONG_BINGET:
        fetch(u32());
        break;
      default:
        throw malformed(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`, at);
    }
  }
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
    if (depth > maxDepth) throw new PickleError('WK_PICKLE_LIMIT', `pickle: containers nested deeper than ${maxDepth}`);
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

/** Options of `pickle`. */
export interface PickleOptions {
  /** Protocol number written in the PROTO opcode: 2 to 5. Default 4 (Python 3.8+'s default). */
  protocol?: 2 | 3 | 4 | 5;
  /** Write every array as a tuple. Default false: arrays are lists, except those made by `tuple()`. */
  arraysAsTuples?: boolean;
  /** Maximum nesting of containers. Default 1000. */
  maxDepth?: number;
}

class Out {
  buf = new Uint8Array(256);
  len = 0;
  private view = new DataView(this.buf.buffer);
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }
  u64(v: number): void {
    this.u32(v % 0x1_0000_0000);
    this.u32(Math.floor(v / 0x1_0000_0000));
  }
  f64(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.len, v, false);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

const enc = new TextEncoder();
const BATCH = 1000;

/**
 * Writes plain data as a pickle that Python's `pickle.loads` and `dill.loads` read.
 *
 * `null`/`undefined` → None, booleans, integral numbers → int (non-integral → float), bigints →
 * int, strings → str, `Uint8Array` → bytes, arrays → list (tuple if made by `tuple()` or with
 * `arraysAsTuples`), `Set` → set, `Map` and plain objects → dict. Other values (functions, class
 * instances, symbols) and cycles raise `PickleError` (`WK_PICKLE_UNSUPPORTED`, origin local).
 */
export function pickle(value: unknown, options: PickleOptions = {}): Uint8Array {
  const proto = options.protocol ?? 4;
  const maxDepth = options.maxDepth ?? 1000;
  const out = new Out();
  const active = new Set<object>();
  out.byte(PROTO);
  out.byte(proto);
  const unsupported = (what: string) => new PickleError('WK_PICKLE_UNSUPPORTED', `pickle: cannot write ${what}`, 'local');
  const writeInt = (v: bigint): void => {
    if (v >= 0n && v < 256n) {
      out.byte(BININT1);
      out.byte(Number(v));
    } else if (v >= 0n && v < 65536n) {
      out.byte(BININT2);
      out.byte(Number(v & 0xffn));
      out.byte(Number(v >> 8n));
    } else if (v >= -(1n << 31n) && v < 1n << 31n) {
      out.byte(BININT);
      out.u32(Number(BigInt.asUintN(32, v)));
    } else {
      // Minimal two's complement little-endian.
      const bytes: number[] = [];
      let x = v;
      for (;;) {
        const b = Number(x & 0xffn);
        bytes.push(b);
        x >>= 8n;
        if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
      }
      if (bytes.length < 256) {
        out.byte(LONG1);
        out.byte(bytes.length);
      } else {
        out.byte(LONG4);
        out.u32(bytes.length);
      }
      out.bytes(Uint8Array.from(bytes));
    }
  };
  const writeSized = (small: number, big: number, huge: number, data: Uint8Array): void => {
    if (data.length < 256 && small >= 0) {
      out.byte(small);
      out.byte(data.length);
    } else if (data.length < 0x1_0000_0000) {
      out.byte(big);
      out.u32(data.length);
    } else {
      out.byte(huge);
      out.u64(data.length);
    }
    out.bytes(data);
  };
  const items = (list: Iterable<unknown>, closer: number, depth: number): void => {
    let n = 0;
    for (const x of list) {
      if (n === 0) out.byte(MARK);
      write(x, depth + 1);
      if (++n === BATCH) {
        out.byte(closer);
        n = 0;
      }
    }
    if (n > 0) out.byte(closer);
  };
  const write = (v: unknown, depth: number): void => {
    if (v === null || v === undefined) return out.byte(NONE);
    if (v === true) return out.byte(NEWTRUE);
    if (v === false) return out.byte(NEWFALSE);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return writeInt(BigInt(v));
      out.byte(BINFLOAT);
      return out.f64(v);
    }
    if (typeof v === 'bigint') return writeInt(v);
    if (typeof v === 'string') return writeSized(proto >= 4 ? SHORT_BINUNICODE : -1, BINUNICODE, BINUNICODE8, enc.encode(v));
    if (v instanceof Uint8Array) {
      if (proto < 3) throw unsupported('bytes at protocol 2');
      return writeSized(SHORT_BINBYTES, BINBYTES, BINBYTES8, v);
    }
    if (typeof v !== 'object') throw unsupported(`a ${typeof v}`);
    if (depth > maxDepth) throw new PickleError('WK_PICKLE_LIMIT', `pickle: containers nested deeper than ${maxDepth}`, 'local');
    if (active.has(v)) throw unsupported('a cyclic structure');
    active.add(v);
    try {
      if (Array.isArray(v)) {
        if (tuples.has(v) || options.arraysAsTuples) {
          if (v.length === 0) return out.byte(EMPTY_TUPLE);
          if (v.length <= 3) {
            for (const x of v) write(x, depth + 1);
            return out.byte(v.length === 1 ? TUPLE1 : v.length === 2 ? TUPLE2 : TUPLE3);
          }
          out.byte(MARK);
          for (const x of v) write(x, depth + 1);
          return out.byte(TUPLE);
        }
        out.byte(EMPTY_LIST);
        return items(v, APPENDS, depth);
      }
      if (v instanceof Set) {
        if (proto < 4) throw unsupported('a set below protocol 4');
        out.byte(EMPTY_SET);
        return items(v, ADDITEMS, depth);
      }
      const entries: Iterable<[unknown, unknown]> = v instanceof Map ? v.entries() : isPlainObject(v) ? Object.entries(v) : badObject(v);
      out.byte(EMPTY_DICT);
      let n = 0;
      for (const [k, x] of entries) {
        if (n === 0) out.byte(MARK);
        write(k, depth + 1);
        write(x, depth + 1);
        if (++n === BATCH) {
          out.byte(SETITEMS);
          n = 0;
        }
      }
      if (n > 0) out.byte(SETITEMS);
    } finally {
      active.delete(v);
    }
  };
  const badObject = (v: object): never => {
    throw unsupported(`an instance of ${v.constructor?.name ?? 'an unknown class'}`);
  };
  write(value, 0);
  out.byte(STOP);
  return out.buf.slice(0, out.len);
}

function isPlainObject(v: object): boolean {
  const p = Object.getPrototypeOf(v) as unknown;
  return p === Object.prototype || p === null;
}

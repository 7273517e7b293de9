/**
 * The writer of the plain-data subset of Python's pickle format, into a `ByteWriter`.
 */
import { ByteWriter } from '../../bytes/byte-writer.js';
import { PickleError } from './errors.js';
import * as op from './opcodes.js';
import { encodeSurrogatePass } from './surrogatepass.js';
import { isTuple } from './tuples.js';

/** Options of `pickle`. */
export interface PickleOptions {
  /** Protocol number written in the PROTO opcode: 2 to 5. Default 4 (Python 3.8+'s default). */
  protocol?: 2 | 3 | 4 | 5;
  /** Write every array as a tuple. Default false: arrays are lists, except those made by `tuple()`. */
  arraysAsTuples?: boolean;
  /** Maximum nesting of containers. Default 1000. */
  maxDepth?: number;
}

/** Items per APPENDS / SETITEMS / ADDITEMS, as CPython's pickler batches them. */
const BATCH = 1000;

function unsupported(what: string): PickleError {
  return new PickleError('WK_PICKLE_UNSUPPORTED', `pickle: cannot write ${what}`, 'local');
}

function isPlainObject(v: object): boolean {
  const p = Object.getPrototypeOf(v) as unknown;
  return p === Object.prototype || p === null;
}

/** One `pickle` run: the output, the options and the containers being written (to refuse cycles). */
class PickleWriter {
  readonly out = new ByteWriter();
  private readonly active = new Set<object>();
  private readonly proto: number;
  private readonly maxDepth: number;
  private readonly arraysAsTuples: boolean;

  constructor(options: PickleOptions) {
    this.proto = options.protocol ?? 4;
    this.maxDepth = options.maxDepth ?? 1000;
    this.arraysAsTuples = options.arraysAsTuples ?? false;
  }

  /** PROTO, the value, STOP. */
  run(value: unknown): Uint8Array {
    this.out.u8(op.PROTO);
    this.out.u8(this.proto);
    this.value(value, 0);
    this.out.u8(op.STOP);
    return this.out.finish();
  }

  private value(v: unknown, depth: number): void {
    const out = this.out;
    if (v === null || v === undefined) return out.u8(op.NONE);
    if (v === true) return out.u8(op.NEWTRUE);
    if (v === false) return out.u8(op.NEWFALSE);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return this.int(BigInt(v));
      out.u8(op.BINFLOAT);
      return out.f64(v);
    }
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'string') return this.sized(this.proto >= 4 ? op.SHORT_BINUNICODE : -1, op.BINUNICODE, op.BINUNICODE8, encodeSurrogatePass(v));
    if (v instanceof Uint8Array) {
      if (this.proto < 3) throw unsupported('bytes at protocol 2');
      return this.sized(op.SHORT_BINBYTES, op.BINBYTES, op.BINBYTES8, v);
    }
    if (typeof v !== 'object') throw unsupported(`a ${typeof v}`);
    this.container(v, depth);
  }

  private container(v: object, depth: number): void {
    if (depth > this.maxDepth) throw new PickleError('WK_PICKLE_LIMIT', `pickle: containers nested deeper than ${this.maxDepth}`, 'local');
    if (this.active.has(v)) throw unsupported('a cyclic structure');
    this.active.add(v);
    try {
      if (Array.isArray(v)) {
        if (isTuple(v) || this.arraysAsTuples) this.tuple(v, depth);
        else {
          this.out.u8(op.EMPTY_LIST);
          this.batched(v, op.APPENDS, depth);
        }
      } else if (v instanceof Set) {
        if (this.proto < 4) throw unsupported('a set below protocol 4');
        this.out.u8(op.EMPTY_SET);
        this.batched(v, op.ADDITEMS, depth);
      } else if (v instanceof Map) {
        this.dict(v.entries(), depth);
      } else if (isPlainObject(v)) {
        this.dict(Object.entries(v), depth);
      } else {
        throw unsupported(`an instance of ${(v.constructor as { name?: string } | undefined)?.name ?? 'an unknown class'}`);
      }
    } finally {
      this.active.delete(v);
    }
  }

  private tuple(v: readonly unknown[], depth: number): void {
    const out = this.out;
    if (v.length === 0) return out.u8(op.EMPTY_TUPLE);
    if (v.length <= 3) {
      for (const x of v) this.value(x, depth + 1);
      return out.u8(v.length === 1 ? op.TUPLE1 : v.length === 2 ? op.TUPLE2 : op.TUPLE3);
    }
    out.u8(op.MARK);
    for (const x of v) this.value(x, depth + 1);
    out.u8(op.TUPLE);
  }

  /** MARK items... closer, in batches of `BATCH` items. */
  private batched(items: Iterable<unknown>, closer: number, depth: number): void {
    let n = 0;
    for (const x of items) {
      if (n === 0) this.out.u8(op.MARK);
      this.value(x, depth + 1);
      if (++n === BATCH) {
        this.out.u8(closer);
        n = 0;
      }
    }
    if (n > 0) this.out.u8(closer);
  }

  private dict(entries: Iterable<[unknown, unknown]>, depth: number): void {
    this.out.u8(op.EMPTY_DICT);
    let n = 0;
    for (const [k, x] of entries) {
      if (n === 0) this.out.u8(op.MARK);
      this.value(k, depth + 1);
      this.value(x, depth + 1);
      if (++n === BATCH) {
        this.out.u8(op.SETITEMS);
        n = 0;
      }
    }
    if (n > 0) this.out.u8(op.SETITEMS);
  }

  private int(v: bigint): void {
    const out = this.out;
    if (v >= 0n && v < 256n) {
      out.u8(op.BININT1);
      out.u8(Number(v));
    } else if (v >= 0n && v < 65536n) {
      out.u8(op.BININT2);
      out.u16(Number(v), true);
    } else if (v >= -(1n << 31n) && v < 1n << 31n) {
      out.u8(op.BININT);
      out.u32(Number(BigInt.asUintN(32, v)), true);
    } else {
      const bytes = twosComplementLE(v);
      if (bytes.length < 256) {
        out.u8(op.LONG1);
        out.u8(bytes.length);
      } else {
        out.u8(op.LONG4);
        out.u32(bytes.length, true);
      }
      out.bytes(bytes);
    }
  }

  /** A length-prefixed string or bytes: 1-byte length (`small`, -1 for none), 4-byte, 8-byte. */
  private sized(small: number, big: number, huge: number, data: Uint8Array): void {
    const out = this.out;
    if (data.length < 256 && small >= 0) {
      out.u8(small);
      out.u8(data.length);
    } else if (data.length < 0x1_0000_0000) {
      out.u8(big);
      out.u32(data.length, true);
    } else {
      out.u8(huge);
      out.u64(data.length, true);
    }
    out.append(data);
  }
}

/** The minimal two's complement little-endian bytes of `v`. */
function twosComplementLE(v: bigint): Uint8Array {
  const bytes: number[] = [];
  let x = v;
  for (;;) {
    const b = Number(x & 0xffn);
    bytes.push(b);
    x >>= 8n;
    if ((x === 0n && (b & 0x80) === 0) || (x === -1n && (b & 0x80) !== 0)) break;
  }
  return Uint8Array.from(bytes);
}

/**
 * Writes plain data as a pickle that Python's `pickle.loads` and `dill.loads` read.
 *
 * `null`/`undefined` → None, booleans, integral numbers → int (non-integral → float), bigints →
 * int, strings → str, `Uint8Array` → bytes, arrays → list (tuple if made by `tuple()` or with
 * `arraysAsTuples`), `Set` → set, `Map` and plain objects → dict. Other values (functions, class
 * instances, symbols) and cycles raise `PickleError` (`WK_PICKLE_UNSUPPORTED`, origin local).
 */
export function pickle(value: unknown, options: PickleOptions = {}): Uint8Array {
  return new PickleWriter(options).run(value);
}

/**
 * The CBOR subset Mercurial's wire protocol uses (RFC 8949 major types 0, 1, 2, 4, 5, tag 258 for
 * finite sets, and the simple values false, true and null), written for wirekit.
 *
 * Value mapping (JavaScript <-> CBOR):
 * - `number` (safe integers) and `bigint` <-> unsigned / negative integers (down to -2^64)
 * - `Uint8Array` <-> byte string; a JavaScript `string` is encoded as the UTF-8 byte string
 *   (Mercurial has no text strings); decoding always yields `Uint8Array`
 * - arrays <-> arrays; `Set` <-> tag 258 + array (sorted as Mercurial sorts it)
 * - plain objects <-> maps with byte-string keys; a `Map` encodes any keys. Decoded maps are plain
 *   objects when every key is a byte string holding valid UTF-8 (other than `__proto__`), `Map`s
 *   otherwise.
 * - `true`, `false`, `null` <-> simple values 21, 20, 22
 *
 * Map keys and set members are written in Mercurial's order: first by the Python type name of the
 * key (`NoneType` < `bool` < `bytes` < `int`), then by value (bytes compare lexicographically), so
 * both implementations produce identical bytes for the same value. Text strings, floats,
 * indefinite-length arrays and maps, and tags other than 258 are refused on decode, as Mercurial
 * refuses them. Indefinite-length byte strings are accepted and returned joined.
 */
import { ByteQueue } from '../../bytes/byte-queue.js';
import { ByteWriter } from '../../bytes/byte-writer.js';
import { concatBytes, utf8Decode, utf8Encode } from '../../bytes/text.js';
import { CborError } from './errors.js';

/** A value that can be written in Mercurial's CBOR subset. */
export type CborValue =
  | number
  | bigint
  | boolean
  | null
  | string
  | Uint8Array
  | CborValue[]
  | Set<CborValue>
  | Map<CborValue, CborValue>
  | CborObject;

/** A CBOR map with byte-string keys, as a plain object. */
export interface CborObject {
  [key: string]: CborValue;
}

const MAJOR_UINT = 0;
const MAJOR_NEGINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;
const MAJOR_TAG = 6;
const MAJOR_SIMPLE = 7;
const TAG_FINITE_SET = 258;
const TWO32 = 0x1_0000_0000;

/** Compares byte strings lexicographically, a shorter prefix first (Python's `bytes` order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Encoding

interface Sink {
  head(major: number, arg: number | bigint): void;
  raw(bytes: Uint8Array): void;
}

function headBytes(major: number, arg: number | bigint): Uint8Array {
  const m = major << 5;
  if (typeof arg === 'bigint') {
    if (arg < 0n || arg >= 1n << 64n) throw new CborError(`integer argument ${arg} does not fit in 64 bits`, { origin: 'local' });
    if (arg <= BigInt(Number.MAX_SAFE_INTEGER)) return headBytes(major, Number(arg));
    const out = new Uint8Array(9);
    out[0] = m | 27;
    new DataView(out.buffer).setBigUint64(1, arg);
    return out;
  }
  if (arg < 24) return Uint8Array.of(m | arg);
  if (arg < 0x100) return Uint8Array.of(m | 24, arg);
  if (arg < 0x10000) return Uint8Array.of(m | 25, arg >>> 8, arg & 0xff);
  if (arg < TWO32) return Uint8Array.of(m | 26, arg >>> 24, (arg >>> 16) & 0xff, (arg >>> 8) & 0xff, arg & 0xff);
  const out = new Uint8Array(9);
  out[0] = m | 27;
  const dv = new DataView(out.buffer);
  dv.setUint32(1, Math.floor(arg / TWO32));
  dv.setUint32(5, arg % TWO32);
  return out;
}

/** Writes heads and bodies into one caller-owned `ByteWriter` (byte-string bodies appended, large ones by reference). */
class WriterSink implements Sink {
  constructor(readonly out: ByteWriter) {}
  head(major: number, arg: number | bigint): void {
    if (typeof arg === 'number' && arg < 24) this.out.u8((major << 5) | arg);
    else this.out.bytes(headBytes(major, arg));
  }
  raw(bytes: Uint8Array): void {
    this.out.append(bytes);
  }
}

/** Keeps every head and every byte-string body as its own chunk (Mercurial's `streamencode` granularity). */
class ChunkSink implements Sink {
  chunks: Uint8Array[] = [];
  head(major: number, arg: number | bigint): void {
    this.chunks.push(headBytes(major, arg));
  }
  raw(bytes: Uint8Array): void {
    this.chunks.push(bytes);
  }
}

/** Python type name of a hashable key, for Mercurial's mixed-type ordering. */
function keyTypeName(v: CborValue): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string' || v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'number' || typeof v === 'bigint') return 'int';
  throw new CborError('map keys and set members must be byte strings, integers, booleans or null', { origin: 'local' });
}

interface SortKey {
  type: string;
  bytes?: Uint8Array;
  num?: bigint;
}

function sortKey(v: CborValue): SortKey {
  const type = keyTypeName(v);
  if (type === 'bytes') return { type, bytes: typeof v === 'string' ? utf8Encode(v) : (v as Uint8Array) };
  if (type === 'int') return { type, num: BigInt(v as number | bigint) };
  if (type === 'bool') return { type, num: v ? 1n : 0n };
  return { type };
}

function compareSortKeys(a: SortKey, b: SortKey): number {
  if (a.type !== b.type) return a.type < b.type ? -1 : 1;
  if (a.bytes && b.bytes) return compareBytes(a.bytes, b.bytes);
  if (a.num !== undefined && b.num !== undefined) return a.num < b.num ? -1 : a.num > b.num ? 1 : 0;
  return 0;
}

function writeValue(sink: Sink, v: CborValue, depth: number, maxDepth: number): void {
  if (depth > maxDepth) throw new CborError(`value nested deeper than ${maxDepth} levels (or cyclic)`, { origin: 'local' });
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new CborError(`cannot encode ${v}: Mercurial's CBOR subset has no floats`, { origin: 'local' });
    if (!Number.isSafeInteger(v)) throw new CborError(`cannot encode ${v}: use a bigint beyond 2^53`, { origin: 'local' });
    if (v >= 0) sink.head(MAJOR_UINT, v);
    else sink.head(MAJOR_NEGINT, -1 - v);
    return;
  }
  if (typeof v === 'bigint') {
    if (v >= 0n) sink.head(MAJOR_UINT, v);
    else sink.head(MAJOR_NEGINT, -1n - v);
    return;
  }
  if (typeof v === 'boolean') {
    sink.head(MAJOR_SIMPLE, v ? 21 : 20);
    return;
  }
  if (v === null) {
    sink.head(MAJOR_SIMPLE, 22);
    return;
  }
  if (typeof v === 'string') {
    const b = utf8Encode(v);
    sink.head(MAJOR_BYTES, b.length);
    sink.raw(b);
    return;
  }
  if (v instanceof Uint8Array) {
    sink.head(MAJOR_BYTES, v.length);
    sink.raw(v);
    return;
  }
  if (Array.isArray(v)) {
    sink.head(MAJOR_ARRAY, v.length);
    for (const item of v) writeValue(sink, item, depth + 1, maxDepth);
    return;
  }
  if (v instanceof Set) {
    const items = [...v].map((item) => ({ item, key: sortKey(item) }));
    items.sort((a, b) => compareSortKeys(a.key, b.key));
    sink.head(MAJOR_TAG, TAG_FINITE_SET);
    sink.head(MAJOR_ARRAY, items.length);
    for (const { item } of items) writeValue(sink, item, depth + 1, maxDepth);
    return;
  }
  if (v instanceof Map) {
    const entries = [...v].map(([k, val]) => ({ k, val, key: sortKey(k) }));
    entries.sort((a, b) => compareSortKeys(a.key, b.key));
    sink.head(MAJOR_MAP, entries.length);
    for (const { k, val } of entries) {
      writeValue(sink, k, depth + 1, maxDepth);
      writeValue(sink, val, depth + 1, maxDepth);
    }
    return;
  }
  if (typeof v === 'object') {
    const entries: { kb: Uint8Array; val: CborValue }[] = [];
    for (const k of Object.keys(v)) {
      const val = (v as CborObject)[k];
      if (val === undefined) continue; // like JSON: absent
      entries.push({ kb: utf8Encode(k), val });
    }
    entries.sort((a, b) => compareBytes(a.kb, b.kb));
    sink.head(MAJOR_MAP, entries.length);
    for (const { kb, val } of entries) {
      sink.head(MAJOR_BYTES, kb.length);
      sink.raw(kb);
      writeValue(sink, val, depth + 1, maxDepth);
    }
    return;
  }
  throw new CborError(`cannot encode a value of type ${typeof v}`, { origin: 'local' });
}

/** Encodes one value in Mercurial's CBOR subset (deterministic: maps and sets sorted). */
export function encodeCbor(value: CborValue, options: { maxDepth?: number } = {}): Uint8Array {
  const out = new ByteWriter();
  writeCbor(value, out, options);
  return out.finish();
}

/** Encodes one value into `out`, a `ByteWriter` the caller owns (large byte strings are kept by reference). */
export function writeCbor(value: CborValue, out: ByteWriter, options: { maxDepth?: number } = {}): void {
  writeValue(new WriterSink(out), value, 0, options.maxDepth ?? 64);
}

/**
 * Encodes one value as a list of chunks: each item head and each byte-string body is its own chunk
 * (byte-string bodies are not copied). Mercurial's response emitter packs frames chunk by chunk, so
 * this granularity reproduces its frame boundaries exactly.
 */
export function encodeCborChunks(value: CborValue, options: { maxDepth?: number } = {}): Uint8Array[] {
  const sink = new ChunkSink();
  writeValue(sink, value, 0, options.maxDepth ?? 64);
  return sink.chunks;
}

/** Chunks of an indefinite-length byte string made of `parts` (Mercurial's `indefinitebytestringresponse`). */
export function encodeIndefiniteBytesChunks(parts: Iterable<Uint8Array>): Uint8Array[] {
  const out: Uint8Array[] = [Uint8Array.of((MAJOR_BYTES << 5) | 31)];
  for (const p of parts) {
    out.push(headBytes(MAJOR_BYTES, p.length), p);
  }
  out.push(Uint8Array.of(0xff));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Limits applied while decoding, each checked before the memory is allocated. */
export interface CborLimits {
  /** Largest byte string (definite, or an indefinite one joined). Default 16 MiB. */
  maxBytesLength?: number;
  /** Largest declared number of array items, map entries or set members. Default 1,000,000. */
  maxItems?: number;
  /** Deepest nesting of collections. Default 32. */
  maxDepth?: number;
  /** Largest encoded size of one top-level value. Default 64 MiB. */
  maxValueSize?: number;
}

const enum Kind {
  Array,
  Map,
  Set,
  IndefBytes,
}

interface Level {
  kind: Kind;
  remaining: number;
  items: CborValue[];
  /** Map keys (parallel to `items`, which then holds values). */
  keys: CborValue[];
  wantKey: boolean;
  parts: Uint8Array[];
  size: number;
}

function buildMap(keys: CborValue[], values: CborValue[]): CborValue {
  let plain = true;
  const names: string[] = [];
  for (const k of keys) {
    if (!(k instanceof Uint8Array)) {
      plain = false;
      break;
    }
    let s: string;
    try {
      s = strictUtf8.decode(k);
    } catch {
      plain = false;
      break;
    }
    if (s === '__proto__') {
      plain = false;
      break;
    }
    names.push(s);
  }
  if (plain) {
    const o: CborObject = {};
    for (let i = 0; i < names.length; i++) o[names[i]!] = values[i]!;
    return o;
  }
  const m = new Map<CborValue, CborValue>();
  for (let i = 0; i < keys.length; i++) m.set(keys[i]!, values[i]!);
  return m;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * An incremental decoder of a sequence of CBOR values (a response stream, a settings payload).
 * Push bytes as they arrive; each call returns the values completed so far. Decoding proceeds
 * item by item and keeps its place, so a value split over many frames is parsed once, not
 * re-parsed per frame. After an error the decoder is unusable (every later call throws it again).
 */
export class CborDecoder {
  private readonly queue = new ByteQueue();
  private readonly stack: Level[] = [];
  private readonly maxBytes: number;
  private readonly maxItems: number;
  private readonly maxDepth: number;
  private readonly maxValueSize: number;
  private valueSize = 0;
  private pendingSet = false;
  private failed: CborError | undefined;

  constructor(limits: CborLimits = {}) {
    this.maxBytes = limits.maxBytesLength ?? 16 * 1024 * 1024;
    this.maxItems = limits.maxItems ?? 1_000_000;
    this.maxDepth = limits.maxDepth ?? 32;
    this.maxValueSize = limits.maxValueSize ?? 64 * 1024 * 1024;
  }

  /** True while a value has been partly decoded (or bytes of one are buffered). */
  get inProgress(): boolean {
    return this.stack.length > 0 || this.pendingSet || this.queue.length > 0;
  }

  /** Appends bytes and returns every top-level value now complete. */
  push(chunk: Uint8Array): CborValue[] {
    if (this.failed) throw this.failed;
    this.queue.push(chunk);
    const out: CborValue[] = [];
    try {
      this.run(out);
    } catch (err) {
      this.failed = err instanceof CborError ? err : new CborError(String(err), { origin: 'remote', cause: err });
      throw this.failed;
    }
    return out;
  }

  /** Declares the end of input: throws if a value is incomplete. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.inProgress) {
      this.failed = new CborError(`input ended inside a CBOR value (${this.queue.length} bytes buffered, ${this.stack.length} open collections)`, { origin: 'remote' });
      throw this.failed;
    }
  }

  private fail(message: string): never {
    throw new CborError(message, { origin: 'remote' });
  }

  private run(out: CborValue[]): void {
    const q = this.queue;
    for (;;) {
      const initial = q.byteAt(0);
      if (initial < 0) return;
      const major = initial >> 5;
      const sub = initial & 31;
      let argLen: number;
      if (sub < 24) argLen = 0;
      else if (sub === 24) argLen = 1;
      else if (sub === 25) argLen = 2;
      else if (sub === 26) argLen = 4;
      else if (sub === 27) argLen = 8;
      else if (sub === 31) argLen = 0;
      else this.fail(`reserved additional information ${sub} in initial byte 0x${initial.toString(16)}`);
      if (q.length < 1 + argLen) return;
      let arg: number | bigint = sub;
      if (argLen > 0) {
        if (argLen === 8) {
          const hi = q.byteAt(1) * 0x1000000 + ((q.byteAt(2) << 16) | (q.byteAt(3) << 8) | q.byteAt(4));
          const lo = q.byteAt(5) * 0x1000000 + ((q.byteAt(6) << 16) | (q.byteAt(7) << 8) | q.byteAt(8));
          arg = hi > 0x1fffff ? (BigInt(hi) << 32n) | BigInt(lo) : hi * TWO32 + lo;
        } else {
          let v = 0;
          for (let i = 1; i <= argLen; i++) v = v * 256 + q.byteAt(i);
          arg = v;
        }
      }
      const top = this.stack[this.stack.length - 1];
      if (this.pendingSet && !(major === MAJOR_ARRAY && sub !== 31)) this.fail('tag 258 (finite set) must be followed by an array');
      if (top?.kind === Kind.IndefBytes && !(major === MAJOR_BYTES && sub !== 31) && initial !== 0xff) {
        this.fail('an indefinite-length byte string may only hold definite byte strings');
      }
      let complete: CborValue | undefined;
      let isComplete = false;
      const headLen = 1 + argLen;
      switch (major) {
        case MAJOR_UINT:
        case MAJOR_NEGINT: {
          if (sub === 31) this.fail('indefinite length is not allowed for integers');
          this.consume(headLen);
          if (major === MAJOR_UINT) complete = arg;
          else complete = typeof arg === 'bigint' ? -1n - arg : arg >= Number.MAX_SAFE_INTEGER ? -1n - BigInt(arg) : -1 - arg;
          isComplete = true;
          break;
        }
        case MAJOR_BYTES: {
          if (sub === 31) {
            if (top?.kind === Kind.IndefBytes) this.fail('nested indefinite-length byte string');
            this.consume(headLen);
            this.open({ kind: Kind.IndefBytes, remaining: Infinity, items: [], keys: [], wantKey: false, parts: [], size: 0 });
            continue;
          }
          if (typeof arg === 'bigint' || arg > this.maxBytes) this.fail(`byte string of ${arg} bytes is over the limit of ${this.maxBytes}`);
          if (this.valueSize + headLen + arg > this.maxValueSize) this.fail(`CBOR value over the limit of ${this.maxValueSize} bytes`);
          if (q.length < headLen + arg) return;
          this.consume(headLen);
          const body = arg === 0 ? new Uint8Array(0) : q.read(arg)!;
          this.valueSize += arg;
          if (top?.kind === Kind.IndefBytes) {
            if (top.size + body.length > this.maxBytes) this.fail(`byte string over the limit of ${this.maxBytes} bytes`);
            top.parts.push(body);
            top.size += body.length;
            continue;
          }
          // Copy so the value does not pin a large received chunk.
          // (Always a plain Uint8Array, even when the input chunks are Node Buffers.)
          complete = body.byteOffset === 0 && body.length === body.buffer.byteLength ? new Uint8Array(body.buffer, 0, body.length) : new Uint8Array(body);
          isComplete = true;
          break;
        }
        case MAJOR_TEXT:
          this.fail("text strings are not part of Mercurial's CBOR subset");
          break;
        case MAJOR_ARRAY:
        case MAJOR_MAP: {
          if (sub === 31) this.fail('indefinite-length arrays and maps are not supported');
          if (typeof arg === 'bigint' || arg > this.maxItems) this.fail(`collection of ${arg} items is over the limit of ${this.maxItems}`);
          this.consume(headLen);
          const kind = major === MAJOR_MAP ? Kind.Map : this.pendingSet ? Kind.Set : Kind.Array;
          this.pendingSet = false;
          if (arg === 0) {
            complete = kind === Kind.Map ? {} : kind === Kind.Set ? new Set() : [];
            isComplete = true;
            break;
          }
          this.open({ kind, remaining: arg, items: [], keys: [], wantKey: true, parts: [], size: 0 });
          continue;
        }
        case MAJOR_TAG: {
          if (arg !== TAG_FINITE_SET) this.fail(`CBOR tag ${arg} is not allowed`);
          if (top?.kind === Kind.Set) this.fail('sets may not be nested in sets');
          this.consume(headLen);
          this.pendingSet = true;
          continue;
        }
        case MAJOR_SIMPLE: {
          if (initial === 0xff) {
            if (top?.kind !== Kind.IndefBytes) this.fail('unexpected break byte');
            this.consume(1);
            this.stack.pop();
            complete = concatBytes(top.parts);
            isComplete = true;
            break;
          }
          if (sub === 20) complete = false;
          else if (sub === 21) complete = true;
          else if (sub === 22) complete = null;
          else this.fail(`simple value / float (additional information ${sub}) is not allowed`);
          this.consume(headLen);
          isComplete = true;
          break;
        }
      }
      if (isComplete) this.deliver(complete as CborValue, out);
    }
  }

  private consume(n: number): void {
    this.valueSize += n;
    if (this.valueSize > this.maxValueSize) this.fail(`CBOR value over the limit of ${this.maxValueSize} bytes`);
    this.queue.skip(n);
  }

  private open(level: Level): void {
    if (this.stack.length >= this.maxDepth) this.fail(`CBOR nesting deeper than ${this.maxDepth}`);
    this.stack.push(level);
  }

  /** Adds a complete value to the innermost open collection, closing collections that fill up. */
  private deliver(value: CborValue, out: CborValue[]): void {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) {
        out.push(v);
        this.valueSize = 0;
        return;
      }
      if (top.kind === Kind.Map) {
        if (top.wantKey) {
          if (Array.isArray(v) || v instanceof Map || v instanceof Set || (typeof v === 'object' && v !== null && !(v instanceof Uint8Array))) {
            this.fail('map keys must be byte strings, integers, booleans or null');
          }
          top.keys.push(v);
          top.wantKey = false;
          return;
        }
        top.items.push(v);
        top.wantKey = true;
      } else if (top.kind === Kind.Set) {
        if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) this.fail('set members must be scalars');
        top.items.push(v);
      } else {
        top.items.push(v);
      }
      top.remaining--;
      if (top.remaining > 0) return;
      this.stack.pop();
      if (top.kind === Kind.Map) v = buildMap(top.keys, top.items);
      else if (top.kind === Kind.Set) v = new Set(top.items);
      else v = top.items;
    }
  }
}

/**
 * Decodes a buffer holding a whole sequence of CBOR values (Mercurial's `decodeall`). Throws
 * `CborError` on invalid CBOR or when the buffer ends inside a value.
 */
export function decodeCborAll(bytes: Uint8Array, limits?: CborLimits): CborValue[] {
  const d = new CborDecoder(limits);
  const values = d.push(bytes);
  d.end();
  return values;
}

/** Decodes a buffer holding exactly one CBOR value. */
export function decodeCbor(bytes: Uint8Array, limits?: CborLimits): CborValue {
  const values = decodeCborAll(bytes, limits);
  if (values.length !== 1) throw new CborError(`expected one CBOR value, found ${values.length}`, { origin: 'remote' });
  return values[0]!;
}

/** Reads key `key` (a byte-string key) of a decoded CBOR map; undefined when absent or not a map. */
export function mapGet(m: CborValue | undefined, key: string): CborValue | undefined {
  if (m === null || m === undefined || typeof m !== 'object') return undefined;
  if (m instanceof Map) {
    for (const [k, v] of m) if (k instanceof Uint8Array && utf8Decode(k) === key) return v;
    return undefined;
  }
  if (Array.isArray(m) || m instanceof Uint8Array || m instanceof Set) return undefined;
  return Object.prototype.hasOwnProperty.call(m, key) ? (m as CborObject)[key] : undefined;
}

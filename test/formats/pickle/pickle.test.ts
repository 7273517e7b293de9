import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { isTuple, pickle, PickleError, tuple, unpickle } from '../../../src/formats/pickle/index.js';
import { PEERS, skipWithout } from '../../helpers/peers.js';

const PY = '/usr/bin/python3';

// Python side: tag values so both sides compare the same shape.
const PY_TAG = `
import json, sys, pickle, dill
def tag(v):
    if v is None or isinstance(v, bool) or isinstance(v, str): return v
    if isinstance(v, int): return {"int": str(v)}
    if isinstance(v, float): return {"float": v}
    if isinstance(v, (bytes, bytearray)): return {"bytes": v.hex()}
    if isinstance(v, list): return {"list": [tag(x) for x in v]}
    if isinstance(v, tuple): return {"tuple": [tag(x) for x in v]}
    if isinstance(v, dict): return {"dict": [[tag(k), tag(x)] for k, x in v.items()]}
    if isinstance(v, (set, frozenset)): return {"set": [tag(x) for x in v]}
    raise TypeError(type(v))
`;

function tag(v: unknown): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'number') return Number.isInteger(v) ? { int: String(v) } : { float: v };
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return isTuple(v) ? { tuple: v.map(tag) } : { list: v.map(tag) };
  if (v instanceof Set) return { set: [...v].map(tag) };
  if (v instanceof Map) return { dict: [...v].map(([k, x]) => [tag(k), tag(x)]) };
  if (typeof v === 'object') return { dict: Object.entries(v).map(([k, x]) => [k, tag(x)]) };
  throw new TypeError(typeof v);
}

/** Python set order depends on string hashing: compare set tags in a canonical order. */
function sortSets(t: unknown): unknown {
  if (Array.isArray(t)) return t.map(sortSets);
  if (t === null || typeof t !== 'object') return t;
  const entries = Object.entries(t).map(([k, v]) => [k, sortSets(v)] as const);
  const o = Object.fromEntries(entries) as Record<string, unknown>;
  if (Array.isArray(o.set)) o.set = [...o.set].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return o;
}

const CASES = [
  'None',
  'True',
  'False',
  '0',
  '255',
  '256',
  '65535',
  '65536',
  '-1',
  '2**31-1',
  '-2**31',
  '2**31',
  '2**53+1',
  '-2**63',
  '2**200',
  '-(2**200)+7',
  '1.5',
  '-0.1',
  '1.25e-300',
  '""',
  '"héllo wörld ✓ 𝄞"',
  '"x"*300',
  '"y"*70000',
  'b""',
  'b"\\x00\\xff" * 200',
  '[]',
  '()',
  '{}',
  '(1,)',
  '(1, 2)',
  '(1, 2, 3)',
  '(1, 2, 3, 4)',
  '[1, [2, [3, (4, "five")]]]',
  'list(range(2500))',
  '{"a": 1, "b": [1, 2], "c": {"d": None}}',
  '{1: "one", 2: "two", "x": 3}',
  '{(1, 2): "tuple key"}',
  'dict(("k%d" % i, i) for i in range(1500))',
  '{1, 2, 3}',
  'frozenset({"a"})',
  '(["init", 1], {"speed": 2.5})',
  '[[1, 2]] * 3',
];

test('unpickle reads what pickle (protocols 0-5) and dill produce for plain data', { skip: skipWithout(PEERS.dill) }, () => {
  const script = `${PY_TAG}
cases = json.loads(sys.stdin.read())
out = []
for src in cases:
    v = eval(src)
    row = {"src": src, "tag": tag(v), "dumps": {}}
    for p in range(0, 6):
        row["dumps"]["pickle%d" % p] = pickle.dumps(v, protocol=p).hex()
    row["dumps"]["dill"] = dill.dumps(v).hex()
    row["dumps"]["pickle_default"] = pickle.dumps(v).hex()
    out.append(row)
print(json.dumps(out))
`;
  const rows = JSON.parse(execFileSync(PY, ['-c', script], { input: JSON.stringify(CASES), maxBuffer: 64 * 1024 * 1024 }).toString()) as {
    src: string;
    tag: unknown;
    dumps: Record<string, string>;
  }[];
  let checked = 0;
  for (const row of rows) {
    for (const [how, hex] of Object.entries(row.dumps)) {
      const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
      const proto = how.startsWith('pickle') ? Number(how.slice(6)) : 4;
      // Protocols 0-2 pickle bytes and sets through REDUCE (builtins calls): refused, as designed.
      let value: unknown;
      try {
        value = unpickle(bytes, { maxIntBytes: 4096 });
      } catch (err) {
        assert.ok(err instanceof PickleError, `${row.src} ${how}: ${String(err)}`);
        const reducible = /b"|b'|frozenset|\{1, 2, 3\}/.test(row.src) && proto < 4;
        assert.ok(reducible && err.code === 'WK_PICKLE_REFUSED', `${row.src} ${how}: unexpected ${err.message}`);
        continue;
      }
      assert.deepEqual(sortSets(tag(value)), sortSets(row.tag), `${row.src} via ${how}`);
      checked++;
    }
  }
  assert.ok(checked > CASES.length * 5);
});

test('Python reads what pickle() writes (pickle and dill loads)', { skip: skipWithout(PEERS.dill) }, () => {
  const m = new Map<unknown, unknown>([
    [1, 'one'],
    [tuple(1, 2), 'pair'],
  ]);
  const values: unknown[] = [
    null,
    true,
    false,
    0,
    255,
    256,
    65536,
    -1,
    2 ** 31,
    -(2 ** 31) - 1,
    2n ** 100n,
    -(2n ** 64n),
    0.25,
    -1e-300,
    '',
    'héllo ✓ 𝄞',
    'z'.repeat(300),
    new Uint8Array([0, 1, 255]),
    new Uint8Array(70000).fill(7),
    [],
    tuple(),
    tuple(1),
    tuple(1, 'a', null, 4),
    [1, [2, tuple(3)]],
    { a: 1, b: [true, null], 'é': { x: 'y' } },
    m,
    new Set([1, 'two']),
    Array.from({ length: 2500 }, (_, i) => i),
    Object.fromEntries(Array.from({ length: 1200 }, (_, i) => [`k${i}`, i])),
  ];
  const hexes = values.map((v) => Buffer.from(pickle(v)).toString('hex'));
  const script = `${PY_TAG}
hexes = json.loads(sys.stdin.read())
out = []
for h in hexes:
    b = bytes.fromhex(h)
    a = pickle.loads(b)
    d = dill.loads(b)
    assert a == d
    out.append(tag(a))
print(json.dumps(out))
`;
  const got = JSON.parse(execFileSync(PY, ['-c', script], { input: JSON.stringify(hexes), maxBuffer: 64 * 1024 * 1024 }).toString()) as unknown[];
  assert.equal(got.length, values.length);
  for (let i = 0; i < values.length; i++) assert.deepEqual(sortSets(got[i]), sortSets(tag(values[i])), `value ${i}`);
});

test('unpickle refuses every opcode that imports or calls, naming it', { skip: skipWithout(PEERS.dill) }, () => {
  const script = `
import pickle, dill, json, os, collections, datetime
class P: pass
samples = {
  "os.system": pickle.dumps(os.system),
  "reduce": pickle.dumps(collections.OrderedDict(a=1)),
  "datetime": pickle.dumps(datetime.date(2020, 1, 1)),
  "instance": pickle.dumps(P()) if False else pickle.dumps(complex(1, 2)),
  "proto0 global": pickle.dumps(os.getcwd, protocol=0),
  "proto2 bytes": pickle.dumps(b"x", protocol=2),
  "dill lambda": dill.dumps(lambda x: x),
  "bytearray": pickle.dumps(bytearray(b"x")),
}
print(json.dumps({k: v.hex() for k, v in samples.items()}))
`;
  const samples = JSON.parse(execFileSync(PY, ['-c', script]).toString()) as Record<string, string>;
  for (const [name, hex] of Object.entries(samples)) {
    assert.throws(
      () => unpickle(Uint8Array.from(Buffer.from(hex, 'hex'))),
      (err: unknown) => err instanceof PickleError && err.code === 'WK_PICKLE_REFUSED' && /GLOBAL|REDUCE|INST|OBJ/.test(err.message),
      name,
    );
  }
});

test('unpickle: hand-made hostile and malformed input gets a typed error', () => {
  const bad: [string, number[]][] = [
    ['empty', []],
    ['no STOP', [0x80, 4, 0x4e]],
    ['stack underflow', [0x80, 4, 0x61, 0x2e]],
    ['truncated BINUNICODE', [0x58, 0xff, 0xff, 0xff, 0x7f, 0x61]],
    ['huge BINBYTES8', [0x8e, 0, 0, 0, 0, 0, 0, 0x10, 0]],
    ['memo miss', [0x68, 5, 0x2e]],
    ['unknown opcode', [0xff]],
    ['two values at STOP', [0x4e, 0x4e, 0x2e]],
    ['trailing bytes', [0x4e, 0x2e, 0x00]],
    ['append to tuple', [0x29, 0x4e, 0x61, 0x2e]],
    ['huge LONG4', [0x8b, 0xff, 0xff, 0xff, 0x00]],
    ['bad utf-8', [0x8c, 1, 0xff, 0x2e]],
    ['REDUCE', [0x4e, 0x29, 0x52, 0x2e]],
    ['protocol 9', [0x80, 9, 0x4e, 0x2e]],
  ];
  for (const [name, bytes] of bad) {
    assert.throws(() => unpickle(Uint8Array.from(bytes)), PickleError, name);
  }
  // Deep nesting: bounded by maxDepth, not by the JS stack.
  const deep = [0x80, 4, ...Array<number>(5000).fill(0x5d), ...Array<number>(4999).fill(0x61), 0x2e];
  assert.throws(() => unpickle(Uint8Array.from(deep)), (e: unknown) => e instanceof PickleError && e.code === 'WK_PICKLE_LIMIT');
  // Shared references and cycles are kept.
  const shared = unpickle(Uint8Array.from([0x80, 4, 0x5d, 0x94, 0x68, 0, 0x61, 0x2e])) as unknown[];
  assert.equal(shared[0], shared);
});

test('pickle refuses what is not plain data', () => {
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  for (const v of [() => 1, Symbol('s'), new Date(), cyclic, new (class Foo {})()]) {
    assert.throws(() => pickle(v), (e: unknown) => e instanceof PickleError && e.code === 'WK_PICKLE_UNSUPPORTED' && e.origin === 'local');
  }
});

test('property: pickle then unpickle is the identity on plain data', () => {
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 130n), max: 2n ** 130n }),
    fc.double({ noNaN: true, noDefaultInfinity: false }).filter((d) => !Number.isInteger(d)),
    fc.string({ unit: 'binary' }),
    fc.uint8Array({ maxLength: 300 }),
  );
  const value = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 5 }), fc.array(tie('v'), { maxLength: 4 }).map((a) => tuple(...a)), fc.dictionary(fc.string(), tie('v'), { maxKeys: 4 })),
  })).v;
  fc.assert(
    fc.property(value, (v) => {
      assert.deepEqual(tag(unpickle(pickle(v))), tag(v));
    }),
    { numRuns: 300 },
  );
});

// Python writes a lone surrogate (a file name from os.listdir() that is not UTF-8) with surrogatepass.
const SURROGATES = ['\udc80', 'a\udcffb', '\ud800', 'x\ud83d', '\udc00\ud800', 'é\udcfe😀', '\ud83d\ude00\udc80'];

test('pickle: lone surrogates as surrogatepass writes them, both ways', () => {
  for (const s of SURROGATES) {
    assert.equal(unpickle(pickle(s)), s, JSON.stringify(s));
  }
  // '\udc80abc' as Python 3 pickles it (protocol 4): SHORT_BINUNICODE 6 ED B2 80 'abc'.
  const py = Uint8Array.from([0x80, 4, 0x95, 10, 0, 0, 0, 0, 0, 0, 0, 0x8c, 6, 0xed, 0xb2, 0x80, 0x61, 0x62, 0x63, 0x94, 0x2e]);
  assert.equal(unpickle(py), '\udc80abc');
  assert.ok(Buffer.from(pickle('\udc80abc')).includes(Buffer.from([0x8c, 6, 0xed, 0xb2, 0x80, 0x61, 0x62, 0x63])));
  // Other invalid UTF-8 is still malformed (a surrogate's form cut short, an overlong form).
  for (const bytes of [[0x8c, 2, 0xed, 0xb2, 0x2e], [0x8c, 2, 0xc0, 0x80, 0x2e], [0x8c, 4, 0xed, 0xb2, 0x80, 0xff, 0x2e]]) {
    assert.throws(() => unpickle(Uint8Array.from(bytes)), (e: unknown) => e instanceof PickleError && e.code === 'WK_PICKLE_MALFORMED');
  }
  fc.assert(
    fc.property(fc.string({ unit: fc.nat(0xffff).map((c) => String.fromCharCode(c)), maxLength: 12 }), (s) => {
      assert.equal(unpickle(pickle(s)), s);
    }),
  );
});

test('pickle: lone surrogates round-trip through Python', { skip: skipWithout(PEERS.python) }, () => {
  const script = `
import pickle, sys, json
for v in json.loads(sys.stdin.read()):
    s = pickle.loads(bytes.fromhex(v))
    assert isinstance(s, str)
    print(pickle.dumps(s, protocol=4).hex())
`;
  const input = JSON.stringify(SURROGATES.map((s) => Buffer.from(pickle(s)).toString('hex')));
  const back = execFileSync(PY, ['-c', script], { input }).toString().trim().split('\n');
  assert.deepEqual(
    back.map((hex) => unpickle(Uint8Array.from(Buffer.from(hex, 'hex')))),
    // Python keeps '\udc00\ud800' as two code points; a JavaScript string holds the same code units.
    SURROGATES,
  );
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, encodeToBytes, FrameTooLargeError, MalformedFrameError, TruncatedFrameError, lines, ndjson, textLines } from '../../src/codecs/index.js';
import { chunkings, concat, dec, enc } from '../helpers/chunks.js';

const jsonValue = fc.jsonValue({ maxDepth: 3 });

test('NDJSON: LF and CRLF lines, blank lines skipped, values round-trip', () => {
  const r = new FrameReader(ndjson());
  assert.deepEqual(r.push(enc('{"a":1}\r\n\n  \n[1,"x"]\nnull\n"s')), [{ a: 1 }, [1, 'x'], null]);
  assert.deepEqual(r.push(enc('"\n')), ['s']);
  assert.deepEqual(r.end(), []);
});

test('property: NDJSON decode of encoded values is the identity for every chunking', () => {
  fc.assert(
    fc.property(
      fc.array(jsonValue, { maxLength: 12 }).chain((values) => {
        const codec = ndjson({ eol: '\r\n' });
        const bytes = concat(values.map((v) => encodeToBytes(codec, v)));
        return fc.tuple(fc.constant(values), chunkings(bytes));
      }),
      ([values, chunks]) => {
        const r = new FrameReader(ndjson());
        const got = chunks.flatMap((c) => r.push(c));
        got.push(...r.end());
        // JSON round trip normalises -0 to 0, as JSON.parse(JSON.stringify(v)) does.
        assert.deepEqual(got, values.map((v) => JSON.parse(JSON.stringify(v))));
      },
    ),
  );
});

test('property: text lines round-trip for every chunking (including 1-byte and empty chunks)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ unit: 'grapheme' }).filter((s) => !s.includes('\n') && !s.endsWith('\r')), { maxLength: 10 }).chain((ls) => {
        const codec = textLines();
        return fc.tuple(fc.constant(ls), chunkings(concat(ls.map((l) => encodeToBytes(codec, l)))));
      }),
      ([ls, chunks]) => {
        const r = new FrameReader(textLines());
        const got = chunks.flatMap((c) => r.push(c));
        assert.deepEqual([...got, ...r.end()], ls);
      },
    ),
  );
});

test('invalid JSON: typed error, the line is consumed, the next line decodes', () => {
  const r = new FrameReader(ndjson());
  const frames = r.push(enc('{"ok":1}\n{bad json}\n{"ok":2}\n'));
  assert.deepEqual(frames, [{ ok: 1 }]);
  assert.throws(() => r.next(), (e: unknown) => e instanceof MalformedFrameError && /invalid JSON/.test(e.message) && /bad json/.test(e.message));
  assert.deepEqual(r.next(), { ok: 2 });
});

test('over-long line: one FrameTooLargeError naming the limit, then discarded up to its newline', () => {
  const r = new FrameReader(lines({ maxLineLength: 8 }));
  assert.deepEqual(r.push(enc('short\n0123456789')), [enc('short')]);
  assert.throws(() => r.push(enc('abcdef')), (e: unknown) => e instanceof FrameTooLargeError && e.limit === 8 && /limit of 8 bytes/.test(e.message));
  assert.deepEqual(r.push(enc('still the long line')), []);
  assert.equal(r.bufferedBytes, 0, 'the oversized line is not buffered');
  assert.deepEqual(r.push(enc('...\nnext\n')), [enc('next')]);
});

test('a line of exactly the maximum is accepted, with LF or CRLF', () => {
  const r = new FrameReader(lines({ maxLineLength: 4 }));
  assert.deepEqual(r.push(enc('abcd\nefgh\r\n')), [enc('abcd'), enc('efgh')]);
  assert.throws(() => r.push(enc('abcde\n')), FrameTooLargeError);
});

test('an endless line uses bounded memory', () => {
  const r = new FrameReader(lines({ maxLineLength: 1000 }));
  const chunk = new Uint8Array(4096).fill(0x61);
  let errors = 0;
  for (let i = 0; i < 1000; i++) {
    try {
      r.push(chunk);
    } catch (e) {
      assert.ok(e instanceof FrameTooLargeError);
      errors++;
    }
    assert.ok(r.bufferedBytes <= 4096 + 1001);
  }
  assert.equal(errors, 1, 'the oversize error is reported once');
});

test('end of input inside a line: TruncatedFrameError with the byte count; allowUnterminated emits it', () => {
  const r = new FrameReader(textLines());
  r.push(enc('a\npartial'));
  assert.throws(() => r.end(), (e: unknown) => e instanceof TruncatedFrameError && e.remaining === 7 && /7 bytes/.test(e.message));
  const r2 = new FrameReader(textLines({ allowUnterminated: true }));
  assert.deepEqual(r2.push(enc('a\nlast')), ['a']);
  assert.deepEqual(r2.end(), ['last']);
});

test('encoder refuses a line that contains a newline', () => {
  assert.throws(() => encodeToBytes(textLines(), 'a\nb'), /newline/);
  assert.equal(dec(encodeToBytes(ndjson(), { s: 'a\nb' })), '{"s":"a\\nb"}\n');
});

test('property: random bytes never hang and only raise typed errors', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
      const r = new FrameReader(ndjson({ maxLineLength: 32 }));
      for (const c of chunks) {
        try {
          r.push(c);
        } catch (e) {
          assert.ok(e instanceof MalformedFrameError || e instanceof FrameTooLargeError, String(e));
        }
        assert.ok(r.bufferedBytes <= 64 + 33);
      }
    }),
  );
});

test('property: long runs of lines in big chunks (text fast path) match line-by-line decoding, errors in place', () => {
  const item = fc.oneof(
    { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => ({ kind: 'ok' as const, v: JSON.parse(JSON.stringify(v)) as unknown })) },
    { weight: 1, arbitrary: fc.constantFrom('{bad', 'nul', '[1,]').map((t) => ({ kind: 'bad' as const, t })) },
    { weight: 1, arbitrary: fc.constantFrom('', '  ', '\t').map((t) => ({ kind: 'blank' as const, t })) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }).map((s) => ({ kind: 'ok' as const, v: s as unknown })) },
  );
  fc.assert(
    fc.property(fc.array(item, { minLength: 20, maxLength: 200 }), fc.array(fc.integer({ min: 0, max: 20000 }), { maxLength: 3 }), fc.boolean(), (items, cuts, crlf) => {
      const eol = crlf ? '\r\n' : '\n';
      const text = items.map((it) => (it.kind === 'ok' ? JSON.stringify(it.v) : it.t) + eol).join('');
      const wire = enc(text);
      const expected = items.filter((it) => it.kind !== 'blank').map((it) => (it.kind === 'ok' ? it.v : 'ERR'));
      const r = new FrameReader(ndjson());
      const got: unknown[] = [];
      const points = [...cuts.map((c) => Math.min(c, wire.length)), wire.length].sort((a, b) => a - b);
      let prev = 0;
      for (const p of points) {
        r.feed(wire.slice(prev, p));
        prev = p;
        for (;;) {
          try {
            const f = r.next();
            if (f === undefined) break;
            got.push(f);
          } catch (e) {
            assert.ok(e instanceof MalformedFrameError);
            got.push('ERR');
          }
        }
      }
      assert.deepEqual(got, expected);
      assert.equal(r.bufferedBytes, 0);
    }),
    { numRuns: 200 },
  );
});

test('text fast path: switching codecs after a line hands over the exact next byte', () => {
  const many = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i })).join('\n') + '\nRAW-TAIL';
  const r = new FrameReader(ndjson());
  r.feed(enc(many));
  for (let i = 0; i < 10; i++) assert.deepEqual(r.next(), { i });
  const rest = dec(r.takeRemaining());
  assert.ok(rest.startsWith('{"i":10}\n'));
  assert.ok(rest.endsWith('\nRAW-TAIL'));
});

test('lines after an oversize line in the same chunk are kept', () => {
  const r = new FrameReader(textLines({ maxLineLength: 4 }));
  const frames: string[] = [];
  let errors = 0;
  r.feed(enc('0123456789\nok\nfine\n'));
  for (;;) {
    try {
      const f = r.next();
      if (f === undefined) break;
      frames.push(f);
    } catch (e) {
      assert.ok(e instanceof FrameTooLargeError);
      errors++;
    }
  }
  assert.equal(errors, 1);
  assert.deepEqual(frames, ['ok', 'fine']);
});

test('FrameReader: recoverable errors (over-long line, bad JSON) say so and decoding goes on', () => {
  const reader = new FrameReader(ndjson({ maxLineLength: 8 }));
  const got: unknown[] = [];
  const errors: unknown[] = [];
  const input = enc('{"a":1}\n"this line is too long"\nnot json\n{"b":2}\n');
  for (const chunk of [input.subarray(0, 5), input.subarray(5, 20), input.subarray(20)]) {
    try {
      got.push(...reader.push(chunk));
    } catch (err) {
      errors.push(err);
    }
    for (;;) {
      try {
        const f = reader.next();
        if (f === undefined) break;
        got.push(f);
      } catch (err) {
        errors.push(err);
      }
    }
  }
  got.push(...reader.end());
  assert.deepEqual(got, [{ a: 1 }, { b: 2 }]);
  assert.equal(errors.length, 2);
  assert.ok(errors[0] instanceof FrameTooLargeError && !errors[0].fatal && errors[0].origin === 'remote');
  assert.ok(errors[1] instanceof MalformedFrameError && !errors[1].fatal);
  assert.equal(reader.failure, undefined);
});

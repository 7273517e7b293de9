import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MalformedFrameError } from '../../src/codecs/errors.js';
import { closingLength, multipartBoundary, MultipartReader, splitParams, type MultipartEvent } from '../../src/hub/multipart.js';
import { chunkings, concat, enc, sameBytes } from '../helpers/chunks.js';

const B = 'xYz--bound';

function body(content: Uint8Array, preamble = '', extraHeaders = ''): { bytes: Uint8Array; headerEnd: number } {
  const head = enc(`${preamble}--${B}\r\nContent-Disposition: form-data; name="file"; filename="a \\"b\\".bin"\r\n${extraHeaders}\r\n`);
  return { bytes: concat([head, content, enc(`\r\n--${B}--\r\n`)]), headerEnd: head.length };
}

function run(reader: MultipartReader, chunks: readonly Uint8Array[]): MultipartEvent[] {
  const events: MultipartEvent[] = [];
  let pushed = 0;
  for (const c of chunks) {
    events.push(...reader.push(c));
    pushed += c.length;
    // Bounded: what the reader holds is at most a delimiter's length (the headers here are short).
    assert.ok(pushed - reader.offset <= 256, `holds ${pushed - reader.offset} bytes`);
  }
  reader.end();
  return events;
}

// File bytes that look like pieces of the delimiter, to tempt the scan.
const tricky = fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(enc('\r\n'), enc('\r\n--'), enc(`\r\n--${B.slice(0, 5)}`), enc(`--${B}`), enc('\r'))), { maxLength: 12 })
  .map(concat)
  // A sender picks a boundary its content does not hold.
  .filter((c) => !Buffer.from(c).includes(`\r\n--${B}`));

test('one part: headers, data whole across any chunking, the size formula from Content-Length holds', () => {
  fc.assert(
    fc.property(
      tricky.chain((content) => fc.tuple(fc.constant(content), fc.constantFrom('', 'preamble text\r\n'))).chain(([content, pre]) => {
        const b = body(content, pre);
        return fc.tuple(fc.constant(content), fc.constant(b), chunkings(b.bytes));
      }),
      ([content, b, chunks]) => {
        const events = run(new MultipartReader(B), chunks);
        const part = events.find((e) => e.type === 'part');
        assert.ok(part && part.type === 'part');
        assert.equal(part.offset, b.headerEnd);
        assert.equal(splitParams(part.headers.get('content-disposition')!).params.get('filename'), 'a "b".bin');
        const data = concat(events.flatMap((e) => (e.type === 'data' ? [e.data] : [])));
        sameBytes(data, content);
        assert.deepEqual(events.at(-1), { type: 'partEnd', last: true });
        assert.equal(b.bytes.length - part.offset - closingLength(B), content.length);
      },
    ),
  );
});

test('two parts come apart; maxParts refuses more', () => {
  const two = enc(`--${B}\r\nContent-Disposition: form-data; name="a"\r\n\r\none\r\n--${B}  \r\n\r\ntwo\r\n--${B}--`);
  const events = run(new MultipartReader(B), [two]);
  assert.deepEqual(
    events.map((e) => (e.type === 'data' ? Buffer.from(e.data).toString() : e.type === 'partEnd' ? `end:${e.last}` : 'part')),
    ['part', 'one', 'end:false', 'part', 'two', 'end:true'],
  );
  assert.throws(() => new MultipartReader(B, { maxParts: 1 }).push(two), MalformedFrameError);
});

test('hostile input: oversized headers, garbage after a delimiter, a body cut short; errors are final', () => {
  const big = new MultipartReader(B, { maxHeaderBytes: 100 });
  assert.throws(() => big.push(enc(`--${B}\r\nX: ${'a'.repeat(200)}`)), /headers over 100 bytes/);
  assert.throws(() => big.push(enc('\r\n\r\n')), /headers over 100 bytes/);
  assert.throws(() => new MultipartReader(B).push(enc(`--${B}garbage\r\n`)), /garbage/);
  const short = new MultipartReader(B);
  short.push(body(enc('abc')).bytes.subarray(0, 60));
  assert.throws(() => short.end(), /before its close delimiter/);
  assert.throws(() => new MultipartReader(B).push(enc(`--${B}\r\nno colon here\r\n\r\n`)), /malformed/);
});

test('the boundary of a content type', () => {
  assert.equal(multipartBoundary('multipart/form-data; boundary=----x'), '----x');
  assert.equal(multipartBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"'), 'a b');
  assert.equal(multipartBoundary('application/octet-stream'), undefined);
  assert.equal(multipartBoundary(undefined), undefined);
  assert.throws(() => multipartBoundary('multipart/form-data'), MalformedFrameError);
  assert.throws(() => multipartBoundary(`multipart/form-data; boundary=${'x'.repeat(71)}`), MalformedFrameError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FrameReader, encodeToBytes, ndjson, percentDollar, u32be } from '../../src/codecs/index.js';
import { concat, cutsFor, splitAt } from '../helpers/chunks.js';

test('property: switching codecs at a frame boundary loses, duplicates and reorders nothing, for every chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 5 }),
      fc.uint8Array({ maxLength: 60 }),
      fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 12 }),
      (jsons, frames, raw, cuts) => {
        // NDJSON messages, then a `switch` line, then u32be frames, then raw bytes.
        const j = ndjson();
        const u = u32be();
        const wire = concat([...jsons.map((v) => encodeToBytes(j, { v })), encodeToBytes(j, { switch: true }), ...frames.map((f) => encodeToBytes(u, f)), encodeToBytes(u, new Uint8Array(0)), raw]);
        const chunks = splitAt(wire, cuts);
        let reader: FrameReader<unknown> = new FrameReader(ndjson());
        let mode: 'json' | 'u32' | 'raw' = 'json';
        const gotJson: unknown[] = [];
        const gotFrames: Uint8Array[] = [];
        const gotRaw: Uint8Array[] = [];
        for (const chunk of chunks) {
          if (mode === 'raw') {
            gotRaw.push(chunk);
            continue;
          }
          reader.feed(chunk);
          for (;;) {
            if (mode === 'raw') break;
            const f = reader.next();
            if (f === undefined) break;
            if (mode === 'json') {
              if ((f as { switch?: boolean }).switch) {
                reader = reader.switchTo(u32be()) as FrameReader<unknown>;
                mode = 'u32';
              } else gotJson.push((f as { v: unknown }).v);
            } else {
              const b = f as Uint8Array;
              if (b.length === 0) {
                gotRaw.push(reader.takeRemaining());
                mode = 'raw';
              } else gotFrames.push(b);
            }
          }
        }
        assert.equal(mode, 'raw');
        assert.deepEqual(gotJson, jsons.map((v) => JSON.parse(JSON.stringify(v))));
        assert.deepEqual(gotFrames, frames);
        assert.deepEqual(concat(gotRaw), raw);
      },
    ),
  );
});

test('property: takeRemaining at any byte offset hands over exactly the undecoded bytes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.string(), { maxLength: 6 }).chain((msgs) => {
        const wire = concat(msgs.map((m) => encodeToBytes(percentDollar(), m)));
        return fc.tuple(fc.constant(wire), fc.integer({ min: 0, max: wire.length }), cutsFor(wire.length));
      }),
      ([wire, stopAt, cuts]) => {
        const r = new FrameReader(percentDollar());
        let fed = 0;
        const decoded: string[] = [];
        for (const c of splitAt(wire.subarray(0, stopAt), cuts)) {
          decoded.push(...r.push(c));
          fed += c.length;
        }
        const rest = r.takeRemaining();
        // Re-encoding what was decoded plus the handed-over bytes gives back the input prefix.
        const again = concat([...decoded.map((m) => encodeToBytes(percentDollar(), m)), rest]);
        assert.deepEqual(again, wire.subarray(0, fed));
      },
    ),
  );
});

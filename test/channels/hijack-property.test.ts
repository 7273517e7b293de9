import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import fc from 'fast-check';
import { channel } from '../../src/channels/index.js';
import { encodeToBytes, percentDollar, u32be } from '../../src/codecs/index.js';
import { concat, cutsFor, splitAt, sameBytes } from '../helpers/chunks.js';

async function collect(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c as Uint8Array);
  return concat(parts);
}

test('property: hijack after any number of frames, with any chunking, hands over exactly the rest', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 30 }), { maxLength: 6 }).chain((frames) => {
        const wire = concat([...frames.map((f) => encodeToBytes(u32be(), f)), new Uint8Array([1, 2, 3, 4, 5, 6, 7])]);
        return fc.tuple(fc.constant(frames), fc.constant(wire), cutsFor(wire.length), fc.integer({ min: 0, max: frames.length }));
      }),
      async ([frames, wire, cuts, readCount]) => {
        const input = new PassThrough();
        const ch = channel(Duplex.from({ readable: input, writable: new PassThrough() }), u32be());
        const chunks = splitAt(wire, cuts);
        // Feed asynchronously, interleaved with reads.
        const feeding = (async () => {
          for (const c of chunks) {
            input.write(c);
            await new Promise((r) => setImmediate(r));
          }
          input.end();
        })();
        for (let i = 0; i < readCount; i++) sameBytes(await ch.read(), frames[i]!);
        const raw = ch.hijack();
        const rest = await collect(raw);
        await feeding;
        const consumed = frames.slice(0, readCount).reduce((n, f) => n + 4 + f.length, 0);
        sameBytes(rest, wire.subarray(consumed));
      },
    ),
    { numRuns: 100 },
  );
});

test('property: switch codec after any number of frames keeps every byte', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.string({ maxLength: 10 }), { maxLength: 5 }), fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 5 }), fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 8 }), async (msgs, frames, cuts) => {
      const pd = percentDollar();
      const wire = concat([...msgs.map((m) => encodeToBytes(pd, m)), encodeToBytes(pd, 'SWITCH'), ...frames.map((f) => encodeToBytes(u32be(), f))]);
      const input = new PassThrough();
      const ch = channel(Duplex.from({ readable: input, writable: new PassThrough() }), percentDollar());
      for (const c of splitAt(wire, cuts)) input.write(c);
      input.end();
      for (const m of msgs) assert.equal(await ch.read(), m);
      assert.equal(await ch.read(), 'SWITCH');
      const bin = ch.switchCodec(u32be());
      for (const f of frames) sameBytes(await bin.read(), f);
      assert.equal(await bin.read(), null);
    }),
    { numRuns: 100 },
  );
});

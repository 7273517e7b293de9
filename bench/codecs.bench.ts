/**
 * Codec workloads from PRODUCT.md, input in 64 KiB chunks:
 * NDJSON 1M messages, one 32 MiB line, 1M frames of 32 B, 1,000 frames of 1 MiB (decode, encode,
 * and written through a channel to a Unix socket).
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ByteWriter } from '../src/bytes/index.js';
import { channel } from '../src/channels/index.js';
import split2 from 'split2';
import * as itlp from 'it-length-prefixed';
import { FrameReader, encodeToBytes, lines, ndjson, u32be, varint } from '../src/codecs/index.js';
import { bestOf, bestOfInterleaved, chunked, type BenchContext, type Reporter } from './harness.js';

const require = createRequire(import.meta.url);
const lps = require('length-prefixed-stream') as { decode(): NodeJS.ReadWriteStream; encode(): NodeJS.ReadWriteStream };

export const name = 'codecs';
const CHUNK = 64 * 1024;

function ndjsonInput(count: number): Uint8Array {
  // ~63-byte messages, as in the brief.
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(JSON.stringify({ id: i, type: 'event', ok: true, name: `n${i % 1000}`, v: 1.5 }).padEnd(62, ' '));
  return new TextEncoder().encode(parts.join('\n') + '\n');
}

function split2Run(chunks: Uint8Array[], mapper?: (line: string) => unknown, maxLength?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const s = mapper ? split2(mapper, maxLength ? { maxLength } : undefined) : split2(maxLength ? { maxLength } : undefined);
    s.on('data', () => n++);
    s.on('end', () => resolve(n));
    s.on('error', reject);
    for (const c of chunks) s.write(c);
    s.end();
  });
}

function lpsRun(chunks: Uint8Array[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const d = lps.decode();
    d.on('data', () => n++);
    d.on('end', () => resolve(n));
    d.on('error', reject);
    for (const c of chunks) d.write(c as Buffer);
    d.end();
  });
}

async function itlpRun(chunks: Uint8Array[]): Promise<number> {
  let n = 0;
  async function* src() {
    yield* chunks;
  }
  for await (const _m of itlp.decode(src(), { maxDataLength: 2 * 1024 * 1024 })) n++;
  return n;
}

function encodeFrames(count: number, size: number, enc: (p: Uint8Array) => Uint8Array): Uint8Array {
  const payload = new Uint8Array(size).fill(7);
  const one = enc(payload);
  const out = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) out.set(one, i * one.length);
  return out;
}

export async function run(r: Reporter, ctx: BenchContext): Promise<void> {
  const runs = ctx.quick ? 1 : 3;

  // 1. NDJSON decode.
  {
    const count = ctx.quick ? 200_000 : 1_000_000;
    const chunks = chunked(ndjsonInput(count), CHUNK);
    const w = `NDJSON decode, ${count / 1e6}M msgs of ~63 B`;
    let got = 0;
    const tSplit = await bestOf(runs, async () => {
      got = await split2Run(chunks, JSON.parse);
    });
    if (got !== count) throw new Error(`split2 decoded ${got}`);
    r.add({ workload: w, impl: 'split2 + JSON.parse', value: count / (tSplit / 1000), unit: 'msg/s', higherIsBetter: true, baseline: true });
    const tWk = await bestOf(runs, () => {
      const reader = new FrameReader(ndjson());
      let n = 0;
      for (const c of chunks) n += reader.push(c).length;
      got = n;
    });
    if (got !== count) throw new Error(`wirekit decoded ${got}`);
    r.add({ workload: w, impl: 'wirekit ndjson', value: count / (tWk / 1000), unit: 'msg/s', higherIsBetter: true });
  }

  // 2. One 32 MiB line.
  {
    const size = ctx.quick ? 8 * 1024 * 1024 : 32 * 1024 * 1024;
    const data = new Uint8Array(size + 1).fill(0x61);
    data[size] = 0x0a;
    const chunks = chunked(data, CHUNK);
    const w = `one ${size / 2 ** 20} MiB line`;
    const tSplit = await bestOf(1, async () => {
      await split2Run(chunks);
    });
    r.add({ workload: w, impl: 'split2', value: tSplit, unit: 'ms', higherIsBetter: false, baseline: true });
    let len = 0;
    const tWk = await bestOf(runs, () => {
      const reader = new FrameReader(lines({ maxLineLength: 64 * 1024 * 1024 }));
      for (const c of chunks) for (const l of reader.push(c)) len = l.length;
    });
    if (len !== size) throw new Error('bad line');
    r.add({ workload: w, impl: 'wirekit lines', value: tWk, unit: 'ms', higherIsBetter: false });
  }

  // 3. 1M frames of 32 B (varint prefix, as both peers use; u32be also shown).
  {
    const count = ctx.quick ? 200_000 : 1_000_000;
    const vchunks = chunked(encodeFrames(count, 32, (p) => encodeToBytes(varint(), p)), CHUNK);
    const uchunks = chunked(encodeFrames(count, 32, (p) => encodeToBytes(u32be(), p)), CHUNK);
    const w = `length-prefixed decode, ${count / 1e6}M frames of 32 B`;
    let got = 0;
    const tLps = await bestOf(runs, async () => {
      got = await lpsRun(vchunks);
    });
    if (got !== count) throw new Error(`lps decoded ${got}`);
    r.add({ workload: w, impl: 'length-prefixed-stream (varint)', value: count / (tLps / 1000), unit: 'frames/s', higherIsBetter: true, baseline: true });
    const tIt = await bestOf(runs, async () => {
      got = await itlpRun(vchunks);
    });
    if (got !== count) throw new Error(`it-lp decoded ${got}`);
    r.add({ workload: w, impl: 'it-length-prefixed (varint, async)', value: count / (tIt / 1000), unit: 'frames/s', higherIsBetter: true });
    for (const [label, make, chunks] of [
      ['wirekit varint', varint, vchunks],
      ['wirekit u32be', u32be, uchunks],
    ] as const) {
      const t = await bestOf(runs, () => {
        const reader = new FrameReader(make());
        let n = 0;
        for (const c of chunks) n += reader.push(c).length;
        got = n;
      });
      if (got !== count) throw new Error(`${label} decoded ${got}`);
      r.add({ workload: w, impl: label, value: count / (t / 1000), unit: 'frames/s', higherIsBetter: true });
    }
  }

  // 4. 1,000 frames of 1 MiB, against a plain copy of the same bytes.
  {
    const count = ctx.quick ? 200 : 1000;
    const size = 1024 * 1024;
    const wire = encodeFrames(count, size, (p) => encodeToBytes(u32be({ maxFrameLength: 2 * size }), p));
    const chunks = chunked(wire, CHUNK);
    const w = `length-prefixed decode, ${count} frames of 1 MiB`;
    const GB = (count * size) / 1e9;
    // Baseline: copy every chunk's bytes into 1 MiB output buffers (what any framing must do at
    // least). The two alternate, five rounds each: they are close, and memory-bound runs drift.
    const copy = () => {
      let out = new Uint8Array(size);
      let o = 0;
      for (const c of chunks) {
        let i = 0;
        while (i < c.length) {
          const take = Math.min(c.length - i, size - o);
          out.set(c.subarray(i, i + take), o);
          o += take;
          i += take;
          if (o === size) {
            out = new Uint8Array(size);
            o = 0;
          }
        }
      }
    };
    let got = 0;
    const decode = () => {
      const reader = new FrameReader(u32be({ maxFrameLength: 2 * size }));
      let n = 0;
      for (const c of chunks) n += reader.push(c).length;
      got = n;
    };
    const [tCopy, tWk] = (await bestOfInterleaved(ctx.quick ? 1 : 5, [copy, decode])) as [number, number];
    r.add({ workload: w, impl: 'plain copy', value: GB / (tCopy / 1000), unit: 'GB/s', higherIsBetter: true, baseline: true });
    if (got !== count) throw new Error(`decoded ${got}`);
    r.add({ workload: w, impl: 'wirekit u32be', value: GB / (tWk / 1000), unit: 'GB/s', higherIsBetter: true });
    const tLps = await bestOf(1, async () => {
      got = await lpsRun(chunked(encodeFrames(count, size, (p) => encodeToBytes(varint({ maxFrameLength: 2 * size }), p)), CHUNK));
    });
    r.add({ workload: w, impl: 'length-prefixed-stream (varint)', value: GB / (tLps / 1000), unit: 'GB/s', higherIsBetter: true, note: 'includes building its input' });
  }

  // 5. Encoding 1,000 frames of 1 MiB: what a writer hands to the socket, against copying each
  // payload once (what building one array per frame costs).
  {
    const count = ctx.quick ? 200 : 1000;
    const size = 1024 * 1024;
    const GB = (count * size) / 1e9;
    const payload = new Uint8Array(size).fill(7);
    const codec = u32be({ maxFrameLength: 2 * size });
    const w = `length-prefixed encode, ${count} frames of 1 MiB`;
    let bytes = 0;
    const copy = () => {
      bytes = 0;
      for (let i = 0; i < count; i++) bytes += payload.slice().length;
    };
    const out = new ByteWriter();
    const encode = () => {
      bytes = 0;
      for (let i = 0; i < count; i++) bytes += encodeParts(codec, payload, out);
    };
    let oneBytes = 0;
    const encodeOne = () => {
      oneBytes = 0;
      for (let i = 0; i < count; i++) oneBytes += encodeToBytes(codec, payload).length;
    };
    const [tCopy, tEnc, tOne] = (await bestOfInterleaved(ctx.quick ? 1 : 5, [copy, encode, encodeOne])) as [number, number, number];
    r.add({ workload: w, impl: 'plain copy of each payload', value: GB / (tCopy / 1000), unit: 'GB/s', higherIsBetter: true, baseline: true });
    if (bytes !== count * (size + 4) || oneBytes !== bytes) throw new Error(`encoded ${bytes}, ${oneBytes}`);
    r.add({ workload: w, impl: 'wirekit u32be encode into a ByteWriter', value: GB / (tEnc / 1000), unit: 'GB/s', higherIsBetter: true, note: ENCODE_NOTE });
    r.add({ workload: w, impl: 'wirekit encodeToBytes (one array per frame)', value: GB / (tOne / 1000), unit: 'GB/s', higherIsBetter: true, note: 'header and payload copied together, as encode() did before' });
  }

  // 6. The same frames written through a channel to a Unix socket (the peer counts bytes), against
  // writing the bare payloads to the same kind of socket.
  {
    const count = ctx.quick ? 200 : 1000;
    const size = 1024 * 1024;
    const GB = (count * size) / 1e9;
    const payload = new Uint8Array(size).fill(7);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-bench-codecs-'));
    const sock = path.join(dir, 'sink.sock');
    const server = net.createServer((c) => {
      let n = 0;
      c.on('data', (d: Buffer) => (n += d.length));
      c.on('end', () => c.end(String(n)));
    });
    await new Promise<void>((res) => server.listen(sock, res));
    const session = async (body: (c: net.Socket) => Promise<void>, expect: number) => {
      const c = await new Promise<net.Socket>((res, rej) => {
        const s = net.connect(sock, () => res(s));
        s.once('error', rej);
      });
      const reply = new Promise<string>((res) => {
        let t = '';
        c.on('data', (d: Buffer) => (t += d.toString()));
        c.on('end', () => res(t));
      });
      await body(c);
      if (Number(await reply) !== expect) throw new Error('short write');
    };
    const raw = () =>
      session(async (c) => {
        for (let i = 0; i < count; i++) if (!c.write(payload)) await new Promise((res) => c.once('drain', res));
        c.end();
      }, count * size);
    const framed = () =>
      session(async (c) => {
        const ch = channel(c, u32be({ maxFrameLength: 2 * size }));
        for (let i = 0; i < count; i++) await ch.write(payload);
        await ch.end();
      }, count * (size + 4));
    try {
      const [tRaw, tCh] = (await bestOfInterleaved(ctx.quick ? 1 : 3, [raw, framed])) as [number, number];
      const w = `channel write, ${count} frames of 1 MiB to a Unix socket`;
      r.add({ workload: w, impl: 'raw socket.write of the payloads', value: GB / (tRaw / 1000), unit: 'GB/s', higherIsBetter: true, baseline: true });
      r.add({ workload: w, impl: 'wirekit channel(u32be).write', value: GB / (tCh / 1000), unit: 'GB/s', higherIsBetter: true });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const ENCODE_NOTE = 'header and payload as parts, payload by reference';

/** Encodes one frame as the parts a channel hands to the socket; returns their byte count. */
function encodeParts(codec: ReturnType<typeof u32be>, payload: Uint8Array, out: ByteWriter): number {
  codec.encode(payload, out);
  let n = 0;
  for (const p of out.parts()) n += p.length;
  return n;
}

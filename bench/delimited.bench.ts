/**
 * The `%base64$` UDS codec's messages: one large message delivered 256 bytes at a time.
 *
 * Baseline: a faithful TypeScript port of the original Python codec's algorithm (the buffer is
 * re-concatenated on every read and both loops scan from its start: quadratic), run on a 300 KB
 * message, where the original took 12.7 s in Python. wirekit runs the same input, then a 10 MiB
 * message: pure decode, and end to end over a Unix socket (256-byte reads through `onread`, and
 * the full driver with Node's normal read size).
 */
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FrameReader, encodeToBytes, percentDollar } from '../src/codecs/index.js';
import { DelimitedServer, connect, messageCodec } from '../src/protocols/delimited/node.js';
import { bestOf, chunked, type BenchContext, type Reporter } from './harness.js';

export const name = 'delimited';

const READ = 256;

/** The original algorithm, ported line by line (see the UDS codec's `Codec._add`). */
class OriginalCodec {
  private foundStart = -1;
  private buffer = new Uint8Array(0);

  add(bites: Uint8Array): string | null {
    // self.buffer += bites (bytes are immutable in Python: a new buffer every time)
    const grown = new Uint8Array(this.buffer.length + bites.length);
    grown.set(this.buffer, 0);
    grown.set(bites, this.buffer.length);
    this.buffer = grown;
    const buf = this.buffer;
    if (this.foundStart < 0) {
      for (let i = 0; i < buf.length; i++) {
        if (buf[i] === 37) {
          this.foundStart = i;
          break;
        }
      }
    }
    if (this.foundStart > -1) {
      for (let i = 0; i < buf.length; i++) {
        if (i > this.foundStart + 1 && buf[i] === 36) {
          const start = this.foundStart + 1;
          const message = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(Buffer.from(buf.subarray(start, i)).toString('latin1'), 'base64'));
          this.buffer = buf.slice(i + 1);
          this.foundStart = -1;
          return message;
        }
      }
    }
    return null;
  }
}

function message(size: number): { text: string; wire: Uint8Array } {
  const text = 'wirekit %$ '.repeat(Math.ceil(size / 11)).slice(0, size);
  return { text, wire: encodeToBytes(percentDollar(), text) };
}

function decodeOriginal(chunks: Uint8Array[]): string | null {
  const c = new OriginalCodec();
  for (const ch of chunks) {
    const m = c.add(ch);
    if (m !== null) return m;
  }
  return null;
}

function decodeWirekit(chunks: Uint8Array[]): string | undefined {
  const r = new FrameReader(messageCodec({ maxMessageLength: 64 * 1024 * 1024 }));
  for (const ch of chunks) {
    const got = r.push(ch);
    if (got.length > 0) return got[0];
  }
  return undefined;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`delimited bench: wrong result from ${what}`);
}

/** Sends `wire` to a socket and decodes it with 256-byte reads (net `onread` with a 256-byte buffer). */
async function endToEnd256(dir: string, wire: Uint8Array, expectLength: number): Promise<void> {
  const sockPath = path.join(dir, `r256-${Math.random().toString(36).slice(2)}.sock`);
  const srv = net.createServer((s) => {
    s.end(wire);
  });
  await new Promise<void>((r) => srv.listen(sockPath, r));
  try {
    await new Promise<void>((resolve, reject) => {
      const reader = new FrameReader(messageCodec({ maxMessageLength: 64 * 1024 * 1024 }));
      let reads = 0;
      const s = net.connect({
        path: sockPath,
        onread: {
          buffer: Buffer.alloc(READ),
          callback(n: number, buf: Uint8Array): boolean {
            reads++;
            // The read buffer is reused: copy what was read (Buffer#slice would be a view).
            const got = reader.push(new Uint8Array(buf.subarray(0, n)));
            if (got.length > 0) {
              if (got[0]!.length !== expectLength) reject(new Error('wrong message'));
              else if (reads < wire.length / READ) reject(new Error(`only ${reads} reads`));
              else resolve();
              s.destroy();
            }
            return true;
          },
        },
      } as net.NetConnectOpts);
      s.on('error', reject);
    });
  } finally {
    srv.close();
  }
}

/** The full driver: wirekit client sends, wirekit server receives (Node's normal read size). */
async function endToEndDriver(server: DelimitedServer, text: string): Promise<number> {
  const [sc, cc] = await Promise.all([server.accept({ timeout: 10_000, maxMessageLength: 64 * 1024 * 1024 }), connect(server.path, { timeout: 10_000 })]);
  const t0 = performance.now();
  const sent = cc.send(text);
  const got = await sc.receive({ timeout: 30_000 });
  const ms = performance.now() - t0;
  await sent;
  check(got.length === text.length, 'driver');
  cc.close();
  sc.close();
  return ms;
}

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const smallSize = ctx.quick ? 100_000 : 300_000;
  const bigSize = ctx.quick ? 1024 * 1024 : 10 * 1024 * 1024;
  const small = message(smallSize);
  const smallChunks = chunked(small.wire, READ);
  const w1 = `%$ ${Math.round(smallSize / 1000)} KB message, ${READ}-byte reads`;
  const orig = await bestOf(ctx.quick ? 1 : 2, () => check(decodeOriginal(smallChunks) === small.text, 'original port'));
  reporter.add({ workload: w1, impl: 'original algorithm (TS port)', value: orig, unit: 'ms', higherIsBetter: false, baseline: true, note: 'Python original: 12.7 s for 300 KB' });
  const wk1 = await bestOf(5, () => check(decodeWirekit(smallChunks) === small.text, 'wirekit'));
  reporter.add({ workload: w1, impl: 'wirekit messageCodec', value: wk1, unit: 'ms', higherIsBetter: false });

  const big = message(bigSize);
  const bigChunks = chunked(big.wire, READ);
  const w2 = `%$ ${(bigSize / 2 ** 20).toFixed(0)} MiB message, ${READ}-byte reads`;
  const wk2 = await bestOf(3, () => check(decodeWirekit(bigChunks) === big.text, 'wirekit big'));
  reporter.add({ workload: w2, impl: 'wirekit messageCodec, decode only', value: wk2, unit: 'ms', higherIsBetter: false, note: `${bigChunks.length} reads` });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wk-bench-delim-'));
  try {
    const e2e = await bestOf(3, () => endToEnd256(dir, big.wire, big.text.length));
    reporter.add({ workload: w2, impl: 'wirekit over a Unix socket, 256-byte reads', value: e2e, unit: 'ms', higherIsBetter: false, note: 'net onread, 256-byte buffer' });
    const server = await DelimitedServer.listen(path.join(dir, 'drv.sock'));
    try {
      await endToEndDriver(server, big.text);
      let best = Infinity;
      for (let i = 0; i < 3; i++) best = Math.min(best, await endToEndDriver(server, big.text));
      reporter.add({ workload: `%$ ${(bigSize / 2 ** 20).toFixed(0)} MiB message, end to end`, impl: 'wirekit connect/accept send+receive', value: best, unit: 'ms', higherIsBetter: false, note: 'Node default read size; includes encoding' });
    } finally {
      await server.close();
    }
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

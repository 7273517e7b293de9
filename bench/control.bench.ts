/**
 * Control protocol calls over a Unix socket, wirekit vs vscode-jsonrpc on the same socket type,
 * in the same process and run: one call at a time, and N calls in flight at once.
 * Client and server live in this process (both sides' costs are counted).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as rpc from 'vscode-jsonrpc/node';
import { ControlClient, ControlServer } from '../src/protocols/control/node.js';
import type { BenchContext, Reporter } from './harness.js';

export const name = 'control';

interface Impl {
  call(v: number): Promise<unknown>;
  close(): Promise<void>;
}

async function wirekitImpl(sock: string): Promise<Impl> {
  const server = new ControlServer({ version: '1.0.0' });
  server.command('echo', (opts: unknown) => opts);
  const l = await server.listen({ path: sock });
  const client = await ControlClient.connect(sock);
  return {
    call: (v) => client.call('echo', { v }),
    async close() {
      client.close();
      await l.close();
      await server.close();
    },
  };
}

async function jsonrpcImpl(sock: string): Promise<Impl> {
  const sockets: net.Socket[] = [];
  const srv = net.createServer((s) => {
    sockets.push(s);
    const conn = rpc.createMessageConnection(new rpc.SocketMessageReader(s), new rpc.SocketMessageWriter(s));
    conn.onRequest('echo', (p: unknown) => p);
    conn.listen();
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  const s = net.connect(sock);
  await new Promise<void>((r) => s.once('connect', () => r()));
  const conn = rpc.createMessageConnection(new rpc.SocketMessageReader(s), new rpc.SocketMessageWriter(s));
  conn.listen();
  return {
    call: (v) => conn.sendRequest('echo', { v }),
    async close() {
      conn.dispose();
      s.destroy();
      for (const x of sockets) x.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

async function sequential(impl: Impl, n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await impl.call(i);
  return n / ((performance.now() - t0) / 1000);
}

async function inFlight(impl: Impl, n: number): Promise<number> {
  const t0 = performance.now();
  const calls: Promise<unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) calls[i] = impl.call(i);
  await Promise.all(calls);
  return n / ((performance.now() - t0) / 1000);
}

export async function run(reporter: Reporter, ctx: BenchContext): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wk-bench-ctl-'));
  const seqN = ctx.quick ? 5_000 : 20_000;
  const flightN = ctx.quick ? 20_000 : 100_000;
  const rounds = ctx.quick ? 1 : 3;
  try {
    const impls: Array<[string, (p: string) => Promise<Impl>, boolean]> = [
      ['vscode-jsonrpc', jsonrpcImpl, true],
      ['wirekit', wirekitImpl, false],
    ];
    for (const [label, make, baseline] of impls) {
      const impl = await make(path.join(dir, `${label}.sock`));
      try {
        await sequential(impl, 1000); // warm-up
        let best = 0;
        for (let r = 0; r < rounds; r++) {
          (globalThis as { gc?: () => void }).gc?.();
          best = Math.max(best, await sequential(impl, seqN));
        }
        reporter.add({ workload: 'control calls, Unix socket, one at a time', impl: label, value: best, unit: 'calls/s', higherIsBetter: true, baseline });
        best = 0;
        for (let r = 0; r < rounds; r++) {
          (globalThis as { gc?: () => void }).gc?.();
          best = Math.max(best, await inFlight(impl, flightN));
        }
        reporter.add({
          workload: `control calls, Unix socket, ${flightN.toLocaleString('en-US')} in flight`,
          impl: label,
          value: best,
          unit: 'calls/s',
          higherIsBetter: true,
          baseline,
        });
      } finally {
        await impl.close();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

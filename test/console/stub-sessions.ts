/**
 * A stand-in for the hub's session endpoints (tty, exec, file) in the formats the console speaks,
 * used by the browser tests only while src/hub/http-sessions.ts is not on this branch: each one
 * routes through the hub to the agent with AgentClient, as the CLI does. Not product code.
 */
import { createReadStream, mkdtempSync, createWriteStream, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { WebSocket } from 'ws';
import { AgentClient } from '../../src/agent/client.js';
import { handOff } from '../../src/channels/hand-off.js';
import type { HubHttpApi } from '../../src/hub/http-api.js';
import { ok } from '../../src/hub/http-api.js';
import type { Principal } from '../../src/hub/allowlist.js';

function clientFor(api: HubHttpApi, user: Principal, id: string): AgentClient {
  return new AgentClient({
    address: { kind: 'tcp', host: 'hub', port: 1, tls: false },
    label: `${id} via hub`,
    dial: async () => {
      const s = await api.hub.openSession(user, id);
      s.stream.once('close', s.release);
      return handOff(s.stream, s.leftover);
    },
  });
}

/** Output to a WebSocket with backpressure: the source pauses while the socket's buffer is large. */
function pump(ws: WebSocket, src: NodeJS.ReadableStream & { pause(): void; resume(): void }, prefix?: number): void {
  src.on('data', (d: Buffer) => {
    ws.send(prefix === undefined ? d : Buffer.concat([Buffer.of(prefix), d]), { binary: true }, () => {
      if (ws.bufferedAmount < 64 * 1024) src.resume();
    });
    if (ws.bufferedAmount > 256 * 1024) src.pause();
  });
}

const ending = (ws: WebSocket, p: Promise<{ code: number | null; signal: string | null }>) =>
  p.then(
    (st) => {
      ws.send(JSON.stringify({ type: 'exit', code: st.code, signal: st.signal }));
      ws.close(1000);
    },
    (err: Error & { code?: string }) => {
      ws.send(JSON.stringify({ type: 'error', code: err.code ?? 'WK_ERROR', message: err.message }));
      ws.close(1011);
    },
  );

export function addStubSessions(api: HubHttpApi): void {
  api.websocket(/^\/api\/agents\/([^/]+)\/tty$/, async (ctx) => {
    const agent = ctx.agent();
    const n = (k: string, d: number) => Math.min(500, Math.max(1, Number(ctx.url.searchParams.get(k)) || d));
    const term = await clientFor(api, ctx.user, agent.id).terminal({ cols: n('cols', 80), rows: n('rows', 24) });
    const ws = await ctx.accept();
    pump(ws, term.output);
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return term.write(data);
      const m = JSON.parse(String(data)) as { type?: string; cols?: number; rows?: number };
      if (m.type === 'resize' && m.cols && m.rows) term.resize(m.cols, m.rows);
    });
    ws.on('close', () => term.close());
    void ending(ws, term.exit);
  });
  api.websocket(/^\/api\/agents\/([^/]+)\/exec$/, async (ctx) => {
    const agent = ctx.agent();
    const argv = JSON.parse(ctx.url.searchParams.get('argv') ?? '[]') as string[];
    const cwd = ctx.url.searchParams.get('cwd') || undefined;
    const ex = await clientFor(api, ctx.user, agent.id).exec(argv, cwd ? { cwd } : {});
    const ws = await ctx.accept();
    pump(ws, ex.stdout, 1);
    pump(ws, ex.stderr, 2);
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) ex.stdin.write(data);
      else if ((JSON.parse(String(data)) as { type?: string }).type === 'stdinClose') ex.stdin.end();
    });
    ws.on('close', () => ex.close());
    void ending(ws, ex.exit);
  });
  api.route('POST', /^\/api\/agents\/([^/]+)\/file$/, async ({ req, res, url, user, agent }) => {
    const a = agent(user());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-stub-up-'));
    try {
      const tmp = path.join(dir, 'body');
      await pipeline(req, createWriteStream(tmp));
      ok(res, await clientFor(api, user(), a.id).upload(tmp, url.searchParams.get('dest') ?? ''));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  api.route('GET', /^\/api\/agents\/([^/]+)\/file$/, async ({ res, url, user, agent }) => {
    const a = agent(user());
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-stub-down-'));
    const remote = url.searchParams.get('filename') ?? '';
    const tmp = path.join(dir, 'body');
    const r = await clientFor(api, user(), a.id).download(remote, tmp);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': statSync(tmp).size,
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(path.basename(remote))}`,
      'x-checksum-sha256': r.sha256,
    });
    await pipeline(createReadStream(tmp), res);
    rmSync(dir, { recursive: true, force: true });
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import {
  FRAMES_MEDIA_TYPE,
  FrameHttpClient,
  FrameHttpServer,
  encodeFrames,
  parseFrameNotation,
  type CommandHandler,
} from '../../../src/protocols/frames/node.js';

const td = new TextDecoder();
const te = new TextEncoder();

const handler: CommandHandler = async (cmd) => {
  if (cmd.name === 'echo') return cmd.args.value ?? '';
  if (cmd.name === 'fail') throw new Error('nope');
  if (cmd.name === 'sha256') {
    const h = createHash('sha256');
    let n = 0;
    for await (const c of cmd.stream ?? [cmd.data ?? new Uint8Array(0)]) {
      h.update(c);
      n += c.length;
    }
    return `${n} ${h.digest('hex')}`;
  }
  if (cmd.name === 'big') return new Uint8Array(70000).fill(1);
  throw new Error('unknown');
};

async function withHttp(
  fn: (base: string) => Promise<void>,
  opts: { streamData?: boolean; maxBodySize?: number; maxCommandsPerRequest?: number; maxBufferedOutput?: number } = {},
): Promise<void> {
  const server = new FrameHttpServer(handler, opts);
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    await server.close();
  }
}

function raw(base: string, init: { method?: string; path?: string; type?: string; body?: Uint8Array; headers?: Record<string, string> }): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(base + (init.path ?? '/frames'), { method: init.method ?? 'POST', headers: { 'content-type': init.type ?? FRAMES_MEDIA_TYPE, ...init.headers } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode!, type: String(res.headers['content-type']), text: Buffer.concat(parts).toString() });
      });
    });
    req.on('error', reject);
    if (init.body && !init.headers?.['content-length']) req.end(init.body);
    else if (!init.headers?.['content-length']) req.end();
    else req.flushHeaders();
  });
}

test('http: single calls and a batch of commands in one exchange', async () => {
  await withHttp(async (base) => {
    const client = new FrameHttpClient(`${base}/frames`);
    assert.equal(td.decode(await client.call('echo', { value: 'hi' }, { timeout: 5000 })), 'hi');
    await assert.rejects(client.call('fail'), { code: 'WK_COMMAND_FAILED', kind: 'application' });
    const results = await client.batch([{ name: 'echo', args: { value: 'a' } }, { name: 'fail' }, { name: 'big' }, { name: 'sha256', data: te.encode('abc') }]);
    assert.deepEqual(results[0], { ok: true, body: te.encode('a') });
    assert.equal(results[1]!.ok, false);
    assert.equal(results[2]!.ok && results[2]!.body.length, 70000);
    assert.equal(results[3]!.ok && td.decode(results[3]!.body), '3 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

test('http: 10 MiB of data streamed in the request body', async () => {
  const total = 10 * 1024 * 1024;
  const chunk = new Uint8Array(50000).map((_, i) => i & 0xff);
  const h = createHash('sha256');
  const parts: Uint8Array[] = [];
  for (let n = 0; n < total; n += chunk.length) {
    const c = chunk.subarray(0, Math.min(chunk.length, total - n));
    parts.push(c);
    h.update(c);
  }
  await withHttp(
    async (base) => {
      const client = new FrameHttpClient(`${base}/frames`);
      async function* source() {
        yield* parts;
      }
      const r = await client.call('sha256', {}, { data: source(), timeout: 20000 });
      assert.equal(td.decode(r), `${total} ${h.digest('hex')}`);
    },
    { streamData: true, maxBodySize: 32 * 1024 * 1024 },
  );
});

test('http: errors get a status and a readable message', async () => {
  await withHttp(async (base) => {
    const proto = await raw(base, { body: encodeFrames([parseFrameNotation('command-argument eoa x')]) });
    assert.equal(proto.status, 400);
    assert.match(proto.text, /protocol error: expected command frame; got 2/);
    const trunc = await raw(base, { body: encodeFrames([parseFrameNotation('command-name eos echo')]).subarray(0, 6) });
    assert.equal(trunc.status, 400);
    assert.match(trunc.text, /malformed request body: input ended inside/);
    assert.equal((await raw(base, { method: 'GET' })).status, 405);
    assert.equal((await raw(base, { path: '/other' })).status, 404);
    const t = await raw(base, { type: 'text/plain', body: te.encode('x') });
    assert.equal(t.status, 415);
    assert.match(t.text, /must be application\/mercurial-exp-framing-0001/);
    const client = new FrameHttpClient(`${base}/nowhere`);
    await assert.rejects(client.call('echo'), { code: 'WK_HTTP_STATUS', status: 404 });
    // An empty body is an empty exchange.
    const empty = await raw(base, { body: new Uint8Array(0) });
    assert.equal(empty.status, 200);
    assert.equal(empty.text, '');
  });
});

test('http: a body over the limit is refused before it is read in full', async () => {
  await withHttp(
    async (base) => {
      // Declared too large: refused from the header, nothing of the body sent.
      const declared = await raw(base, { headers: { 'content-length': String(10 * 1024 * 1024) } });
      assert.equal(declared.status, 413);
      assert.match(declared.text, /over the limit of 1000 bytes/);
      // Chunked: refused once the limit is passed, while the client is still sending. The server
      // answers 413 and closes; the client, still writing, may see the close (EPIPE, ECONNRESET)
      // before it has parsed the answer. Either way the body was refused long before its end.
      let sent = 0;
      const outcome = await new Promise<number | string>((resolve, reject) => {
        const req = http.request(`${base}/frames`, { method: 'POST', headers: { 'content-type': FRAMES_MEDIA_TYPE } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
          clearInterval(timer);
          req.destroy();
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          clearInterval(timer);
          if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve(err.code);
          else reject(err);
        });
        const frame = encodeFrames([parseFrameNotation('command-name have-data x'), parseFrameNotation('command-data continuation ' + 'a'.repeat(200))]);
        req.write(frame);
        const more = encodeFrames([parseFrameNotation('command-data continuation ' + 'a'.repeat(200))]);
        const timer = setInterval(() => {
          if (sent++ > 1000) {
            clearInterval(timer);
            req.end();
          } else req.write(more);
        }, 1);
      });
      assert.ok(outcome === 413 || outcome === 'EPIPE' || outcome === 'ECONNRESET', `got ${outcome}`);
      assert.ok(sent < 1000, `the server read the whole body (${sent} chunks sent) before refusing it`);
    },
    { maxBodySize: 1000 },
  );
});

test('http: commands per request and the output held for a request are bounded', async () => {
  const tiny = (n: number) => encodeFrames(Array.from({ length: n }, () => parseFrameNotation('command-name eos echo')));
  await withHttp(
    async (base) => {
      const ok = await raw(base, { body: tiny(50) });
      assert.equal(ok.status, 200);
      const many = await raw(base, { body: tiny(51) });
      assert.equal(many.status, 413);
      assert.match(many.text, /more than 50 commands/);
    },
    { maxCommandsPerRequest: 50 },
  );
  // Responses wait for the end of the body (half duplex): what they hold meanwhile has a cap.
  const big = encodeFrames([
    ...Array.from({ length: 20 }, () => [parseFrameNotation('command-name have-args echo'), parseFrameNotation(`command-argument eoa \\x05\\x00\\xe8\\x03value${'v'.repeat(1000)}`)]).flat(),
  ]);
  await withHttp(
    async (base) => {
      const r = await raw(base, { body: big });
      assert.equal(r.status, 413);
      assert.match(r.text, /responses held for this request are over the limit of 5000 bytes/);
    },
    { maxBufferedOutput: 5000 },
  );
  // The defaults: a 16 MiB body of tiny commands (about 4 million) is refused after 10 000.
  await withHttp(async (base) => {
    const body = tiny(10_001);
    const r = await raw(base, { body });
    assert.equal(r.status, 413);
    assert.match(r.text, /more than 10000 commands/);
  });
});

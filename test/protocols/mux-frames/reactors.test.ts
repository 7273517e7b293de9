import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClientReactor, ServerReactor, parseFrame, parseFrameNotation, type MuxFrame } from '../../../src/protocols/mux-frames/index.js';
import { nodeEncodings } from '../../../src/protocols/mux-frames/node.js';

const te = new TextEncoder();

describe('reactors, wirekit to wirekit', () => {
  function pump(frames: Uint8Array[], to: { onFrame(f: MuxFrame): any }): any[] {
    return frames.map((b) => to.onFrame(parseFrame(b)));
  }

  it('interleaved streamed responses, progress and text output, zlib', () => {
    const client = new ClientReactor({ hasMultipleSend: true, contentEncodings: ['zlib', 'identity'] });
    const a = client.callCommand('a').request;
    const b = client.callCommand('b', { n: 1 }, { data: te.encode('payload') }).request;
    const server = new ServerReactor(nodeEncodings);
    const runs = pump((client.flushCommands() as { frames: Uint8Array[] }).frames, server).filter((x) => x.type === 'runCommand');
    assert.deepEqual(runs.map((r) => [r.requestId, r.command, r.data && Buffer.from(r.data).toString()]), [
      [a.requestId, 'a', null],
      [b.requestId, 'b', 'payload'],
    ]);
    const s = server.makeOutputStream();
    const wa = server.startResponse(s, a.requestId);
    const wb = server.startResponse(s, b.requestId);
    const frames: Uint8Array[] = [];
    const take = (x: any): void => {
      if (x.type === 'sendFrames') frames.push(...x.frames);
    };
    take(wa.write('a1'));
    take(wb.progress('files', 1, 2, { label: 'files' }));
    take(wb.write('b1'));
    take(wa.text([{ msg: 'note %s\n', args: ['here'] }]));
    take(wb.end());
    take(wa.write('a2'));
    take(wa.end());
    const events = pump(frames, client);
    assert.ok(events.every((e) => e.type !== 'error'), JSON.stringify(events));
    const objs = (r: { requestId: number }): string[] =>
      events.filter((e) => e.type === 'responseData' && e.request.requestId === r.requestId).flatMap((e) => e.objects.map((o: Uint8Array) => Buffer.from(o).toString()));
    assert.deepEqual(objs(a), ['a1', 'a2']);
    assert.deepEqual(objs(b), ['b1']);
    assert.deepEqual(
      events.filter((e) => e.type === 'progress').map((e) => [e.topic, e.pos, e.total, e.label]),
      [['files', 1, 2, 'files']],
    );
    assert.deepEqual(events.filter((e) => e.type === 'textOutput').map((e) => e.text), ['note here\n']);
    assert.equal(client.activeRequests.length, 0);
  });

  it('client request ids are odd, skip ids in use and wrap around', () => {
    const c = new ClientReactor({ hasMultipleSend: true });
    const ids = [0, 1, 2].map(() => c.callCommand('x').request.requestId);
    assert.deepEqual(ids, [1, 3, 5]);
  });

  it('server limits: concurrent partial requests and request size', () => {
    const server = new ServerReactor({ maxReceivingRequests: 2, maxRequestSize: 10 });
    assert.equal(server.onFrame(parseFrameNotation('1 1 stream-begin command-request new|more x')).type, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('3 1 0 command-request new|more x')).type, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('5 1 0 command-request new|more x')).type, 'error');
    const s2 = new ServerReactor({ maxRequestSize: 10 });
    s2.onFrame(parseFrameNotation('1 1 stream-begin command-request new|more 12345678'));
    const r = s2.onFrame(parseFrameNotation('1 1 0 command-request continuation|more 12345678'));
    assert.equal(r.type, 'error');
    assert.equal(s2.state, 'errored');
  });

  it('server limits: a total cap on what the requests being received buffer, 64 MiB by default', () => {
    // Each request stays under its own limits; together they pass the total.
    const server = new ServerReactor({ maxBufferedSize: 20, maxDataSize: 10 });
    assert.equal(server.onFrame(parseFrameNotation('1 1 stream-begin command-request new|have-data x')).type, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('3 1 0 command-request new|have-data y')).type, 'wantFrame');
    assert.equal(server.onFrame(parseFrameNotation('1 1 0 command-data continuation 123456789')).type, 'wantFrame');
    const over = server.onFrame(parseFrameNotation('3 1 0 command-data continuation 1234567890'));
    assert.equal(over.type, 'error');
    assert.match((over as { message: string }).message, /over the limit of 20 bytes/);
    // What a request held is released when it is dispatched: the next fits again.
    const s2 = new ServerReactor({ maxBufferedSize: 30, maxDataSize: 20 });
    s2.onFrame(parseFrameNotation('1 1 stream-begin command-request new|have-data cbor:{b"name": b"a"}'));
    s2.onFrame(parseFrameNotation('1 1 0 command-data continuation 1234567890'));
    assert.equal(s2.onFrame(parseFrameNotation('1 1 0 command-data eos 1234567890')).type, 'runCommand');
    s2.onFrame(parseFrameNotation('3 1 0 command-request new|have-data cbor:{b"name": b"b"}'));
    s2.onFrame(parseFrameNotation('3 1 0 command-data continuation 1234567890'));
    assert.equal(s2.onFrame(parseFrameNotation('3 1 0 command-data eos 1234567890')).type, 'runCommand');
    // The default: 64 requests of 2 MiB each are refused before they hold 128 MiB.
    const s3 = new ServerReactor();
    const chunk = 'x'.repeat(32768);
    let first: string | undefined;
    let buffered = 0;
    outer: for (let id = 1; id < 128; id += 2) {
      s3.onFrame(parseFrameNotation(`${id} 1 ${id === 1 ? 'stream-begin' : '0'} command-request new|have-data x`));
      for (let i = 0; i < 64; i++) {
        const a = s3.onFrame(parseFrameNotation(`${id} 1 0 command-data continuation ${chunk}`));
        if (a.type === 'error') {
          first = a.message;
          break outer;
        }
        buffered += chunk.length;
      }
    }
    assert.match(first ?? '', /over the limit of 67108864 bytes/);
    assert.ok(buffered <= 64 * 1024 * 1024);
  });
});

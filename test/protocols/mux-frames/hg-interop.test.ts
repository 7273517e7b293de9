/**
 * wirekit's reactors against Mercurial's own wireprotoframing module (the cases of Mercurial's
 * test-wireproto-framing.py, test-wireproto-serverreactor.py and test-wireproto-clientreactor.py).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClientReactor,
  ServerReactor,
  encodeCbor,
  frameFromNotation,
  parseFrame,
  type ClientAction,
  type CborValue,
  type ServerAction,
} from '../../../src/protocols/mux-frames/index.js';
import { nodeEncodings } from '../../../src/protocols/mux-frames/node.js';
import { HgPeer, hex, hgUnavailable, unhex } from './hg-peer.js';

const why = hgUnavailable();

function objsHex(objs: CborValue[]): string {
  return Buffer.concat(objs.map((o) => encodeCbor(o))).toString('hex');
}

function feedClient(c: ClientReactor, frames: string[]): ClientAction[] {
  return frames.map((h) => c.onFrame(parseFrame(unhex(h))));
}

function feedServer(s: ServerReactor, frames: string[]): ServerAction[] {
  return frames.map((h) => s.onFrame(parseFrame(unhex(h))));
}

function sent(a: { type: string; frames?: Uint8Array[] }): string[] {
  assert.equal(a.type, 'sendFrames');
  return a.frames!.map(hex);
}

/** Compares a wirekit server action with Mercurial's (name, message / command, args, data). */
function sameServerAction(ours: ServerAction, theirs: Record<string, any>): void {
  const names: Record<string, string> = { wantFrame: 'wantframe', runCommand: 'runcommand', error: 'error', noop: 'noop', sendFrames: 'sendframes' };
  assert.equal(names[ours.type], theirs.action, `ours ${JSON.stringify(ours)} vs ${JSON.stringify(theirs)}`);
  if (ours.type === 'runCommand') {
    assert.equal(ours.requestId, theirs.requestid);
    assert.equal(hex(Buffer.from(ours.command)), theirs.command.hex);
    assert.equal(hex(encodeCbor(ours.args)), theirs.args);
    assert.equal(ours.data === null ? null : hex(ours.data), theirs.data === null ? null : theirs.data.hex);
  }
  if (ours.type === 'error') {
    const msg = Buffer.from(theirs.message.hex, 'hex').toString();
    // Decoder diagnostics differ; the sentence before them must match.
    if (msg.startsWith('error decoding CBOR')) assert.equal(ours.message.split(':')[0], msg.split(':')[0]);
    else assert.equal(ours.message, msg);
  }
}

// In CI (.ci/run installs mercurial) a missing peer is a failure, not a skip.
describe('mux-frames against Mercurial', { skip: process.env.CI ? false : why }, () => {
  let hg: HgPeer;
  before(() => {
    hg = new HgPeer();
  });
  after(async () => {
    await hg.close();
  });

  describe('frames and notation (test-wireproto-framing)', () => {
    const cases = [
      '1 1 0 command-request 0 ',
      '1 2 0 command-request 0 ',
      '1 1 stream-begin command-request new|more foo',
      '5 3 stream-begin|stream-end command-data eos \\x01\\x02\\n',
      "1 1 stream-begin command-request new cbor:{b'name': b'command', b'args': {b'foo': b'bar', b'a': [1, -2, True, None, b'x']}}",
      "1 1 0 sender-protocol-settings eos cbor:{b'contentencodings': [b'zlib', b'identity']}",
      "3 2 stream-begin stream-settings eos cbor:b'zlib'",
      '65535 255 7 command-response 15 raw',
    ];
    for (const s of cases) {
      it(`builds ${JSON.stringify(s)} byte for byte`, async () => {
        const theirs = await hg.call({ op: 'human', s });
        assert.equal(hex(frameFromNotation(s)), theirs.frame);
      });
    }

    it('builds command-request and command-data frames as Mercurial does', async () => {
      const args = { foo: 'bar', big: new Uint8Array(70000).fill(0x61) };
      const data = new Uint8Array(32768 * 2).fill(7);
      const theirs = await hg.call({ op: 'command_frames', requestid: 1, name: 'mycommand', args: hex(encodeCbor(args)), data: hex(data) });
      const c = new ClientReactor({ bufferSends: false });
      const { action } = c.callCommand('mycommand', args, { data });
      assert.deepEqual(sent(action), theirs.frames);
      // 70 KB of args: 3 command-request frames; 64 KiB of data: 2 full frames + an empty eos frame.
      assert.equal(theirs.frames.length, 6);
    });
  });

  describe('server reactor (test-wireproto-serverreactor)', () => {
    async function both(frames: string[], deferoutput = false): Promise<{ ours: ServerAction[]; theirs: Record<string, any>[]; server: ServerReactor }> {
      await hg.call({ op: 'new_server', deferoutput });
      const theirs = (await hg.call({ op: 'server_frames', frames })).results as Record<string, any>[];
      const server = new ServerReactor({ ...nodeEncodings, deferOutput: deferoutput });
      const ours = feedServer(server, frames);
      assert.equal(ours.length, theirs.length);
      ours.forEach((a, i) => sameServerAction(a, theirs[i]!));
      return { ours, theirs, server };
    }
    const n = (s: string): string => hex(frameFromNotation(s));

    it('accepts frames built by wirekit: single command, no args', async () => {
      const c = new ClientReactor({ bufferSends: false });
      const { ours } = await both(sent(c.callCommand('mycommand').action));
      assert.equal(ours[0]!.type, 'runCommand');
    });

    it('accepts frames built by wirekit: arguments, several request frames, several data frames', async () => {
      const c = new ClientReactor({ hasMultipleSend: true });
      c.callCommand('one', { key: 'value', n: 42, list: [1, 2, 3], flag: true });
      c.callCommand('two', { huge: new Uint8Array(100_000).fill(1) });
      c.callCommand('three', { a: 'b' }, { data: new Uint8Array(80_000).fill(9) });
      const frames = sent(c.flushCommands());
      const { ours } = await both(frames);
      const runs = ours.filter((a) => a.type === 'runCommand');
      assert.deepEqual(runs.map((r) => (r.type === 'runCommand' ? r.command : '')), ['one', 'two', 'three']);
    });

    it('interleaved requests', async () => {
      await both([
        n("1 1 stream-begin command-request new|more \\xa2Dname"),
        n("3 1 0 command-request new|more \\xa2Dname"),
        n("3 1 0 command-request continuation Gcommand3Dargs\\xa1CfooCbar"),
        n("1 1 0 command-request continuation Gcommand1Dargs\\xa1CbarCfoo"),
      ]);
    });

    it('interleaved requests with data', async () => {
      await both([
        n("1 1 stream-begin command-request new|have-data cbor:{b'name': b'command1'}"),
        n("3 1 0 command-request new|have-data cbor:{b'name': b'command3'}"),
        n('3 1 0 command-data continuation data1'),
        n('1 1 0 command-data eos data2'),
        n('3 1 0 command-data eos data3'),
      ]);
    });

    const errorCases: Record<string, string[]> = {
      'even stream id': ["1 2 stream-begin command-request new cbor:{b'name': b'x'}"],
      'no stream-begin': ["1 1 0 command-request new cbor:{b'name': b'x'}"],
      'unexpected first frame type': ['1 1 stream-begin command-data eos x'],
      'new and continuation': ["1 1 stream-begin command-request new|continuation cbor:{b'name': b'x'}"],
      'neither new nor continuation': ["1 1 stream-begin command-request 0 cbor:{b'name': b'x'}"],
      'continuation while idle': ["1 1 stream-begin command-request new cbor:{b'name': b'x'}", "3 1 0 command-request continuation cbor:{b'name': b'x'}"],
      'duplicate request id while receiving': ["1 1 stream-begin command-request new|more \\xa1Dname", "1 1 0 command-request new cbor:{b'name': b'x'}"],
      'request id still active (reused before response)': ["1 1 stream-begin command-request new cbor:{b'name': b'x'}", "1 1 0 command-request new cbor:{b'name': b'x'}"],
      'data for a request not expecting data': ["1 1 stream-begin command-request new|more \\xa1Dname", '1 1 0 command-data eos x'],
      'frame for a request not receiving': ["1 1 stream-begin command-request new|more \\xa1Dname", '3 1 0 command-data eos x'],
      'frame for an active request': ["1 1 stream-begin command-request new cbor:{b'name': b'x'}", "3 1 0 command-request new|more \\xa1Dname", '1 1 0 command-data eos x'],
      'expect-data mismatch': ["1 1 stream-begin command-request new|more|have-data \\xa1Dname", "1 1 0 command-request continuation Ax"],
      'request frames after the last one': ["1 1 stream-begin command-request new|have-data cbor:{b'name': b'x'}", "1 1 0 command-request continuation|have-data Ax"],
      'command data without flags': ["1 1 stream-begin command-request new|have-data cbor:{b'name': b'x'}", '1 1 0 command-data 0 x'],
      'missing name': ["1 1 stream-begin command-request new cbor:{b'args': {}}"],
      'unexpected frame type while receiving': ["1 1 stream-begin command-request new|more \\xa1Dname", '1 1 0 text-output 0 x'],
      'already errored': ['1 2 stream-begin command-request new x', "1 1 stream-begin command-request new cbor:{b'name': b'x'}"],
      'settings with both flags': ["1 1 stream-begin sender-protocol-settings continuation|eos cbor:{}"],
      'settings with no flags': ["1 1 stream-begin sender-protocol-settings 0 cbor:{}"],
      'settings after a command': ["1 1 stream-begin command-request new cbor:{b'name': b'x'}", "1 1 0 sender-protocol-settings eos cbor:{}"],
      'settings followed by another type': ["1 1 stream-begin sender-protocol-settings continuation \\xa1", "1 1 0 command-request new cbor:{b'name': b'x'}"],
      'settings with no CBOR': ['1 1 stream-begin sender-protocol-settings eos '],
      'settings with two CBOR values': ["1 1 stream-begin sender-protocol-settings eos \\xa0\\xa0"],
      'bad CBOR in settings': ["1 1 stream-begin sender-protocol-settings eos \\x7f"],
    };
    for (const [name, lines] of Object.entries(errorCases)) {
      it(`rejects as Mercurial does: ${name}`, async () => {
        const { ours } = await both(lines.map(n));
        assert.equal(ours.at(-1)!.type, 'error');
      });
    }

    it('protocol settings over two frames, then a command', async () => {
      await both([
        n("1 1 stream-begin sender-protocol-settings continuation \\xa1Pcontentencodings"),
        n("1 1 0 sender-protocol-settings eos \\x82Dzlib" + 'Hidentity'),
        n("1 1 0 command-request new cbor:{b'name': b'x'}"),
      ]);
    });

    it('responses are byte-identical to Mercurial (identity stream, small and multi-frame)', async () => {
      const frames = [n("1 1 stream-begin command-request new cbor:{b'name': b'a'}"), n("3 1 0 command-request new cbor:{b'name': b'b'}")];
      const { server } = await both(frames);
      const { stream } = await hg.call({ op: 'server_stream' });
      const ourStream = server.makeOutputStream();
      const small: CborValue[] = [{ key: 'value', list: [1, 2, null, false] }, 'second'];
      const large: CborValue[] = [new Uint8Array(50_000).fill(1), { x: new Uint8Array(20_000).fill(2) }, [new Uint8Array(40_000).fill(3), 5]];
      for (const [rid, objs] of [
        [1, small],
        [3, large],
      ] as const) {
        const theirs = await hg.call({ op: 'server_respond', stream, requestid: rid, objs: objsHex(objs) });
        const ours = server.respond(ourStream, rid, objs);
        assert.deepEqual(sent(ours), theirs.frames);
      }
    });

    it('command errors and server errors are byte-identical', async () => {
      const frames = [n("1 1 stream-begin command-request new cbor:{b'name': b'a'}"), n("3 1 0 command-request new cbor:{b'name': b'b'}")];
      const { server } = await both(frames);
      const { stream } = await hg.call({ op: 'server_stream' });
      const s = server.makeOutputStream();
      assert.deepEqual(sent(server.commandError(s, 1, 'bad argument')), (await hg.call({ op: 'server_commanderror', stream, requestid: 1, message: 'bad argument' })).frames);
      assert.deepEqual(sent(server.serverError(s, 3, 'it broke')), (await hg.call({ op: 'server_servererror', stream, requestid: 3, message: 'it broke' })).frames);
    });

    it('a request id can be reused once its response has ended', async () => {
      const server = new ServerReactor(nodeEncodings);
      const first = server.onFrame(parseFrame(frameFromNotation("1 1 stream-begin command-request new cbor:{b'name': b'a'}")));
      assert.equal(first.type, 'runCommand');
      assert.equal(server.onFrame(parseFrame(frameFromNotation("1 1 0 command-request new cbor:{b'name': b'a'}"))).type, 'error');
      const again = new ServerReactor(nodeEncodings);
      again.onFrame(parseFrame(frameFromNotation("1 1 stream-begin command-request new cbor:{b'name': b'a'}")));
      again.respond(again.makeOutputStream(), 1, ['done']);
      assert.equal(again.onFrame(parseFrame(frameFromNotation("1 1 0 command-request new cbor:{b'name': b'a'}"))).type, 'runCommand');
    });

    it('deferred output: nothing until end of input, then the same frames as Mercurial', async () => {
      const frames = [n("1 1 stream-begin command-request new cbor:{b'name': b'a'}"), n("3 1 0 command-request new cbor:{b'name': b'b'}")];
      const { server } = await both(frames, true);
      const { stream } = await hg.call({ op: 'server_stream' });
      const s = server.makeOutputStream();
      for (const rid of [1, 3]) {
        const theirs = await hg.call({ op: 'server_respond', stream, requestid: rid, objs: objsHex([`response ${rid}`]) });
        assert.equal(theirs.action, 'noop');
        assert.equal(server.respond(s, rid, [`response ${rid}`]).type, 'noop');
      }
      const theirs = await hg.call({ op: 'server_eof' });
      assert.deepEqual(sent(server.onInputEof()), theirs.frames);
    });
  });

  describe('client reactor (test-wireproto-clientreactor)', () => {
    async function roundTrip(opts: { contentencodings?: string[] }, calls: { name: string; args?: Record<string, CborValue> }[], respond: (rid: number, i: number) => CborValue[]) {
      const client = new ClientReactor({ hasMultipleSend: true, contentEncodings: opts.contentencodings });
      const reqs = calls.map((c) => client.callCommand(c.name, c.args).request);
      const frames = sent(client.flushCommands());
      await hg.call({ op: 'new_server' });
      const results = (await hg.call({ op: 'server_frames', frames })).results as Record<string, any>[];
      const runs = results.filter((r) => r.action === 'runcommand');
      assert.equal(runs.length, calls.length);
      const { stream } = await hg.call({ op: 'server_stream' });
      const out: string[] = [];
      for (let i = 0; i < reqs.length; i++) {
        const r = await hg.call({ op: 'server_respond', stream, requestid: reqs[i]!.requestId, objs: objsHex(respond(reqs[i]!.requestId, i)) });
        out.push(...r.frames);
      }
      return { client, reqs, actions: feedClient(client, out), frames: out };
    }

    function collect(actions: ClientAction[], requestId: number): CborValue[] {
      const objs: CborValue[] = [];
      for (const a of actions) if (a.type === 'responseData' && a.request.requestId === requestId) objs.push(...a.objects);
      return objs;
    }

    it('single command, response decoded', async () => {
      const { actions, reqs } = await roundTrip({}, [{ name: 'heads' }], () => [[new Uint8Array([1, 2, 3])], { extra: 1 }]);
      assert.ok(actions.every((a) => a.type !== 'error' && a.type !== 'protocolError'), JSON.stringify(actions));
      assert.deepEqual(collect(actions, reqs[0]!.requestId), [[new Uint8Array([1, 2, 3])], { extra: 1 }]);
      assert.deepEqual(reqs[0]!.status, { status: new TextEncoder().encode('ok') });
      assert.equal(reqs[0]!.state, 'received');
      assert.equal(actions.at(-1)!.type === 'responseData' ? (actions.at(-1) as any).eos : false, true);
    });

    it('several commands, multi-frame responses', async () => {
      const big = (i: number): CborValue[] => [new Uint8Array(70_000 + i).fill(i), { n: i }];
      const { actions, reqs } = await roundTrip({}, [{ name: 'a' }, { name: 'b', args: { x: 'y' } }, { name: 'c' }], (_rid, i) => big(i));
      reqs.forEach((r, i) => assert.deepEqual(collect(actions, r.requestId), big(i)));
    });

    it('zlib-encoded stream (client advertises zlib)', async () => {
      const payload = (i: number): CborValue[] => [new Uint8Array(100_000).fill(0x41 + i), { i, text: new TextEncoder().encode('compress me '.repeat(1000)) }];
      const { actions, reqs, frames } = await roundTrip({ contentencodings: ['zlib', 'identity'] }, [{ name: 'a' }, { name: 'b' }], (_rid, i) => payload(i));
      assert.ok(frames.some((f) => (parseFrame(unhex(f)).streamFlags & 0x04) !== 0), 'some frames are encoded');
      const total = frames.reduce((n, f) => n + f.length / 2, 0);
      assert.ok(total < 20_000, `compressed ${total} bytes`);
      reqs.forEach((r, i) => assert.deepEqual(collect(actions, r.requestId), payload(i)));
    });

    it('command error response', async () => {
      const client = new ClientReactor({ bufferSends: false });
      const { request, action } = client.callCommand('x');
      await hg.call({ op: 'new_server' });
      await hg.call({ op: 'server_frames', frames: sent(action) });
      const { stream } = await hg.call({ op: 'server_stream' });
      const r = await hg.call({ op: 'server_commanderror', stream, requestid: request.requestId, message: 'no such thing' });
      const [a] = feedClient(client, r.frames);
      assert.equal(a!.type, 'responseData');
      assert.equal((request.status as any).status.length, 5); // b'error'
      assert.equal(request.state, 'received');
    });

    it('server error frame becomes an error event for the request', async () => {
      const client = new ClientReactor({ bufferSends: false });
      const { request, action } = client.callCommand('x');
      await hg.call({ op: 'new_server' });
      await hg.call({ op: 'server_frames', frames: sent(action) });
      const { stream } = await hg.call({ op: 'server_stream' });
      const r = await hg.call({ op: 'server_servererror', stream, requestid: request.requestId, message: 'exploded' });
      const [a] = feedClient(client, r.frames);
      assert.equal(a!.type, 'error');
      if (a!.type === 'error') {
        assert.equal(a.request, request);
        assert.equal(a.errorType, 'server');
        assert.equal(a.message, 'exploded');
      }
    });

    it('text-output frames built by Mercurial are surfaced as events', async () => {
      const client = new ClientReactor({ bufferSends: false });
      const { request } = client.callCommand('x');
      const r = await hg.call({ op: 'text_frame', requestid: request.requestId, atoms: [{ msg: 'hello %s (100%%)\n', args: ['world'], labels: ['ui.note'] }] });
      const [a] = feedClient(client, r.frames);
      assert.equal(a!.type, 'textOutput');
      if (a!.type === 'textOutput') {
        assert.equal(a.text, 'hello world (100%)\n');
        assert.deepEqual(a.atoms[0]!.labels, ['ui.note']);
      }
    });

    it('frames for unknown requests and odd stream ids are rejected, as by Mercurial', async () => {
      const cases = ["1 1 stream-begin command-response eos cbor:{b'status': b'ok'}", "1 2 0 command-response eos cbor:{b'status': b'ok'}", "7 2 stream-begin command-response eos cbor:{b'status': b'ok'}"];
      for (const s of cases) {
        await hg.call({ op: 'new_client', buffersends: false });
        await hg.call({ op: 'client_call', name: 'x' });
        const theirs = (await hg.call({ op: 'client_frames', frames: [hex(frameFromNotation(s))] })).results[0];
        const ours = new ClientReactor({ bufferSends: false });
        ours.callCommand('x');
        const a = ours.onFrame(parseFrame(frameFromNotation(s)));
        assert.equal(theirs.action, 'error');
        // Mercurial's client reports a protocol error as action 'error'; wirekit's as 'protocolError'.
        assert.equal(a.type, 'protocolError');
        if (a.type === 'protocolError') assert.equal(a.message, Buffer.from(theirs.message.hex, 'hex').toString());
      }
    });

    it('frames wirekit sends are decoded identically by Mercurial’s client (wirekit server -> hg client)', async () => {
      await hg.call({ op: 'new_client', buffersends: false, contentencodings: ['zlib', 'identity'] });
      const call = await hg.call({ op: 'client_call', name: 'heads', args: hex(encodeCbor({ a: 'b' })) });
      const server = new ServerReactor(nodeEncodings);
      const results = feedServer(server, call.frames);
      const run = results.at(-1)!;
      assert.equal(run.type, 'runCommand');
      const s = server.makeOutputStream();
      assert.equal(s.encoding, 'zlib');
      const objs: CborValue[] = [{ many: 'x'.repeat(50_000) }, [1, 2, 3]];
      const frames = sent(server.respond(s, call.requestid, objs));
      const theirs = (await hg.call({ op: 'client_frames', frames })).results as Record<string, any>[];
      const data = Buffer.concat(theirs.filter((t) => t.action === 'responsedata').map((t) => Buffer.from(t.data.hex, 'hex')));
      assert.equal(theirs.at(-1)!.eos, 2);
      assert.equal(data.toString('hex'), objsHex([{ status: 'ok' }, ...objs]));
    });
  });
});

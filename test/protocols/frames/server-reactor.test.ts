import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FRAME_TYPE_BYTES_RESPONSE,
  ServerReactor,
  argumentFrames,
  argumentKey,
  argumentNameBytes,
  commandFrames,
  formatFrameNotation,
  parseFrameNotation,
  type Frame,
  type ServerAction,
} from '../../../src/protocols/frames/index.js';

const te = new TextEncoder();
const b = (s: string) => te.encode(s);

function feed(reactor: ServerReactor, frames: Iterable<Frame | string>): ServerAction[] {
  const out: ServerAction[] = [];
  for (const f of frames) out.push(reactor.onFrame(typeof f === 'string' ? parseFrameNotation(f) : f));
  return out;
}

function assertError(action: ServerAction | undefined, message: string): void {
  assert.equal(action?.type, 'error');
  if (action?.type === 'error') {
    assert.match(action.message, new RegExp('^' + message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(action.error.code, 'WK_FRAME_PROTOCOL');
  }
}

function run(action: ServerAction | undefined) {
  assert.equal(action?.type, 'runCommand');
  if (action?.type !== 'runCommand') throw new Error('unreachable');
  return action.command;
}

test('simple command without arguments (eos on the name frame)', () => {
  const r = new ServerReactor();
  const [a] = feed(r, ['command-name eos mycommand']);
  const c = run(a);
  assert.equal(c.name, 'mycommand');
  assert.deepEqual({ ...c.args }, {});
  assert.equal(c.data, null);
  assert.equal(r.state, 'idle');
});

test('argument frames: one argument, then several', () => {
  const r = new ServerReactor();
  const actions = feed(r, ['command-name have-args mycommand', 'command-argument eoa \\x03\\x00\\x03\\x00keyval']);
  assert.equal(actions[0]!.type, 'wantFrame');
  const c = run(actions[1]);
  assert.deepEqual({ ...c.args }, { key: b('val') });

  const r2 = new ServerReactor();
  const a2 = feed(r2, [
    'command-name have-args mycommand',
    'command-argument 0 \\x04\\x00\\x03\\x00key1val',
    'command-argument 0 \\x04\\x00\\x03\\x00foo1bar',
    'command-argument eoa \\x04\\x00\\x03\\x00key2val',
  ]);
  assert.deepEqual(a2.slice(0, 3).map((x) => x.type), ['wantFrame', 'wantFrame', 'wantFrame']);
  assert.deepEqual({ ...run(a2[3]).args }, { key1: b('val'), foo1: b('bar'), key2: b('val') });
});

test('command with data: buffered by default, exact multiple of the frame size', () => {
  const r = new ServerReactor();
  const actions = feed(r, ['command-name have-data mycommand', 'command-data continuation data1', 'command-data continuation data2', 'command-data eos data3']);
  assert.deepEqual(actions.slice(0, 3).map((x) => x.type), ['wantFrame', 'wantFrame', 'wantFrame']);
  assert.deepEqual(run(actions[3]).data, b('data1data2data3'));

  const data = new Uint8Array(65536).map((_, i) => i & 0xff);
  const frames = [...commandFrames('mycommand', { key: 'val' }, data)];
  assert.equal(frames.length, 1 + 1 + 3);
  assert.equal(frames.at(-1)!.payload.length, 0);
  const r2 = new ServerReactor();
  const a2 = feed(r2, frames);
  const c = run(a2.at(-1));
  assert.deepEqual(c.data, data);
  assert.deepEqual({ ...c.args }, { key: b('val') });
});

test('unexpected frame type in idle state', () => {
  const r = new ServerReactor();
  assertError(feed(r, ['command-argument 0 foo'])[0], 'expected command frame; got 2');
  assertError(feed(r, ['command-name eos x'])[0], 'server already errored');
  assert.equal(r.state, 'errored');
  for (const t of ['command-data eos x', 'bytes-response eos x', 'error-response protocol x', '9 0 x']) {
    assertError(feed(new ServerReactor(), [t])[0], 'expected command frame; got');
  }
});

test('missing flags on the command frame', () => {
  assertError(feed(new ServerReactor(), ['command-name 0 foo'])[0], 'missing frame flags on command frame');
  assertError(feed(new ServerReactor(), ['command-name eos|have-args foo'])[0], 'command frame has eos together');
});

test('partial argument name and partial argument value', () => {
  const a = feed(new ServerReactor(), ['command-name have-args command', 'command-argument 0 \\x04\\x00\\x00\\x00abc']);
  assertError(a[1], 'malformed argument frame: partial argument name');
  const v = feed(new ServerReactor(), ['command-name have-args command', 'command-argument 0 \\x03\\x00\\x04\\x00fooba']);
  assertError(v[1], 'malformed argument frame: partial argument value');
  const h = feed(new ServerReactor(), ['command-name have-args command', 'command-argument 0 \\x03']);
  assertError(h[1], 'malformed argument frame: 1 bytes is shorter');
  const long = feed(new ServerReactor(), ['command-name have-args command', 'command-argument eoa \\x03\\x00\\x01\\x00foobar']);
  assertError(long[1], 'malformed argument frame: argument value longer');
});

test('unexpected argument frame (expecting data) and unexpected data frame (expecting args)', () => {
  const a = feed(new ServerReactor(), ['command-name have-data command', 'command-argument 0 ignored']);
  assertError(a[1], 'expected command data frame; got 2');
  const d = feed(new ServerReactor(), ['command-name have-args command', 'command-data 0 ignored']);
  assertError(d[1], 'expected command argument frame; got 3');
});

test('missing data frame: a new command while data is expected', () => {
  const a = feed(new ServerReactor(), ['command-name have-args|have-data command1', 'command-argument eoa \\x03\\x00\\x03\\x00keyval', 'command-name eos command2']);
  assert.equal(a[1]!.type, 'wantFrame');
  assertError(a[2], 'expected command data frame; got 1');
});

test('data frame without flags, and with both flags', () => {
  assertError(feed(new ServerReactor(), ['command-name have-data command', 'command-data 0 data'])[1], 'command data frame without flags');
  assertError(feed(new ServerReactor(), ['command-name have-data command', 'command-data continuation|eos data'])[1], 'command data frame flagged both');
});

test('next command on the same stream is accepted (after args, after data, after eos)', () => {
  const r = new ServerReactor();
  const a = feed(r, [
    'command-name have-args c1',
    'command-argument eoa \\x01\\x00\\x01\\x00ab',
    'command-name eos c2',
    'command-name have-data c3',
    'command-data eos xyz',
    'command-name eos c4',
  ]);
  assert.deepEqual(
    a.filter((x) => x.type === 'runCommand').map((x) => (x.type === 'runCommand' ? x.command.name : '')),
    ['c1', 'c2', 'c3', 'c4'],
  );
});

test('argument continuation: values larger than a frame', () => {
  const value = new Uint8Array(40000).map((_, i) => (i * 7) & 0xff);
  const frames = [...commandFrames('cmd', { big: value, small: 'x' }, undefined, { maxFrameSize: 16384 })];
  const kinds = frames.map((f) => formatFrameNotation({ ...f, payload: new Uint8Array(0) }));
  assert.deepEqual(kinds, [
    'command-name have-args ',
    'command-argument continuation ',
    'command-argument continuation ',
    'command-argument 0 ',
    'command-argument eoa ',
  ]);
  const c = run(feed(new ServerReactor(), frames).at(-1));
  assert.deepEqual(c.args.big, value);
  assert.deepEqual(c.args.small, b('x'));
  // Last argument split: eoa goes on its last frame.
  const f2 = argumentFrames(b('k'), value, true, 16384);
  assert.equal(f2.at(-1)!.flags, 2);
  assert.ok(f2.slice(0, -1).every((f) => f.flags === 1));
});

test('argument continuation errors', () => {
  const over = feed(new ServerReactor(), ['command-name have-args c', 'command-argument continuation \\x01\\x00\\x03\\x00kab', 'command-argument 0 cd']);
  assertError(over[2], 'malformed argument frame: argument value longer');
  const short = feed(new ServerReactor(), ['command-name have-args c', 'command-argument continuation \\x01\\x00\\x03\\x00kab', 'command-argument eoa ']);
  assertError(short[2], 'malformed argument frame: partial argument value');
  const other = feed(new ServerReactor(), ['command-name have-args c', 'command-argument continuation \\x01\\x00\\x03\\x00kab', 'command-data eos c']);
  assertError(other[2], 'expected command argument continuation frame; got 3');
  const ok = feed(new ServerReactor(), ['command-name have-args c', 'command-argument continuation \\x01\\x00\\x03\\x00kab', 'command-argument eoa c']);
  assert.deepEqual(run(ok[2]).args.k, b('abc'));
});

test('duplicate arguments and limits', () => {
  assertError(feed(new ServerReactor(), ['command-name have-args c', 'command-argument 0 \\x01\\x00\\x00\\x00k', 'command-argument eoa \\x01\\x00\\x00\\x00k'])[2], 'duplicate argument');
  const r = new ServerReactor({ maxDataSize: 4 });
  assertError(feed(r, ['command-name have-data c', 'command-data continuation abc', 'command-data eos de'])[2], 'command data exceeds the limit of 4 bytes');
  assertError(feed(new ServerReactor({ maxArgumentsSize: 3 }), ['command-name have-args c', 'command-argument eoa \\x01\\x00\\x03\\x00kabc'])[1], 'arguments exceed');
  assertError(feed(new ServerReactor({ maxArguments: 1 }), ['command-name have-args c', 'command-argument 0 \\x01\\x00\\x00\\x00k', 'command-argument eoa \\x01\\x00\\x00\\x00j'])[2], 'too many arguments');
  // __proto__ is an ordinary argument name.
  const p = run(feed(new ServerReactor(), ['command-name have-args c', 'command-argument eoa \\x09\\x00\\x01\\x00__proto__x'])[1]);
  assert.deepEqual(p.args['__proto__'], b('x'));
});

test('argument names are keyed by their bytes: distinct non-UTF-8 names stay distinct', () => {
  // What the seed's createcommandframes sends for args {b'\xff': b'1', b'\xfe': b'2'} (sorted by bytes).
  const names = [Uint8Array.of(0xff), Uint8Array.of(0xfe), Uint8Array.of(0x61, 0xc3), b('é'), Uint8Array.of(0xf0, 0x90, 0x82, 0x80, 0xff)];
  const sent = new Map(names.map((n, i) => [n, b(String(i))]));
  const r = new ServerReactor();
  const actions = feed(r, commandFrames('c', sent));
  const c = run(actions.at(-1));
  assert.deepEqual(Object.keys(c.args).sort(), ['\udcff', '\udcfe', 'a\udcc3', 'é', '\u{10080}\udcff'].sort());
  for (const [i, n] of names.entries()) {
    const key = argumentKey(n);
    assert.deepEqual(c.args[key], b(String(i)));
    assert.deepEqual(argumentNameBytes(key), n);
  }
  // A handler can pass the args on as they came: the frames are the same bytes.
  assert.deepEqual(commandFrames('c', c.args), commandFrames('c', sent));
  // The same bytes twice are still a duplicate.
  assertError(feed(new ServerReactor(), ['command-name have-args c', 'command-argument 0 \\x01\\x00\\x00\\x00\\xff', 'command-argument eoa \\x01\\x00\\x00\\x00\\xff'])[2], 'duplicate argument');
});

test('streaming data: the command starts before its data, data arrives in commanddata actions', () => {
  const r = new ServerReactor({ streamData: true });
  const a = feed(r, ['command-name have-args|have-data c', 'command-argument eoa \\x01\\x00\\x01\\x00kv', 'command-data continuation ab', 'command-data eos c', 'command-name have-data d', 'command-data eos x']);
  const c = run(a[1]);
  assert.equal(c.streaming, true);
  assert.equal(c.data, null);
  assert.deepEqual(a[2], { type: 'commandData', chunk: b('ab'), eos: false });
  assert.deepEqual(a[3], { type: 'commandData', chunk: b('c'), eos: true });
  assert.equal(run(a[4]).streaming, true);
  assert.deepEqual(a[5], { type: 'commandData', chunk: b('x'), eos: true });
  // Commands without data are not streaming.
  assert.equal(run(r.onFrame(parseFrameNotation('command-name eos e'))).streaming, false);
});

test('bytes response: single frame, split at the maximum frame size, exact multiple', () => {
  const r = new ServerReactor();
  const one = r.onBytesResponseReady(b('response'));
  assert.deepEqual(one, { type: 'sendFrames', frames: [parseFrameNotation('bytes-response eos response')] });
  const big = new Uint8Array(32768 * 2 + 10).fill(0x61);
  const a = r.onBytesResponseReady(big);
  assert.equal(a.type, 'sendFrames');
  if (a.type === 'sendFrames') {
    assert.deepEqual(a.frames.map((f) => [f.type, f.flags, f.payload.length]), [
      [FRAME_TYPE_BYTES_RESPONSE, 1, 32768],
      [FRAME_TYPE_BYTES_RESPONSE, 1, 32768],
      [FRAME_TYPE_BYTES_RESPONSE, 2, 10],
    ]);
  }
  const exact = r.onBytesResponseReady(new Uint8Array(32768 * 2));
  if (exact.type === 'sendFrames') assert.deepEqual(exact.frames.map((f) => f.flags), [1, 2]);
  else assert.fail('expected sendframes');
  const small = new ServerReactor({ maxFrameSize: 4 }).onBytesResponseReady(b('abcdefghij'));
  if (small.type === 'sendFrames') assert.deepEqual(small.frames.map(formatFrameNotation), ['bytes-response continuation abcd', 'bytes-response continuation efgh', 'bytes-response eos ij']);
  else assert.fail('expected sendframes');
});

test('application error', () => {
  const r = new ServerReactor();
  assert.deepEqual(r.onApplicationError('some message'), { type: 'sendFrames', frames: [parseFrameNotation('error-response application some message')] });
});

test('deferred output: frames held until input EOF, then released in order', () => {
  const r = new ServerReactor({ deferOutput: true });
  run(r.onFrame(parseFrameNotation('command-name eos c1')));
  assert.deepEqual(r.onBytesResponseReady(b('r1')), { type: 'noop' });
  assert.deepEqual(r.onApplicationError('bad'), { type: 'noop' });
  assert.deepEqual(r.onBytesResponseChunk(b('r3a'), false), { type: 'noop' });
  assert.deepEqual(r.onBytesResponseChunk(b('r3b'), true), { type: 'noop' });
  assert.equal(r.bufferedFrameCount, 4);
  const a = r.onInputEof();
  assert.equal(a.type, 'sendFrames');
  if (a.type === 'sendFrames') {
    assert.deepEqual(a.frames.map(formatFrameNotation), ['bytes-response eos r1', 'error-response application bad', 'bytes-response continuation r3a', 'bytes-response eos r3b']);
  }
  // After end of input, output flows at once.
  assert.equal(r.onBytesResponseReady(b('late')).type, 'sendFrames');
  assert.deepEqual(new ServerReactor({ deferOutput: true }).onInputEof(), { type: 'noop' });
  assert.deepEqual(new ServerReactor().onInputEof(), { type: 'noop' });
});

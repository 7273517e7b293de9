import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { FrameReader } from '../../src/codecs/codec.js';
import { FrameTooLargeError, MalformedFrameError, TruncatedFrameError } from '../../src/codecs/errors.js';
import {
  sessionCodec,
  FrameType,
  encodeResize,
  decodeResize,
  encodeExit,
  decodeExit,
  type SessionFrame,
} from '../../src/agent/session-frames.js';
import { TransferReceiver, DIGEST_SIZE } from '../../src/agent/transfer.js';
import { Keepalive } from '../../src/agent/keepalive.js';
import { confinePath, resolveLexical } from '../../src/agent/paths.js';
import { tokensEqual } from '../../src/agent/auth.js';
import { parseAddress } from '../../src/agent/address.js';
import { ChecksumError, PathEscapeError } from '../../src/agent/errors.js';
import { splitAt } from '../helpers/chunks.js';

const types = Object.values(FrameType);
const frameArb = fc.record({
  type: fc.constantFrom(...types.filter((t) => t !== FrameType.RESIZE && t !== FrameType.PING && t !== FrameType.PONG)),
  payload: fc.uint8Array({ maxLength: 300 }),
});

test('session frames: same frames for every chunking, whole, byte by byte and with trailing bytes', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const codec = sessionCodec();
      const bytes = Buffer.concat(frames.map((f) => codec.encode(f as SessionFrame)));
      const reader = new FrameReader(sessionCodec());
      const got: SessionFrame[] = [];
      for (const c of splitAt(bytes, cuts)) got.push(...reader.push(c));
      got.push(...reader.end());
      assert.deepEqual(got.map((f) => [f.type, Buffer.from(f.payload).toString('hex')]), frames.map((f) => [f.type, Buffer.from(f.payload).toString('hex')]));
    }),
  );
  const codec = sessionCodec();
  const bytes = Buffer.concat([codec.encode({ type: FrameType.DATA, payload: Buffer.from('ab') }), codec.encode({ type: FrameType.EOF, payload: new Uint8Array(0) })]);
  const r = new FrameReader(sessionCodec());
  const got: SessionFrame[] = [];
  for (const b of bytes) got.push(...r.push(Uint8Array.of(b)));
  assert.deepEqual(got.map((f) => f.type), [FrameType.DATA, FrameType.EOF]);
  const r2 = new FrameReader(sessionCodec());
  assert.equal(r2.push(Buffer.concat([bytes, Buffer.from([1, 0, 0])])).length, 2);
  assert.throws(() => r2.end(), TruncatedFrameError);
});

test('session frames: terminal data with byte 0x80 never reads as a resize', () => {
  const codec = sessionCodec();
  const text = Buffer.from('Ѐ€ \x80 ü', 'utf8'); // D0 80 ... contains 0x80 bytes
  assert.ok(text.includes(0x80));
  const bytes = Buffer.concat([
    codec.encode({ type: FrameType.DATA, payload: text }),
    codec.encode({ type: FrameType.RESIZE, payload: encodeResize(132, 43) }),
    codec.encode({ type: FrameType.DATA, payload: Buffer.from([0x80, 0x80]) }),
  ]);
  const got = new FrameReader(sessionCodec()).push(bytes);
  assert.deepEqual(got.map((f) => f.type), [FrameType.DATA, FrameType.RESIZE, FrameType.DATA]);
  assert.deepEqual(Buffer.from(got[0]!.payload), text);
  assert.deepEqual(decodeResize(got[1]!.payload), { cols: 132, rows: 43 });
});

test('session frames: hostile input gets typed errors, limit checked from the header', () => {
  const huge = Buffer.from([FrameType.DATA, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => new FrameReader(sessionCodec({ maxFrameLength: 1024 })).push(huge), FrameTooLargeError);
  assert.throws(() => new FrameReader(sessionCodec()).push(Buffer.from([0x7f, 0, 0, 0, 0])), MalformedFrameError);
  assert.throws(() => new FrameReader(sessionCodec()).push(Buffer.from([FrameType.RESIZE, 0, 0, 0, 1, 9])), MalformedFrameError);
  // an unknown type is consumed; the next frame decodes
  const r = new FrameReader(sessionCodec());
  assert.throws(() => r.push(Buffer.from([0x7f, 0, 0, 0, 1, 0, FrameType.EOF, 0, 0, 0, 0])), MalformedFrameError);
  assert.deepEqual(r.push(new Uint8Array(0)).map((f) => f.type), [FrameType.EOF]);
  assert.deepEqual(decodeExit(encodeExit({ code: null, signal: 'SIGKILL' })), { code: null, signal: 'SIGKILL' });
  assert.throws(() => decodeExit(Buffer.from('{"code":"x","signal":null}')), MalformedFrameError);
  assert.throws(() => decodeExit(Buffer.from('nope')), MalformedFrameError);
});

test('transfer receiver: any chunking, digest checked, trailing bytes handed back', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.nat(), { maxLength: 8 }), fc.uint8Array({ maxLength: 5 }), (data, cuts, extra) => {
      const digest = createHash('sha256').update(data).digest();
      const stream = Buffer.concat([data, digest, extra]);
      const rx = new TransferReceiver(data.length, createHash('sha256'));
      const parts: Uint8Array[] = [];
      const extras: Uint8Array[] = [];
      for (const c of splitAt(stream, cuts)) {
        const s = rx.push(c);
        if (s.data) parts.push(s.data);
        if (s.extra) extras.push(s.extra);
      }
      rx.end();
      assert.ok(rx.done);
      assert.deepEqual(Buffer.concat(parts), Buffer.from(data));
      assert.deepEqual(Buffer.concat(extras), Buffer.from(extra));
      assert.equal(rx.sha256, digest.toString('hex'));
    }),
  );
});

test('transfer receiver: wrong digest and truncation are errors', () => {
  const data = Buffer.from('hello');
  const bad = Buffer.concat([data, Buffer.alloc(DIGEST_SIZE)]);
  assert.throws(() => new TransferReceiver(5, createHash('sha256')).push(bad), ChecksumError);
  const rx = new TransferReceiver(5, createHash('sha256'));
  rx.push(Buffer.from('hel'));
  assert.throws(() => rx.end(), TruncatedFrameError);
  const rx2 = new TransferReceiver(5, createHash('sha256'));
  rx2.push(Buffer.concat([data, Buffer.alloc(10)]));
  assert.throws(() => rx2.end(), TruncatedFrameError);
});

test('keepalive: pings at the interval, dead after the timeout, alive when anything arrives', () => {
  const k = new Keepalive(0, { intervalMs: 10, timeoutMs: 35 });
  assert.equal(k.poll(5), undefined);
  assert.equal(k.poll(10), 'ping');
  assert.equal(k.poll(15), undefined);
  assert.equal(k.nextDelay(15), 5);
  k.received(18);
  assert.equal(k.poll(20), 'ping');
  assert.equal(k.poll(52), 'ping');
  assert.equal(k.poll(53), 'dead');
});

test('paths: .. and symlinks cannot leave the root', async () => {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'wk-paths-')));
  try {
    const root = path.join(base, 'root');
    mkdirSync(path.join(root, 'sub'), { recursive: true });
    writeFileSync(path.join(base, 'secret'), 'x');
    symlinkSync(base, path.join(root, 'out'));
    symlinkSync(path.join(root, 'sub'), path.join(root, 'in'));
    assert.equal(resolveLexical('/r', '/a/../b'), '/r/b');
    assert.throws(() => resolveLexical('/r', '../x'), PathEscapeError);
    assert.throws(() => resolveLexical('/r', 'a/../../x'), PathEscapeError);
    assert.equal(await confinePath('sub/new.txt', { root }), path.join(root, 'sub', 'new.txt'));
    assert.equal(await confinePath('/in/new/deeper.txt', { root }), path.join(root, 'sub', 'new', 'deeper.txt'));
    await assert.rejects(confinePath('../secret', { root }), PathEscapeError);
    await assert.rejects(confinePath('out/secret', { root }), PathEscapeError);
    await assert.rejects(confinePath('out/newfile', { root }), PathEscapeError);
    await assert.rejects(confinePath('a\0b', { root }), PathEscapeError);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('tokens compare in constant time; addresses parse', () => {
  assert.equal(tokensEqual('abc', 'abc'), true);
  assert.equal(tokensEqual('abc', 'abd'), false);
  assert.equal(tokensEqual('', 'abc'), false);
  assert.deepEqual(parseAddress('tcp://127.0.0.1:7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000, tls: false });
  assert.deepEqual(parseAddress('tls://[::1]:7000'), { kind: 'tcp', host: '::1', port: 7000, tls: true });
  assert.deepEqual(parseAddress('unix:/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
  assert.throws(() => parseAddress('http://x:1'));
});

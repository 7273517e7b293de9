import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { concatBytes } from '../../../src/bytes/text.js';
import { ConnectionClosedError, TimeoutError } from '../../../src/errors.js';
import {
  encodePacketHeader,
  PacketErrorStateError,
  UnknownPacketIdError,
  UnknownPacketTypeError,
} from '../../../src/protocols/packets/node.js';
import { pair } from './pair.js';

async function flushed(): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
}

test('send, receive, ack; the window allows exactly N in flight, the next send waits for a ready', async () => {
  const p = await pair({ window: 2 });
  try {
    assert.equal(await p.a.send('init', ['robot', 1]), 1);
    assert.equal(await p.a.send('make', { n: 2 }), 2);
    let thirdDone = false;
    const third = p.a.send('mix', [3]).then((id) => {
      thirdDone = true;
      return id;
    });
    const r1 = await p.b.receive();
    const r2 = await p.b.receive();
    assert.deepEqual([r1!.type, r1!.id, r1!.payload], ['init', 1, ['robot', 1]]);
    assert.deepEqual([r2!.type, r2!.id, r2!.payload], ['make', 2, { n: 2 }]);
    await flushed();
    assert.equal(thirdDone, false);
    assert.deepEqual(p.a.inFlight, [1, 2]);
    await p.b.ack(r2!);
    assert.equal(await third, 3);
    assert.deepEqual(p.a.inFlight, [1, 3]);
    const r3 = await p.b.receive();
    assert.equal(r3!.id, 3);
    await p.b.ack(r1!);
    await p.b.ack(r3!);
    await p.a.drain({ timeout: 5000 });
    assert.deepEqual(p.a.inFlight, []);
  } finally {
    await p.close();
  }
});

test('urgent packets interleaved with acknowledgements are delivered, never lost; they skip the window', async () => {
  const p = await pair({ window: 1 });
  try {
    await p.a.send('make', 1);
    const second = p.a.send('make', 2); // waits for the window
    assert.equal(await p.a.send('loc_req'), 1); // urgent: at once, current id
    const got = await p.b.receive();
    assert.equal(got!.type, 'make');
    const urgentAtB = await p.b.receive();
    assert.deepEqual([urgentAtB!.type, urgentAtB!.id, urgentAtB!.urgent], ['loc_req', 1, true]);
    // b answers with urgent packets around the ready that a's waiting send consumes.
    await p.b.send('loc_resp', [10, 20]);
    await p.b.send('stopped');
    await p.b.ack(got!);
    await p.b.send('save', ['s']);
    assert.equal(await second, 2);
    const seen = [await p.a.receive(), await p.a.receive(), await p.a.receive()].map((x) => [x!.type, x!.payload]);
    assert.deepEqual(seen, [
      ['loc_resp', [10, 20]],
      ['stopped', undefined],
      ['save', ['s']],
    ]);
  } finally {
    await p.close();
  }
});

test('error packet: sends and receives fail with its payload until resetError; the window is cleared', async () => {
  const p = await pair({ window: 2 });
  try {
    await p.a.send('make');
    await p.a.send('make');
    const blocked = p.a.send('make');
    await p.b.send('error', ['disk full']);
    await p.b.send('home');
    await assert.rejects(blocked, (e: unknown) => e instanceof PacketErrorStateError && (e.payload as string[])[0] === 'disk full');
    await assert.rejects(p.a.receive(), PacketErrorStateError);
    await assert.rejects(p.a.send('make'), PacketErrorStateError);
    assert.equal(p.a.inError, true);
    assert.deepEqual(p.a.errorPayload, ['disk full']);
    p.a.resetError();
    assert.deepEqual(p.a.inFlight, []);
    const next = await p.a.receive({ timeout: 5000 });
    assert.equal(next!.type, 'home');
    assert.equal(await p.a.send('make'), 3); // the blocked send never took an id
  } finally {
    await p.close();
  }
});

test('unknown type byte and ready for an unknown id: typed protocol errors, then the stream goes on', async () => {
  const p = await pair();
  try {
    const ackBody = new TextEncoder().encode('[42]');
    p.b.stream.write(concatBytes([encodePacketHeader(0, 0xee, 9), encodePacketHeader(ackBody.length, 0x03, 10), ackBody]));
    await p.b.send('home', 'x');
    await assert.rejects(p.a.receive(), (e: unknown) => e instanceof UnknownPacketTypeError && /0xee/.test(e.message));
    await assert.rejects(p.a.receive(), (e: unknown) => e instanceof UnknownPacketIdError && e.ackedId === 42);
    assert.equal((await p.a.receive())!.payload, 'x');
  } finally {
    await p.close();
  }
});

test('receiveFirst compares the type; keeps or discards the others', async () => {
  const p = await pair({ window: 10 });
  try {
    await p.b.send('init', 1);
    await p.b.send('make', 2);
    await p.b.send('mix', 3);
    await p.b.send('home', 4);
    assert.equal((await p.a.receiveFirst('make'))!.payload, 2);
    assert.equal((await p.a.receiveFirst('home', { others: 'discard' }))!.payload, 4);
    await p.b.send('save', 5);
    assert.equal((await p.a.receive())!.type, 'save'); // init and mix were discarded
    await p.b.send('init', 6);
    await p.b.send('make', 7);
    assert.equal((await p.a.receiveFirst('make'))!.payload, 7);
    assert.equal((await p.a.receive())!.payload, 6); // kept
  } finally {
    await p.close();
  }
});

test('waits: timeout and abort; end of stream gives null to receive and fails window waits', async () => {
  const p = await pair({ window: 1 });
  try {
    await assert.rejects(p.a.receive({ timeout: 20 }), TimeoutError);
    await p.a.send('make');
    await assert.rejects(p.a.send('make', undefined, { timeout: 20 }), TimeoutError);
    const ac = new AbortController();
    const aborted = p.a.send('make', undefined, { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, (e: unknown) => (e as { code: string }).code === 'WK_ABORTED');
    const waiting = p.a.send('make');
    p.b.stream.end();
    await assert.rejects(waiting, ConnectionClosedError);
    assert.equal(await p.a.receive(), null);
  } finally {
    await p.close();
  }
});

test('close drains the window first, then ends the stream', async () => {
  const p = await pair();
  try {
    await p.a.send('make');
    let closed = false;
    const closing = p.a.close({ timeout: 5000 }).then(() => (closed = true));
    const got = await p.b.receive();
    await flushed();
    assert.equal(closed, false);
    await p.b.ack(got!);
    await closing;
    assert.equal(await p.b.receive(), null);
  } finally {
    await p.close();
  }
});

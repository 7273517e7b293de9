/**
 * The hub-to-hub relay stream on its own (no NATS): RelayPort against openRelay over plain TCP and
 * TLS, with a stand-in for the hub that waits for the session. The handshake authenticates both
 * ends with the fleet secret, hands the waiting session the stream with every byte in order, and
 * refuses a wrong secret, an unknown session and hostile lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import fc from 'fast-check';
import { createLogger } from '../../src/agent/log.js';
import { openRelay, RelayPort } from '../../src/hub/fleet-relay.js';
import type { Hub } from '../../src/hub/hub.js';
import { HubNotFoundError } from '../../src/hub/errors.js';
import { macInput, parseRelayLine } from '../../src/hub/relay-messages.js';
import { repoRoot } from '../helpers/paths.js';

const fixtures = path.join(repoRoot(), 'test/fixtures/tls');
const secret = randomBytes(32);

/** What RelayPort uses of a hub: one session `s1` of agent `a1` for user `ann` waits. */
function standIn() {
  const attached: { stream: Duplex; leftover: Uint8Array }[] = [];
  const failed: string[] = [];
  let waiting = true;
  const hub = {
    logger: createLogger('silent'),
    dialTimeoutMs: 5000,
    relayOffer(sid: string, agent: string) {
      if (!waiting || sid !== 's1' || agent !== 'a1') throw new HubNotFoundError(`no session ${sid} waits for agent ${agent}`);
      return 'ann';
    },
    relayAttach(sid: string, agent: string, stream: Duplex, leftover: Uint8Array) {
      if (!waiting || sid !== 's1' || agent !== 'a1') return false;
      waiting = false;
      attached.push({ stream, leftover });
      return true;
    },
    dialFailed(_agent: string, _sid: string, message: string) {
      failed.push(message);
    },
  };
  return { hub: hub as unknown as Hub, attached, failed };
}

/** Reads `n` characters from `s` (without ending it, as breaking out of `for await` would). */
function readN(s: Duplex, n: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    if (n <= 0) return resolve(got);
    const on = (c: Buffer) => {
      got += String(c);
      if (got.length < n) return;
      s.off('data', on);
      s.pause();
      resolve(got);
    };
    s.on('data', on);
    s.once('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
    s.resume();
  });
}

async function listen(useTls: boolean, port: RelayPort): Promise<{ server: net.Server; address: string }> {
  const server = useTls
    ? tls.createServer({ cert: readFileSync(path.join(fixtures, 'cert.pem')), key: readFileSync(path.join(fixtures, 'key.pem')) }, (s) => port.accept(s))
    : net.createServer((s) => port.accept(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

for (const useTls of [false, true]) {
  test(`relay over ${useTls ? 'TLS' : 'TCP'}: both ends authenticated, the waiting session gets the stream, bytes in order both ways`, { timeout: 20_000 }, async () => {
    const s = standIn();
    const { server, address } = await listen(useTls, new RelayPort(s.hub, secret));
    try {
      const r = await openRelay(address, { secret, from: 'h2', sid: 's1', agent: 'a1', tls: useTls, timeoutMs: 5000 });
      assert.equal(r.user, 'ann');
      const extra = r.spliced();
      assert.equal(extra.length, 0);
      r.socket.write('from the agent');
      for (let i = 0; s.attached.length === 0 && i < 1000; i++) await new Promise((res) => setTimeout(res, 5));
      const { stream, leftover } = s.attached[0]!;
      assert.equal(Buffer.from(leftover).toString() + (await readN(stream, 'from the agent'.length - leftover.length)), 'from the agent');
      stream.write('to the agent');
      assert.equal(await readN(r.socket, 'to the agent'.length), 'to the agent');
      r.socket.destroy();
      stream.destroy();
    } finally {
      server.close();
    }
  });
}

test('relay: a wrong fleet secret, an unknown session and a non-hub peer are refused', { timeout: 20_000 }, async () => {
  const s = standIn();
  const { server, address } = await listen(false, new RelayPort(s.hub, secret));
  try {
    await assert.rejects(openRelay(address, { secret: randomBytes(32), from: 'h2', sid: 's1', agent: 'a1', tls: false, timeoutMs: 5000 }), /wrong fleet secret/);
    await assert.rejects(openRelay(address, { secret, from: 'h2', sid: 's9', agent: 'a1', tls: false, timeoutMs: 5000 }), /no session s9 waits/);
    // The relaying side checks the port's MAC too: a port without the secret is no hub of the fleet.
    const other = await listen(false, new RelayPort(standIn().hub, randomBytes(32)));
    await assert.rejects(openRelay(other.address, { secret, from: 'h2', sid: 's1', agent: 'a1', tls: false, timeoutMs: 5000 }), /wrong fleet secret/);
    other.server.close();
    // Garbage instead of the relay line: a refusal line, then the port closes.
    const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sock.end('{"type":"accepted","user":"x","mac":"' + 'A'.repeat(43) + '"}\n');
    let text = '';
    for await (const c of sock) text += String(c);
    assert.match(text, /"type":"challenge"/);
    assert.match(text, /"type":"refused".*expected relay, got accepted/);
    assert.equal(s.attached.length, 0);
  } finally {
    server.close();
  }
});

test('relay: the agent could not dial back to the relaying hub either: the waiting session is told at once', { timeout: 20_000 }, async () => {
  const s = standIn();
  const { server, address } = await listen(false, new RelayPort(s.hub, secret));
  try {
    const r = await openRelay(address, { secret, from: 'h2', sid: 's1', agent: 'a1', tls: false, timeoutMs: 5000 });
    r.failed('no route to the agent');
    for (let i = 0; s.failed.length === 0 && i < 1000; i++) await new Promise((res) => setTimeout(res, 5));
    assert.deepEqual(s.failed, ['no route to the agent']);
    assert.equal(s.attached.length, 0);
  } finally {
    server.close();
  }
});

test('relay lines: hostile values are refused with LinkProtocolError, never thrown otherwise', () => {
  fc.assert(
    fc.property(fc.anything(), (v) => {
      try {
        parseRelayLine(v);
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'WK_PROTOCOL');
      }
    }),
  );
  assert.throws(() => parseRelayLine({ type: 'relay', from: 'bad id!', sid: 's', agent: 'a', nonce: 'A'.repeat(43), mac: 'A'.repeat(43) }), /invalid hub id/);
  assert.throws(() => parseRelayLine({ type: 'challenge', v: 1, nonce: 'short' }), /bad nonce/);
});

test('relay MAC input: fields cannot shift into each other, and the roles differ', () => {
  const base = { serverNonce: 'n1', clientNonce: 'n2', from: 'h2', sid: 'ab', agent: 'c', channel: '' };
  const key = (f: typeof base) => Buffer.from(macInput('client', f)).toString();
  assert.notEqual(key(base), key({ ...base, sid: 'a', agent: 'bc' }));
  assert.notEqual(Buffer.from(macInput('client', base)).toString(), Buffer.from(macInput('server', base)).toString());
});

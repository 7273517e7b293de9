import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { concatBytes } from '../../../src/bytes/text.js';
import { repoRoot } from '../../helpers/paths.js';
import { PEERS, skipWithout } from '../../helpers/peers.js';
import { isTuple, PacketConnection, PacketErrorStateError, pickleSerializer, SEED_FILE_END_MARKER, tuple } from '../../../src/protocols/packets/node.js';

const PY = '/usr/bin/python3';
// The peer lives in the source tree (tests run from dist/ or .build/NAME/).
const peerScript = path.join(repoRoot(), 'test/peers/packets/armchair_peer.py');

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('a Python peer (dill pickles, seed file stream) talks to wirekit over TCP loopback', { skip: skipWithout(PEERS.dill), timeout: 30000 }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'wk-packets-py-'));
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const child = spawn(PY, [peerScript, String(port), dir], { stdio: ['ignore', 'inherit', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  try {
    const [sock] = (await once(server, 'connection')) as [net.Socket];
    server.close();
    const conn = new PacketConnection(sock, { serializer: pickleSerializer(), fileMode: 'compat', window: 2 });
    const w = { timeout: 10000 };

    // 1. Plain data from dill.
    const init = await conn.receive(w);
    assert.equal(init!.type, 'init');
    assert.equal(init!.id, 1);
    const args = init!.payload as unknown[];
    assert.equal(isTuple(args), true);
    assert.deepEqual(args.slice(0, 4), ['py-peer', 3, -(2n ** 70n), [1.5, null, true]]);
    const dict = args[4] as Map<unknown, unknown>;
    assert.ok(dict instanceof Map);
    assert.deepEqual(dict.get('k'), Uint8Array.of(0, 1));
    assert.deepEqual(dict.get(2), [1, 2]);
    assert.deepEqual(args[5], new Set(['s']));
    await conn.ack(init!);

    // 2. Five windowed packets, each acknowledged.
    for (let i = 0; i < 5; i++) {
      const p = await conn.receive(w);
      assert.deepEqual([p!.type, p!.id, p!.payload], ['make', i + 2, [i]]);
      await conn.ack(p!);
    }

    // 3. Three packets to Python; it acknowledges each and echoes them.
    await conn.send('transfer', ['plain', { n: 1 }, Uint8Array.of(9)], w);
    await conn.send('pause', undefined, w);
    await conn.send('mix', [tuple(1, 2), 2n ** 80n, 'é'], w); // waits for a ready: window 2
    const echo = await conn.receive(w);
    assert.equal(echo!.type, 'mix');
    const echoed = (echo!.payload as unknown[])[0] as unknown[][];
    assert.deepEqual(echoed[0], ['transfer', ['plain', { n: 1 }, Uint8Array.of(9)]]);
    assert.deepEqual(echoed[1], ['pause', null]);
    assert.deepEqual(echoed[2], ['mix', [[1, 2], 2n ** 80n, 'é']]);
    await conn.ack(echo!);

    // 4. Urgent request and answer; urgent packets carry the current id.
    const before = conn.session.id;
    assert.equal(await conn.send('loc_req', [21], w), before);
    const resp = await conn.receive(w);
    assert.deepEqual([resp!.type, resp!.urgent, (resp!.payload as unknown[])[0]], ['loc_resp', true, 42]);

    // 5. Files both ways in the seed's raw stream.
    const a = path.join(dir, 'a.txt');
    writeFileSync(a, 'hello from wirekit\n'.repeat(5000));
    const bin = path.join(dir, 'b.bin');
    writeFileSync(bin, concatBytes([Uint8Array.from({ length: 70000 }, (_, i) => i % 251), SEED_FILE_END_MARKER.subarray(0, 30)]));
    const outDir = mkdtempSync(path.join(dir, 'out-'));
    // Python writes into `dir`: send copies from a subfolder so names do not clash.
    const srcDir = mkdtempSync(path.join(dir, 'src-'));
    writeFileSync(path.join(srcDir, 'a.txt'), readFileSync(a));
    writeFileSync(path.join(srcDir, 'b.bin'), readFileSync(bin));
    await conn.sendFiles([path.join(srcDir, 'a.txt'), path.join(srcDir, 'b.bin')], w);
    const report = await conn.receive(w);
    assert.equal(report!.type, 'save');
    assert.deepEqual((report!.payload as unknown[])[0], [
      tuple('a.txt', sha(readFileSync(a)), readFileSync(a).length),
      tuple('b.bin', sha(readFileSync(bin)), readFileSync(bin).length),
    ]);
    const files = await conn.receiveFiles(outDir, w);
    assert.deepEqual(files.map((f) => [f.name, f.size]), [['from_python.bin', 256000]]);
    assert.deepEqual(readFileSync(path.join(outDir, 'from_python.bin')), readFileSync(path.join(dir, 'from_python.bin')));

    // 6. Error packet: error state until reset.
    await assert.rejects(conn.receive(w), (e: unknown) => e instanceof PacketErrorStateError && (e.payload as unknown[])[0] === 'py error');
    await assert.rejects(conn.send('home'), PacketErrorStateError);
    conn.resetError();
    await conn.send('home', undefined, w);
    const close = await conn.receive(w);
    assert.deepEqual([close!.type, (close!.payload as unknown[])[0]], ['close', 'bye']);
    await conn.ack(close!);
    assert.equal(await conn.receive(w), null);
    await conn.close(w);
    const [code] = (await exited) as [number];
    assert.equal(code, 0, stderr);
  } finally {
    server.close();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** wirekit's client against a Python server (test/peers/delimited/peer.py server). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../../../src/protocols/delimited/node.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../../../..');
const peerPy = [path.join(repoRoot, 'test/peers/delimited/peer.py'), path.resolve(here, '../../../../test/peers/delimited/peer.py')].find((p) => existsSync(p))!;
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

test('wirekit client against a Python server: handshake, non-ASCII both ways, QUIT', async () => {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wk-delim-py-'));
  const sock = path.join(dir, 'py.sock');
  const proc = spawn(python, [peerPy, 'server', sock], { stdio: ['pipe', 'pipe', 'pipe'] });
  const killTimer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
  try {
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const listening = new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('LISTENING\n')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`python server exited early (${code}): ${err}`)));
    });
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const messages = ['héllo → 世界 🎉', '', 'x'.repeat(2000)];
    proc.stdin.end(messages.map((m) => JSON.stringify(m)).join('\n') + '\n');
    await listening;
    const conn = await connect(sock, { timeout: 5000 });
    for (const m of messages) {
      const got = await conn.receive({ timeout: 5000 });
      assert.equal(got, m);
      await conn.send(`réponse: ${got.length} ✓`);
    }
    assert.equal(await conn.receive({ timeout: 5000 }), 'QUIT');
    conn.close();
    assert.equal(await exited, 0, err);
    const replies = out.split('\n').slice(1).filter(Boolean).map((l) => JSON.parse(l) as string);
    assert.deepEqual(replies, messages.map((m) => `réponse: ${m.length} ✓`));
  } finally {
    clearTimeout(killTimer);
    proc.kill('SIGKILL');
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

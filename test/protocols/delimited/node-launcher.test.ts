/** The parent/child launcher with real child processes (Node and Python). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChildExitedError, HandshakeError, launchChild } from '../../../src/protocols/delimited/node.js';
import { TimeoutError } from '../../../src/errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, 'fixtures', 'child.js');
const node = process.execPath;
// test/peers is not compiled: find it from the repository root (.build/NAME/test/... or dist/test/...).
const repoRoot = path.resolve(here, '../../../../..');
const peerPy = [path.join(repoRoot, 'test/peers/delimited/peer.py'), path.resolve(here, '../../../../test/peers/delimited/peer.py')].find((p) => existsSync(p))!;
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

test('parent launches a child, exchanges messages, tells it to quit and reaps it', async () => {
  const session = await launchChild({ command: node, args: [child, 'echo'], timeout: 10_000 });
  assert.equal(await session.request('héllo 🎉', { timeout: 5000 }), 'echo:héllo 🎉');
  assert.equal(await session.request('', { timeout: 5000 }), 'echo:');
  const exit = await session.quit();
  assert.deepEqual({ code: exit.exitCode, signal: exit.signal }, { code: 0, signal: null });
  assert.notEqual(session.child.exitCode, null, 'reaped');
});

test('a child that dies before connecting is reported with its exit code and stderr, not a hang', async () => {
  await assert.rejects(
    launchChild({ command: node, args: [child, 'die'], timeout: 10_000 }),
    (e: unknown) => e instanceof ChildExitedError && e.exitCode === 3 && /missing config/.test(e.stderr) && /exited with code 3/.test(e.message),
  );
});

test('a program that cannot be started is reported', async () => {
  await assert.rejects(launchChild({ command: '/nonexistent/wirekit-child', timeout: 10_000 }), (e: unknown) => e instanceof ChildExitedError && e.exitCode === null && /could not be started/.test(e.message));
});

test('a child that crashes mid-conversation: receive() reports exit code and stderr', async () => {
  const session = await launchChild({ command: node, args: [child, 'crash'], timeout: 10_000 });
  await session.send('boom');
  await assert.rejects(session.receive({ timeout: 5000 }), (e: unknown) => e instanceof ChildExitedError && e.exitCode === 5 && /crashing on "boom"/.test(e.stderr));
  await session.kill();
});

test('a child that ignores QUIT is killed after the timeout', async () => {
  const session = await launchChild({ command: node, args: [child, 'deaf'], timeout: 10_000 });
  assert.equal(await session.request('x', { timeout: 5000 }), 'echo:x');
  const exit = await session.quit({ timeout: 50 });
  assert.equal(exit.signal, 'SIGTERM');
});

test('a child that connects but never says READY: handshake timeout, child killed', async () => {
  await assert.rejects(launchChild({ command: node, args: [child, 'silent'], timeout: 10_000, handshakeTimeout: 100 }), (e: unknown) => e instanceof TimeoutError && /handshake/.test(e.message));
});

test('a child that never connects: launch timeout, child killed', async () => {
  await assert.rejects(launchChild({ command: node, args: ['-e', 'setInterval(() => {}, 1000)'], timeout: 100 }), TimeoutError);
});

test('Python child (peer.py client) against wirekit launcher/server: handshake, non-ASCII, QUIT', async () => {
  const session = await launchChild({ command: python, args: [peerPy, 'client'], timeout: 10_000 });
  assert.equal(await session.request('grüße → 世界 🎉', { timeout: 5000 }), 'echo:grüße → 世界 🎉');
  assert.equal(await session.request('rev:åbc', { timeout: 5000 }), 'cbå');
  const long = 'ü'.repeat(5000); // many 256-byte reads on the Python side
  assert.equal(await session.request(long, { timeout: 5000 }), 'echo:' + long);
  assert.equal(await session.request('', { timeout: 5000 }), 'echo:');
  const exit = await session.quit();
  assert.equal(exit.exitCode, 0, session.stderr);
});

test('Python child that exits early (code 7) is reported with its stderr', async () => {
  await assert.rejects(launchChild({ command: python, args: [peerPy, 'die'], timeout: 10_000 }), (e: unknown) => e instanceof ChildExitedError && e.exitCode === 7 && /giving up/.test(e.stderr));
});

test('a Python client sending something else than READY fails the launch with HandshakeError', async () => {
  const script = 'import socket,sys,base64\ns=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.sendall(b"%"+base64.b64encode(b"HELLO")+b"$");s.recv(10)';
  await assert.rejects(launchChild({ command: python, args: ['-c', script], timeout: 10_000 }), HandshakeError);
});

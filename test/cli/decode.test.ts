/** `wirekit decode` through the built CLI: fatal errors end the run, offsets are frame starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function decode(args: string[], input: Uint8Array | string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, 'decode', ...args], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    // A run that never ends (the old behaviour) prints without bound: fail as soon as it is clear.
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 100_000) {
        child.kill('SIGKILL');
        reject(new Error(`decode keeps reporting errors: ${stderr.slice(0, 300)}`));
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

test('decode --codec varint on eleven 0x80 bytes: one error, exit 1', async () => {
  const r = await decode(['--codec', 'varint'], new Uint8Array(11).fill(0x80));
  assert.equal(r.code, 1);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /varint length longer than 10 bytes/);
  assert.match(lines[0]!, /at byte 0/);
});

test('decode: a fatal error after good frames prints them, then the error once', async () => {
  // u32be: "hi", then a header declaring 2^32 - 1 bytes (over the default limit).
  const r = await decode(['-c', 'u32be'], new Uint8Array([0, 0, 0, 2, 0x68, 0x69, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '#1 2 B "hi"\n');
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /after frame #1, at byte 6: .*over the limit/);
});

test('decode: recoverable errors are reported and decoding goes on', async () => {
  const r = await decode(['-c', 'lines', '--max-frame', '3'], 'abcdef\nok\nxyzw\nend\n');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '#1 "ok"\n#2 "end"\n', 'text carried as text prints as text');
  const errs = r.stderr.trimEnd().split('\n');
  assert.equal(errs.length, 2, r.stderr);
  assert.match(errs[0]!, /after frame #0, at byte 0:/);
  assert.match(errs[1]!, /after frame #1, at byte 10:/);
});

test('decode --json: offset is where each frame starts', async () => {
  const r = await decode(['-c', 'u32be', '--json'], new Uint8Array([0, 0, 0, 2, 0x68, 0x69, 0, 0, 0, 0, 0, 0, 0, 1, 0x21]));
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { n: number; offset: number });
  assert.deepEqual(
    rows.map((x) => [x.n, x.offset]),
    [
      [1, 0],
      [2, 6],
      [3, 10],
    ],
  );
});

test('decode: input ending inside a frame is one fatal error', async () => {
  const r = await decode(['-c', 'typed-frame'], new Uint8Array([5, 0, 0, 0x10, 1, 2]));
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /input ended inside/);
});

/**
 * Words users read name the systems they know (Overlord's ghost, Mercurial's frame protocol,
 * osctld's control protocol, Armchair's packets, the %base64$ UDS codec), never "seed 00N": in the
 * README, docs/, `wirekit decode --help`, codec names, doc comments and exported names. The
 * renamed exports stay as deprecated aliases.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { cliRunner } from '../helpers/cli.js';
import * as packets from '../../src/protocols/packets/index.js';
import { frameCodec } from '../../src/protocols/frames/index.js';

const root = repoRoot();
const children = new Set<ChildProcess>();
const cli = cliRunner(() => process.env, children);
after(() => children.forEach((c) => c.kill('SIGKILL')));

const SEED = /\bseed(?:\s*|-)\d{3}\b|\bthe seed(?:'s)?\b/i;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

test('README.md, docs/*.md and the sources never say "seed 00N" or "the seed"', () => {
  const files = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`), ...sources(path.join(root, 'src')).map((f) => path.relative(root, f))];
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(path.join(root, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (SEED.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(hits, []);
});

test('wirekit decode --help names the formats as users know them', async () => {
  const r = await cli(['decode', '--help']);
  assert.equal(r.code, 0);
  const text = r.stdout.toString();
  assert.doesNotMatch(text, /seed/i);
  assert.match(text, /Mercurial/);
  assert.match(text, /Armchair/);
  assert.match(text, /%base64\$/);
});

test('codec names and exported names: no seed; the SEED_* exports are deprecated aliases', () => {
  assert.doesNotMatch(frameCodec().name, /seed/i);
  const seedNames = Object.keys(packets).filter((k) => /seed/i.test(k));
  assert.deepEqual(seedNames.sort(), ['SEED_FILE_END_MARKER', 'SEED_PACKET_TYPES', 'SEED_URGENT_TYPES']);
  assert.equal(packets.SEED_PACKET_TYPES, packets.ARMCHAIR_PACKET_TYPES);
  assert.equal(packets.SEED_URGENT_TYPES, packets.ARMCHAIR_URGENT_TYPES);
  assert.equal(packets.SEED_FILE_END_MARKER, packets.ARMCHAIR_FILE_END_MARKER);
  for (const f of sources(path.join(root, 'src'))) {
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^export const SEED_/.test(line)) assert.match(lines[i - 1]!, /@deprecated use `ARMCHAIR_/, `${f}:${i + 1}`);
    });
  }
});

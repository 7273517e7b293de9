import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODES, WirekitError, isErrorCode } from '../../src/errors.js';
import { repoRoot } from '../helpers/paths.js';

const root = repoRoot();

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('docs/errors.md lists exactly the registered codes, in order', () => {
  const doc = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
  const listed = [...doc.matchAll(/^\| `(WK_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(listed, Object.keys(ERROR_CODES));
});

test('every WK_ code named in the sources is registered, and every registered code is used', () => {
  const used = new Set<string>();
  for (const file of sources(path.join(root, 'src'))) {
    if (file.endsWith('error-codes.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/'(WK_[A-Z0-9_]+)'/g)) used.add(m[1]!);
  }
  for (const code of used) assert.ok(isErrorCode(code), `${code} is used but not in src/error-codes.ts`);
  for (const code of Object.keys(ERROR_CODES)) assert.ok(used.has(code), `${code} is registered but never used`);
});

test('an error carries its registered code and its origin', () => {
  const e = new WirekitError('WK_NOT_FOUND', 'no agent x', { origin: 'remote' });
  assert.equal(e.code, 'WK_NOT_FOUND');
  assert.equal(e.origin, 'remote');
  assert.equal(isErrorCode('WK_NOPE'), false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { confinePath, resolveLexical } from '../../src/agent/paths.js';
import { PathEscapeError } from '../../src/agent/errors.js';

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

/**
 * The sans-I/O entries of frames and mux-frames reach no `node:` module, directly or through
 * what they import (walks the TypeScript sources from each entry).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../helpers/paths.js';

const IMPORT = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"]([^'"]+)['"]/gm;

function nodeImports(entry: string): string[] {
  const found: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = m[1]!;
      if (spec.startsWith('node:')) found.push(`${path.relative(repoRoot(), file)} imports ${spec}`);
      else if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
    }
  };
  visit(entry);
  assert.ok(seen.size > 5, `walked ${seen.size} files from ${entry}`);
  return found;
}

for (const name of ['frames', 'mux-frames']) {
  test(`protocols/${name}/index.ts reaches no node: module`, () => {
    assert.deepEqual(nodeImports(path.join(repoRoot(), 'src', 'protocols', name, 'index.ts')), []);
  });

  test(`protocols/${name}/node.ts does (the walk sees Node drivers)`, () => {
    assert.ok(nodeImports(path.join(repoRoot(), 'src', 'protocols', name, 'node.ts')).length > 0);
  });
}

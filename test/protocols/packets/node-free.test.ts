import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { repoRoot } from '../../helpers/paths.js';
import { nodeImports, runtimeImports } from './import-graph.js';

const root = repoRoot();

test('the packets entry and the pickle format reach no node:* import', () => {
  for (const entry of ['src/protocols/packets/index.ts', 'src/formats/pickle/index.ts']) {
    assert.deepEqual(nodeImports(path.join(root, entry)), [], entry);
  }
});

test('the packets Node entry does reach the Node drivers (the walker sees them)', () => {
  const found = runtimeImports(path.join(root, 'src/protocols/packets/node.ts'));
  assert.ok(found.has('node:fs') && found.has('node:events'), [...found.keys()].join(', '));
});

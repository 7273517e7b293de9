import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { repoRoot } from '../../helpers/paths.js';
import { nodeImports, runtimeImports } from '../packets/import-graph.js';

const root = repoRoot();

test('the delimited entry reaches no node:* import', () => {
  assert.deepEqual(nodeImports(path.join(root, 'src/protocols/delimited/index.ts')), []);
});

test('the delimited Node entry does reach the Node drivers (the walker sees them)', () => {
  const found = runtimeImports(path.join(root, 'src/protocols/delimited/node.ts'));
  assert.ok(found.has('node:net') && found.has('node:child_process'), [...found.keys()].join(', '));
});

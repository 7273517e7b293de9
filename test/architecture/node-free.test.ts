/**
 * The core runs on any runtime: from every Node-free entry point (bytes, codecs, each protocol's
 * sans-I/O core, the pickle format) no Node built-in module is reachable through runtime imports.
 * Type-only imports are erased by the compiler and do not count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const root = repoRoot();
const src = path.join(root, 'src');
const builtins = new Set(builtinModules);

/** Runtime module specifiers of one TypeScript file (static imports, re-exports, dynamic imports). */
export function runtimeImports(code: string): string[] {
  const out: string[] = [];
  const stripped = code.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const statement = /(?:^|;|\n)\s*(import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const m of stripped.matchAll(statement)) {
    if (m[2]) continue; // import type / export type
    const clause = m[3]!.trim();
    // `import { type A, type B } from` is erased too when every name is type-only.
    const braces = /^\{([^}]*)\}$/.exec(clause);
    if (braces && braces[1]!.split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
    out.push(m[4]!);
  }
  for (const m of stripped.matchAll(/(?:^|;|\n)\s*import\s*['"]([^'"]+)['"]/g)) out.push(m[1]!);
  for (const m of stripped.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return out;
}

function isNodeBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || builtins.has(spec) || builtins.has(spec.split('/')[0]!);
}

/** The chain of files from `entry` to the first Node built-in it reaches, or undefined. */
function findNodeImport(entry: string): string[] | undefined {
  const seen = new Set<string>();
  const walk = (file: string, chain: string[]): string[] | undefined => {
    if (seen.has(file)) return undefined;
    seen.add(file);
    for (const spec of runtimeImports(readFileSync(file, 'utf8'))) {
      if (isNodeBuiltin(spec)) return [...chain, path.relative(root, file), spec];
      if (!spec.startsWith('.')) continue; // a package: checked by its own maintainers
      const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
      const resolved = existsSync(target) ? target : path.join(target.replace(/\.ts$/, ''), 'index.ts');
      const found = walk(resolved, [...chain, path.relative(root, file)]);
      if (found) return found;
    }
    return undefined;
  };
  return walk(entry, []);
}

function nodeFreeEntries(): string[] {
  const entries = [path.join(src, 'bytes/index.ts'), path.join(src, 'codecs/index.ts')];
  for (const dir of readdirSync(path.join(src, 'protocols'))) entries.push(path.join(src, 'protocols', dir, 'index.ts'));
  const formats = path.join(src, 'formats');
  if (existsSync(formats)) for (const dir of readdirSync(formats)) entries.push(path.join(formats, dir, 'index.ts'));
  return entries;
}

test('the import scanner sees runtime imports and skips type-only ones', () => {
  const code = [
    "import net from 'node:net';",
    "import type { Socket } from 'node:net';",
    "import { type A, type B } from './types.js';",
    "import { type C, d } from './mixed.js';",
    "export { x } from './x.js';",
    "export type { Y } from './y.js';",
    "import './side-effect.js';",
    "// import fs from 'node:fs';",
    "const z = await import('node:zlib');",
  ].join('\n');
  assert.deepEqual(runtimeImports(code).sort(), ['./mixed.js', './side-effect.js', './x.js', 'node:net', 'node:zlib'].sort());
});

for (const entry of nodeFreeEntries()) {
  const name = path.relative(src, entry);
  test(`${name} reaches no Node built-in`, () => {
    assert.ok(existsSync(entry), `${name} is missing`);
    const chain = findNodeImport(entry);
    assert.equal(chain, undefined, chain && `${chain.join(' -> ')}`);
  });
}

test('every protocol has a Node driver entry (node.ts) beside its Node-free core', () => {
  for (const dir of readdirSync(path.join(src, 'protocols'))) {
    assert.ok(existsSync(path.join(src, 'protocols', dir, 'node.ts')), `src/protocols/${dir}/node.ts is missing`);
  }
});

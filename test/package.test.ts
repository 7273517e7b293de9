/**
 * What `npm pack` / `npm install -g .` give: a package name free of the unrelated `wirekit` on the
 * registry, the `wirekit` command, and a build (`prepare`) that puts dist/ into the tarball.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_NAME, repoRoot } from './helpers/paths.js';

const root = repoRoot();
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  bin: Record<string, string>;
  files: string[];
  scripts: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
};
const tsconfig = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { name: string; packages: Record<string, { name?: string }> };

test('the package is wirekit-js, its command wirekit, in the lockfile too', () => {
  assert.equal(pkg.name, PACKAGE_NAME);
  assert.notEqual(pkg.name, 'wirekit', 'the registry name wirekit belongs to an unrelated package');
  assert.deepEqual(Object.keys(pkg.bin), ['wirekit']);
  assert.equal(lock.name, pkg.name);
  assert.equal(lock.packages['']!.name, pkg.name);
});

test('npm pack builds dist/ first (prepare) and ships the bin and every export', () => {
  // prepare runs on npm install in a clone (so npm install -g . has dist/) and on npm pack.
  assert.equal(pkg.scripts.prepare, 'npm run build');
  assert.match(pkg.scripts.build ?? '', /^tsc -p tsconfig\.json\b/);
  assert.equal(tsconfig.compilerOptions.outDir, 'dist');
  const shipped = (p: string) => pkg.files.some((f) => path.posix.normalize(p).startsWith(f + '/'));
  assert.ok(shipped(pkg.bin.wirekit!), pkg.bin.wirekit);
  for (const [sub, e] of Object.entries(pkg.exports)) assert.ok(shipped(e.default) && shipped(e.types), sub);
});

test('the README tells a clone how to get the command on PATH', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.match(readme, /npm install -g \./);
  assert.match(readme, /npm link/);
  assert.doesNotMatch(readme, /npx wirekit /, 'npx wirekit outside the clone runs the unrelated package');
});

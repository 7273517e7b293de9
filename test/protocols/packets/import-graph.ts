import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The module specifiers reachable at run time from the TypeScript source `entry` (relative
 * imports and re-exports followed, `import type` / `export type` skipped, `.js` read as `.ts`),
 * with the file that first imports each bare or `node:` specifier.
 */
export function runtimeImports(entry: string): Map<string, string> {
  const found = new Map<string, string>();
  const seen = new Set<string>();
  const todo = [path.resolve(entry)];
  const statement = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/g;
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(statement)) {
      if (m[2] !== undefined) continue; // type-only
      const spec = m[3]!;
      if (spec.startsWith('.')) todo.push(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!found.has(spec)) found.set(spec, path.relative(process.cwd(), file));
    }
    for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      if (!found.has(m[1]!)) found.set(m[1]!, path.relative(process.cwd(), file));
    }
  }
  return found;
}

/** The `node:*` (or bare Node built-in) specifiers among `runtimeImports(entry)`. */
export function nodeImports(entry: string): string[] {
  const builtins = new Set(['fs', 'path', 'net', 'os', 'tls', 'events', 'stream', 'child_process', 'crypto', 'zlib', 'timers', 'url', 'util', 'worker_threads', 'http', 'https']);
  return [...runtimeImports(entry)].filter(([spec]) => spec.startsWith('node:') || builtins.has(spec.split('/')[0]!)).map(([spec, from]) => `${spec} (from ${from})`);
}

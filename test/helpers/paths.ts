import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The npm package's name (the `wirekit` command is its bin). */
export const PACKAGE_NAME = 'wirekit-js';

/** The repository root (the folder whose package.json is wirekit's), wherever the tests were compiled to. */
export function repoRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`wirekit repository root not found above ${from}`);
    dir = up;
  }
}

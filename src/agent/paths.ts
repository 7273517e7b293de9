/**
 * Path confinement: a path sent by a client must stay inside the daemon's root directory, both
 * lexically (`..`) and after following symbolic links.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { PathEscapeError } from './errors.js';

/** True when `child` is `parent` or lies below it (both absolute and normalized). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Lexical step (pure): resolves `userPath` against `root` as if `root` were `/`. A leading `/`
 * means the root itself. Raises `PathEscapeError` when `..` climbs above the root, and for empty
 * paths or paths containing NUL bytes.
 */
export function resolveLexical(root: string, userPath: string): string {
  if (userPath.length === 0 || userPath.includes('\0')) throw new PathEscapeError(userPath);
  const parts = userPath.split('/');
  const kept: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (kept.length === 0) throw new PathEscapeError(userPath);
      kept.pop();
      continue;
    }
    kept.push(p);
  }
  return path.join(root, ...kept);
}

/**
 * Resolves a client path to an absolute path on this machine.
 *
 * Without a root, relative paths are taken from `cwd`. With a root (which must exist), the path is
 * resolved lexically under it, then the longest existing prefix is resolved with `realpath` and
 * must still lie under the root's real path, so a symbolic link anywhere on the way cannot lead
 * out; the result names the real location. Components that do not exist yet are kept as given.
 * (A link created between this check and the use of the path is not caught: the root is meant to
 * be a directory that only trusted users can write.)
 */
export async function confinePath(userPath: string, options: { root?: string; cwd?: string } = {}): Promise<string> {
  if (options.root === undefined) {
    if (userPath.length === 0 || userPath.includes('\0')) throw new PathEscapeError(userPath);
    return path.resolve(options.cwd ?? process.cwd(), userPath);
  }
  const realRoot = await realpath(options.root);
  const lexical = resolveLexical(realRoot, userPath);
  const rest: string[] = [];
  let cur = lexical;
  for (;;) {
    try {
      const real = await realpath(cur);
      if (!isWithin(realRoot, real)) throw new PathEscapeError(userPath);
      return rest.length === 0 ? real : path.join(real, ...rest);
    } catch (err) {
      if (err instanceof PathEscapeError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (cur === realRoot) throw err;
      rest.unshift(path.basename(cur));
      cur = path.dirname(cur);
    }
  }
}

/**
 * Path confinement: a path sent by a client must stay inside the daemon's root directory, both
 * lexically (`..`) and after following symbolic links. File transfers use `resolveBeneath`, which
 * holds the directory open so nothing can change between the check and the use; `confinePath`
 * (working directories of programs, which can only be given as a path) checks once.
 */
import { constants as fsConstants } from 'node:fs';
import { lstat, open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ErrorCode } from '../error-codes.js';
import { WirekitError } from '../errors.js';
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

/**
 * A client path resolved for use without a check-then-open race: the directory that holds it is
 * open (under a root), and `at(name)` names an entry of that very directory through
 * `/proc/self/fd/<fd>/<name>`, which the kernel resolves from the descriptor, not by walking the
 * path again. Open finals with `O_NOFOLLOW`, so a link swapped in later is refused, not followed.
 */
export interface BeneathPath {
  /** The final component (`.` for the root itself). */
  readonly name: string;
  /** The path as the client may be shown it: under a root, relative to the root (`/a/b`); else absolute. */
  readonly shown: string;
  /** A path naming entry `name` of the directory (default: the final component). */
  at(name?: string): string;
  /** The directory's real location, for logs and the temp-file journal. */
  realDir(): Promise<string>;
  close(): Promise<void>;
}

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fsConstants;
/** Symbolic links followed in one resolution at most (Linux's own limit). */
const MAX_LINKS = 40;

/** The path components of `userPath` under a root, `..` resolved lexically (escaping refused). */
function lexicalParts(userPath: string, original = userPath): string[] {
  if (userPath.length === 0 || userPath.includes('\0')) throw new PathEscapeError(original);
  const kept: string[] = [];
  for (const p of userPath.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (kept.length === 0) throw new PathEscapeError(original);
      kept.pop();
    } else kept.push(p);
  }
  return kept;
}

/**
 * Resolves `userPath` like `confinePath`, but race-free under a root: walks from an open
 * descriptor of the root one component at a time, each directory opened with
 * `O_DIRECTORY | O_NOFOLLOW` relative to the previous one's descriptor. A symbolic link met on
 * the way (or as the final component) is read and its target resolved the same way from the root
 * (an absolute target must lie under the root's real path), so no link can lead out, and a
 * directory swapped for a link between two steps makes the open fail instead of escaping.
 * The final component need not exist. Without a root the path is taken from `cwd`, unconfined.
 * Errors: `PathEscapeError`; `WK_NOT_FOUND`, `WK_NOT_DIR`, `WK_PERMISSION` naming the path as given.
 */
export async function resolveBeneath(userPath: string, options: { root?: string; cwd?: string } = {}): Promise<BeneathPath> {
  if (options.root === undefined) {
    if (userPath.length === 0 || userPath.includes('\0')) throw new PathEscapeError(userPath);
    const abs = path.resolve(options.cwd ?? process.cwd(), userPath);
    const dir = path.dirname(abs);
    const name = abs === dir ? '.' : path.basename(abs);
    return { name, shown: abs, at: (n = name) => path.join(dir, n), realDir: () => realpath(dir), close: async () => {} };
  }
  const realRoot = await realpath(options.root);
  let parts = lexicalParts(userPath);
  const shown = '/' + parts.join('/');
  let links = 0;
  for (;;) {
    let dir = await open(realRoot, O_RDONLY | O_DIRECTORY);
    let i = 0;
    let link: string | undefined;
    try {
      for (; i < parts.length; i++) {
        const entry = `/proc/self/fd/${dir.fd}/${parts[i]}`;
        if (i === parts.length - 1) {
          const st = await lstat(entry).catch((err: NodeJS.ErrnoException) => {
            if (err.code === 'ENOENT') return undefined;
            throw err;
          });
          if (st?.isSymbolicLink()) link = await readlink(entry);
          break;
        }
        let next: FileHandle;
        try {
          next = await open(entry, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        } catch (err) {
          // A link refused by O_NOFOLLOW (ELOOP, or ENOTDIR with O_DIRECTORY) is followed by hand.
          const code = (err as NodeJS.ErrnoException).code;
          if ((code !== 'ELOOP' && code !== 'ENOTDIR') || !(await lstat(entry)).isSymbolicLink()) throw err;
          link = await readlink(entry);
          break;
        }
        await dir.close();
        dir = next;
      }
    } catch (err) {
      await dir.close();
      throw fileError(err, userPath);
    }
    if (link === undefined) {
      const handle = dir;
      const name = parts.length === 0 ? '.' : parts[parts.length - 1]!;
      return {
        name,
        shown,
        at: (n = name) => `/proc/self/fd/${handle.fd}/${n}`,
        realDir: () => readlink(`/proc/self/fd/${handle.fd}`),
        close: () => handle.close().catch(() => {}),
      };
    }
    await dir.close();
    if (++links > MAX_LINKS) throw new WirekitError('WK_IO', `${userPath}: too many levels of symbolic links`, { origin: 'remote' });
    // The link's target replaces it; resolution starts again from the root.
    const rest = parts.slice(i + 1);
    let target: string;
    if (path.isAbsolute(link)) {
      if (!isWithin(realRoot, path.normalize(link))) throw new PathEscapeError(userPath);
      target = path.relative(realRoot, path.normalize(link));
    } else target = [...parts.slice(0, i), link].join('/');
    parts = lexicalParts([target, ...rest].join('/') || '.', userPath);
  }
}

/**
 * A file-system error as the client should see it: `WK_NOT_FOUND`, `WK_PERMISSION`, `WK_NOT_DIR`,
 * `WK_IS_DIR` or `WK_IO`, naming `shown` (the path as the client gave it, never the daemon's
 * own location under its root). Other errors pass through.
 */
export function fileError(err: unknown, shown: string): unknown {
  if (err instanceof WirekitError || !(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const as = (c: ErrorCode, what: string) => new WirekitError(c, `${shown}: ${what}`, { origin: 'remote' });
  switch (code) {
    case 'ENOENT':
      return as('WK_NOT_FOUND', 'no such file or directory');
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return as('WK_PERMISSION', code === 'EROFS' ? 'read-only file system' : 'permission denied');
    case 'ENOTDIR':
      return as('WK_NOT_DIR', 'a path component is not a directory');
    case 'EISDIR':
      return as('WK_IS_DIR', 'is a directory');
    case 'ELOOP':
      return as('WK_NOT_FILE', 'is a symbolic link');
    case 'ENOSPC':
    case 'EDQUOT':
      return as('WK_IO', 'no space left on the device');
    default:
      return code ? as('WK_IO', `${code}`) : err;
  }
}

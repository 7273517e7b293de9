/**
 * The hub's state directory: mode 0700, owned by the hub's user, holding JSON files written
 * atomically (a temp file in the same directory, fsync, rename, fsync of the directory), each 0600
 * from the first instant. A reader never sees half a file, and a crash leaves the old one.
 */
import { constants, promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { HubUsageError } from './errors.js';

/** Largest state file read, in bytes. */
export const MAX_STATE_FILE = 64 * 1024 * 1024;

export class StateDir {
  private constructor(readonly dir: string) {}

  /** Creates `dir` (0700) if missing; refuses one that another user owns or others can open. */
  static async open(dir: string): Promise<StateDir> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await fsp.lstat(dir);
    if (!st.isDirectory()) throw new HubUsageError(`state directory ${dir} is not a directory`, 'local');
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new HubUsageError(`state directory ${dir} belongs to another user`, 'local');
    if ((st.mode & 0o077) !== 0) throw new HubUsageError(`state directory ${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it`, 'local');
    // Sweep temp files a crash left behind.
    for (const name of await fsp.readdir(dir)) if (name.startsWith('.tmp-')) await fsp.rm(path.join(dir, name), { force: true });
    return new StateDir(dir);
  }

  /** The parsed JSON of `name`, or undefined if it does not exist. */
  async read<T>(name: string): Promise<T | undefined> {
    const file = path.join(this.dir, name);
    let handle: fsp.FileHandle;
    try {
      handle = await fsp.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const st = await handle.stat();
      if (st.size > MAX_STATE_FILE) throw new HubUsageError(`${file} is larger than ${MAX_STATE_FILE} bytes`, 'local');
      const text = await handle.readFile('utf8');
      try {
        return JSON.parse(text) as T;
      } catch (err) {
        throw new HubUsageError(`${file} is not valid JSON: ${(err as Error).message}`, 'local');
      }
    } finally {
      await handle.close();
    }
  }

  /** Replaces `name` with `value` as JSON, atomically. */
  async write(name: string, value: unknown): Promise<void> {
    const tmp = path.join(this.dir, `.tmp-${name}-${randomBytes(6).toString('hex')}`);
    const handle = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await handle.writeFile(JSON.stringify(value, null, 2) + '\n');
      await handle.sync();
    } catch (err) {
      await handle.close();
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    await fsp.rename(tmp, path.join(this.dir, name));
    const d = await fsp.open(this.dir, constants.O_RDONLY);
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

/**
 * The daemon's record of the temporary files it is writing, so a daemon that was killed (SIGKILL,
 * power loss) removes what it left behind at its next start. One small file per temporary file,
 * in a private directory: `<pid>-<random>` holding the temporary file's absolute path. The entry
 * is written before the first byte of the upload is accepted and removed once the temporary file
 * is renamed into place or removed.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Marks the temporary files of transfers: `.NAME.wirekit-PID-RANDOM.part`. */
const TEMP_PATTERN = /^\.(.+)\.wirekit-(\d+)-[0-9a-f]{12}\.part$/;

/**
 * The name of the temporary file an upload or download of `dest` is written to: hidden, beside
 * it, and naming the process that writes it (so a later sweep knows whether its writer is gone).
 */
export function tempNameFor(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.wirekit-${process.pid}-${randomBytes(6).toString('hex')}.part`);
}

/** The pid that wrote temporary file `name` (a `tempNameFor` name), or undefined for other names. */
export function tempFileWriter(name: string): number | undefined {
  const m = TEMP_PATTERN.exec(path.basename(name));
  return m ? Number(m[2]) : undefined;
}

/** True while process `pid` exists (on this machine). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}


/**
 * Removes the temporary files of earlier transfers of `dest` whose writer is gone: a `wirekit cp`
 * that was SIGKILLed cannot remove its own `.part`, so the next copy to the same place does.
 * Only names made by `tempNameFor` for this very destination are touched, and only when the pid
 * they name is not a live process. Returns the paths removed; errors are ignored (best effort).
 */
export async function sweepStaleTempFiles(dest: string): Promise<string[]> {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_PATTERN.exec(name);
    if (!m || m[1] !== base) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    const full = path.join(dir, name);
    try {
      if (!(await lstat(full)).isFile()) continue;
      await unlink(full);
      removed.push(full);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/** Entries this process has open (a sweep in the same process leaves them alone). */
const ours = new Set<string>();

export class TempJournal {
  constructor(readonly dir: string) {}

  /** Records `tempPath`; resolves with the function that drops the record. */
  async add(tempPath: string): Promise<() => void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const entry = path.join(this.dir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await writeFile(entry, tempPath, { mode: 0o600, flag: 'wx' });
    ours.add(entry);
    let dropped = false;
    return () => {
      if (dropped) return;
      dropped = true;
      ours.delete(entry);
      void unlink(entry).catch(() => {});
    };
  }

  /**
   * Removes the temporary files of daemons that are gone (their pid no longer exists, or is this
   * process's but the record is not one of its own: a daemon restarted with the same pid) and
   * their records. Only files whose name is
   * a transfer's temporary name are removed. Resolves with the paths removed.
   */
  async sweep(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const removed: string[] = [];
    for (const name of names) {
      const m = /^(\d+)-[0-9a-f]{12}$/.exec(name);
      if (!m) continue;
      const pid = Number(m[1]);
      const entry = path.join(this.dir, name);
      if (ours.has(entry) || (pid !== process.pid && processAlive(pid))) continue;
      const temp = await readFile(entry, 'utf8').catch(() => '');
      if (path.isAbsolute(temp) && tempFileWriter(temp) !== undefined) {
        const st = await lstat(temp).catch(() => undefined);
        if (st?.isFile()) {
          await unlink(temp).catch(() => {});
          removed.push(temp);
        }
      }
      await unlink(entry).catch(() => {});
    }
    return removed;
  }
}

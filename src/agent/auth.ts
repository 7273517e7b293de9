/** Token authentication for TCP listeners. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';

/** A new random token (32 bytes, hex). */
export function generateToken(): string {
  return randomBytes(32).toString('hex');
}

/** Compares two tokens in constant time (both are hashed first, so lengths do not leak either). */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** Writes `token` to `file`, created fresh with mode 0600 (an existing file is replaced). */
export function writeTokenFile(file: string, token: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, token + '\n');
  } finally {
    closeSync(fd);
  }
}

/** Reads a token file (surrounding whitespace removed). */
export function readTokenFile(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

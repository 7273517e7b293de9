/** Running the built CLI as a child process in end-to-end tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point, beside the compiled tests. */
export const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export interface CliOptions {
  input?: Uint8Array | string;
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * A `cli(args, options)` runner: `baseEnv()` is merged under each call's `env`; every child is kept
 * in `children` while it runs (so an `after` hook can kill what a failed test left).
 */
export function cliRunner(baseEnv: () => NodeJS.ProcessEnv, children: Set<ChildProcess>) {
  return (args: string[], opts: CliOptions = {}): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], { env: { ...baseEnv(), ...opts.env }, stdio: 'pipe' });
      children.add(child);
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`wirekit ${args.join(' ')} timed out; stderr: ${err}`));
      }, opts.timeoutMs ?? 20_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        children.delete(child);
        resolve({ code, stdout: Buffer.concat(out), stderr: err });
      });
      child.stdin.end(opts.input ?? '');
    });
}

/** Waits for output matching `re` on a child's stream. */
export function waitLine(stream: NodeJS.ReadableStream, re: RegExp, timeoutMs = 15_000): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${re} in: ${buf}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d;
      const m = re.exec(buf);
      if (m) {
        clearTimeout(timer);
        stream.off('data', on);
        resolve(m);
      }
    };
    stream.on('data', on);
  });
}

/** Settles as `p` does, or rejects after `timeoutMs` with an error naming `what` (so no test waits forever). */
export function within<T>(p: Promise<T>, what: string | (() => string), timeoutMs = 20_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${typeof what === 'string' ? what : what()}`)), timeoutMs);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Resolves with a child's exit code (null when a signal ended it) once it exited, or rejects after `timeoutMs`. */
export function exitOf(child: ChildProcess, timeoutMs = 20_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return within(new Promise((resolve) => child.once('exit', (code) => resolve(code))), `exit of pid ${child.pid}`, timeoutMs);
}

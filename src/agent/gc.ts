/**
 * Access to V8's garbage collector for drivers that want to bound their peak memory (the
 * daemon's file receiver, see `ReceiveFileOptions.collectGarbage`). Node-only.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let cached: GcFunction | null | undefined;

/**
 * Returns a function that runs a minor (young generation) or major collection, or `undefined`
 * when V8 refuses. Uses `globalThis.gc` under `--expose-gc`; otherwise turns the flag on and takes `gc`
 * from a fresh context, the usual way to reach it without a command-line flag. Meant for
 * programs (the `wirekit serve` command), not for libraries embedded in someone else's process.
 */
export function v8Collector(): ((kind: 'minor' | 'major') => void) | undefined {
  if (cached === undefined) {
    const existing = (globalThis as { gc?: unknown }).gc;
    if (typeof existing === 'function') cached = existing as GcFunction;
    else {
      try {
        v8.setFlagsFromString('--expose-gc');
        const fn = vm.runInNewContext('gc') as unknown;
        cached = typeof fn === 'function' ? (fn as GcFunction) : null;
      } catch {
        cached = null;
      }
    }
  }
  const gc = cached;
  return gc ? (kind) => gc({ type: kind }) : undefined;
}

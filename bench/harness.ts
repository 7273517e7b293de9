/**
 * Benchmark harness: each `bench/*.bench.ts` module exports `name` and `run(reporter, ctx)`.
 * Within a workload, one implementation is marked `baseline`; the runner prints every other
 * implementation's ratio to it (> 1 means wirekit is better, whatever the unit).
 */
export interface BenchContext {
  /** Smaller inputs, for a quick look (`npm run bench -- --quick`). */
  quick: boolean;
}

export interface Row {
  workload: string;
  impl: string;
  value: number;
  unit: string;
  /** true for throughput (msg/s, MB/s), false for times (ms). */
  higherIsBetter: boolean;
  baseline?: boolean;
  note?: string;
}

export interface BenchModule {
  name: string;
  run(reporter: Reporter, ctx: BenchContext): Promise<void>;
}

export class Reporter {
  readonly rows: Row[] = [];

  add(row: Row): void {
    this.rows.push(row);
    const v = row.value >= 100 ? Math.round(row.value).toLocaleString('en-US') : row.value.toFixed(2);
    console.log(`  ${row.workload} | ${row.impl}: ${v} ${row.unit}${row.note ? ` (${row.note})` : ''}`);
  }

  /** Markdown table with ratios to each workload's baseline. */
  table(): string {
    const lines = ['| workload | implementation | result | ratio to baseline |', '|---|---|---|---|'];
    for (const row of this.rows) {
      const base = this.rows.find((r) => r.workload === row.workload && r.baseline);
      let ratio = '';
      if (row.baseline) ratio = 'baseline';
      else if (base && base.value > 0 && row.value > 0) {
        const r = row.higherIsBetter ? row.value / base.value : base.value / row.value;
        ratio = `${r.toFixed(2)}x`;
      }
      const v = row.value >= 100 ? Math.round(row.value).toLocaleString('en-US') : row.value.toFixed(2);
      lines.push(`| ${row.workload} | ${row.impl} | ${v} ${row.unit}${row.note ? ` (${row.note})` : ''} | ${ratio} |`);
    }
    return lines.join('\n');
  }
}

/** Runs `fn` `runs` times (after one warm-up) and returns the best time in milliseconds. */
export async function bestOf(runs: number, fn: () => Promise<void> | void): Promise<number> {
  await fn();
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/**
 * Times several implementations of one workload in alternation (A, B, A, B, ...) after a warm-up
 * of each, and returns each one's best time in ms. Alternating spreads drifts in the machine's
 * state (other processes, memory, CPU frequency) over all of them instead of over whichever ran
 * last, which matters when two results are close.
 */
export async function bestOfInterleaved(runs: number, fns: readonly (() => Promise<void> | void)[]): Promise<number[]> {
  for (const fn of fns) await fn();
  const best = fns.map(() => Infinity);
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < fns.length; j++) {
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = performance.now();
      await fns[j]!();
      best[j] = Math.min(best[j]!, performance.now() - t0);
    }
  }
  return best;
}

/** Splits `data` into chunks of `size` bytes (views, no copy). */
export function chunked(data: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, Math.min(i + size, data.length)));
  return out;
}

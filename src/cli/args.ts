/** A small argument parser: long and short options, grouped short flags (`-it`), `--name=value`, `--`, and stop-at-first-positional. */
import { UsageError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
}

export type Spec = Record<string, OptionSpec>;

export interface Parsed {
  flags: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A usage error (exit code 2): the shared class. */
export { UsageError };

/**
 * Parses `argv`. With `stopAtPositional`, everything from the first positional argument on is
 * positional (for `exec CMD ARGS...`).
 */
export function parseArgs(argv: string[], spec: Spec, options: { stopAtPositional?: boolean } = {}): Parsed {
  if (capturing) throw new SpecCaptured(spec);
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, s] of Object.entries(spec)) if (s.short) byShort.set(s.short, name);
  const set = (name: string, value: string | boolean) => {
    const s = spec[name]!;
    if (s.multiple) ((flags[name] as string[] | undefined) ?? (flags[name] = [] as string[]) as string[]).push(String(value));
    else flags[name] = value;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const s = spec[name];
      if (!s) throw new UsageError(`unknown option --${name}`);
      if (s.type === 'boolean') {
        if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
        set(name, true);
      } else {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new UsageError(`option --${name} needs a value`);
        set(name, v);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      const name = byShort.get(a.slice(1, 2));
      if (!name) throw new UsageError(`unknown option ${a}`);
      const s = spec[name]!;
      if (s.type === 'boolean') {
        if (a.length > 2) {
          // Grouped flags (`-it`): every letter a boolean option.
          const group = [...a.slice(1)].map((c) => byShort.get(c));
          if (group.some((n) => n === undefined || spec[n]!.type !== 'boolean')) throw new UsageError(`option ${a.slice(0, 2)} takes no value`);
          for (const n of group) set(n!, true);
          continue;
        }
        set(name, true);
      } else {
        const v = a.length > 2 ? a.slice(2) : argv[++i];
        if (v === undefined) throw new UsageError(`option ${a} needs a value`);
        set(name, v);
      }
      continue;
    }
    positionals.push(a);
    if (options.stopAtPositional) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, positionals };
}

/** Parses a duration: `500ms`, `15s`, `2m`, or a number of milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) throw new UsageError(`invalid ${what} ${JSON.stringify(text)} (e.g. 500ms, 15s, 2m)`);
  const n = Number(m[1]);
  return m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n;
}

/** Parses a positive integer. */
export function parseIntArg(text: string, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`invalid ${what} ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`${what} must be between ${min} and ${max}`);
  return n;
}

/** Thrown by `parseArgs` while `captureSpec` runs: carries the spec a command parses with. */
class SpecCaptured {
  constructor(readonly spec: Spec) {}
}

let capturing = false;

/**
 * The option spec a command's `run` parses its arguments with (its first `parseArgs` call), so
 * shell completion offers exactly the options the command accepts. Undefined when `run` returns
 * or fails without parsing.
 */
export async function captureSpec(run: (argv: string[]) => Promise<number>): Promise<Spec | undefined> {
  capturing = true;
  try {
    await run([]);
    return undefined;
  } catch (err) {
    if (err instanceof SpecCaptured) return err.spec;
    return undefined;
  } finally {
    capturing = false;
  }
}

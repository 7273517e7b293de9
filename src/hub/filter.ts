/**
 * Agent filters as `wirekit ls --filter key=regex` and `GET /api/agents?filter=` take them: each
 * filter names a property (or `id`, `hostname`) and a regular expression the value must match
 * (unanchored, as `ovl ls -f` does). Several filters must all match.
 */
import { HubUsageError } from './errors.js';

export interface AgentFilter {
  readonly key: string;
  readonly pattern: RegExp;
}

/** Longest filter accepted, in characters (a regular expression from the network is bounded). */
export const MAX_FILTER_LENGTH = 256;

export function parseFilter(text: string): AgentFilter {
  if (text.length > MAX_FILTER_LENGTH) throw new HubUsageError(`a filter has at most ${MAX_FILTER_LENGTH} characters`);
  const eq = text.indexOf('=');
  if (eq <= 0) throw new HubUsageError(`filter "${text}" is not KEY=REGEX`);
  const key = text.slice(0, eq);
  let pattern: RegExp;
  try {
    pattern = new RegExp(text.slice(eq + 1));
  } catch (err) {
    throw new HubUsageError(`filter "${text}": ${(err as Error).message}`);
  }
  return { key, pattern };
}

/** The text a filter compares: strings as they are, other JSON values as JSON, arrays element by element. */
function valuesOf(v: unknown): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(valuesOf);
  return [JSON.stringify(v)];
}

export function matchesFilters(fields: Readonly<Record<string, unknown>>, filters: readonly AgentFilter[]): boolean {
  return filters.every((f) => valuesOf(fields[f.key]).some((s) => f.pattern.test(s)));
}

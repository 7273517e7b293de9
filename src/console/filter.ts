/**
 * The fleet list's filter box: space-separated terms that must all match. `key=regex` matches a
 * property (or `id`, `hostname`, `address`, `version`) against an unanchored regular expression, as
 * `GET /api/agents?filter=` and `wirekit ls --filter` do; a plain term is a case-insensitive
 * substring of the id or the hostname. An invalid regular expression is taken literally.
 * No DOM: tested under Node.
 */

export interface AgentRecord {
  mid: string;
  id: string;
  hostname: string;
  address: string;
  version: string;
  capabilities: string[];
  properties: Record<string, unknown>;
  since: string;
  authenticated: boolean;
}

export type Term = { key: string; test: (s: string) => boolean } | { key: undefined; text: string };

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function parseFilterBox(text: string): Term[] {
  const terms: Term[] = [];
  for (const word of text.trim().split(/\s+/)) {
    if (word === '') continue;
    const eq = word.indexOf('=');
    if (eq <= 0) {
      terms.push({ key: undefined, text: word.toLowerCase() });
      continue;
    }
    const key = word.slice(0, eq);
    const src = word.slice(eq + 1).slice(0, 256);
    let re: RegExp;
    try {
      re = new RegExp(src);
    } catch {
      re = new RegExp(escapeRegExp(src));
    }
    terms.push({ key, test: (s) => re.test(s) });
  }
  return terms;
}

function valuesOf(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(valuesOf);
  return [JSON.stringify(v)];
}

export function matchesFilterBox(a: AgentRecord, terms: readonly Term[]): boolean {
  return terms.every((t) => {
    if (t.key === undefined) return a.id.toLowerCase().includes(t.text) || a.hostname.toLowerCase().includes(t.text);
    const builtin: Record<string, unknown> = { id: a.id, hostname: a.hostname, address: a.address, version: a.version };
    const v = Object.hasOwn(builtin, t.key) ? builtin[t.key] : Object.hasOwn(a.properties, t.key) ? a.properties[t.key] : undefined;
    return valuesOf(v).some(t.test);
  });
}

/** A property value as one line of text (strings as they are, anything else as JSON). */
export function propertyText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
}

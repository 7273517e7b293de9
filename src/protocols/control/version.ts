import { UsageError } from '../../errors.js';
/**
 * A small version-range check for the greeting: space-separated comparators (`>=1.2.0 <2`),
 * alternatives joined by `||`, `^1.2.3`, `~1.2.3`, `1.x`, `*`, or an exact version.
 * Pre-release suffixes are compared as lower than the release, string-wise among themselves.
 */

type Version = [number, number, number, string];

function parse(v: string): Version | undefined {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/.exec(v.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0), m[4] ?? ''];
}

function cmp(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1;
  if (a[3] === b[3]) return 0;
  if (a[3] === '') return 1;
  if (b[3] === '') return -1;
  return a[3] < b[3] ? -1 : 1;
}

function comparator(c: string, v: Version): boolean {
  if (c === '*' || c === 'x' || c === '') return true;
  const m = /^(>=|<=|>|<|=|\^|~)?\s*(.+)$/.exec(c)!;
  const op = m[1] ?? '';
  const raw = m[2]!;
  const parts = raw.replace(/^v/, '').split(/[.-]/);
  const wildIdx = parts.slice(0, 3).findIndex((p) => p === 'x' || p === 'X' || p === '*');
  const given = raw.split('.').length;
  if (wildIdx >= 0 || (op === '' && given < 3)) {
    // Partial or wildcard version: match the given leading fields.
    const n = wildIdx >= 0 ? wildIdx : given;
    const target = parse(parts.slice(0, n).join('.') || '0');
    if (!target) throw new UsageError(`invalid version range: ${c}`);
    for (let i = 0; i < n; i++) if (v[i] !== target[i]) return false;
    return true;
  }
  const t = parse(raw);
  if (!t) throw new UsageError(`invalid version range: ${c}`);
  const r = cmp(v, t);
  switch (op) {
    case '>=':
      return r >= 0;
    case '<=':
      return r <= 0;
    case '>':
      return r > 0;
    case '<':
      return r < 0;
    case '^': {
      if (r < 0) return false;
      if (t[0] > 0) return v[0] === t[0];
      if (t[1] > 0) return v[0] === 0 && v[1] === t[1];
      return v[0] === 0 && v[1] === 0 && v[2] === t[2];
    }
    case '~':
      return r >= 0 && v[0] === t[0] && v[1] === t[1];
    default:
      return r === 0;
  }
}

/** True when `version` satisfies `range`. Throws `RangeError` for an unparsable range. */
export function satisfiesVersion(version: string, range: string): boolean {
  const v = parse(version);
  if (!v) return false;
  return range.split('||').some((alt) => {
    const comps = alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/);
    return comps.every((c) => comparator(c, v));
  });
}

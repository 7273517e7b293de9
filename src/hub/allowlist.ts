/**
 * Who may open an agent, with Overlord's allowlist semantics: admins may open every agent; anyone
 * else needs the agent's `allowlist` property (an array of strings) to hold `anyone`, `u/<user>`, or
 * `g/<group>` for a group the user is in. A missing or non-array allowlist denies, and so does a
 * malformed entry (one with no `/` other than `anyone`): the scan stops there, denied, as Overlord's does.
 */

export interface Principal {
  readonly username: string;
  readonly isAdmin: boolean;
  readonly groups: readonly string[];
}

export function mayOpen(user: Principal, properties: Readonly<Record<string, unknown>>): boolean {
  if (user.isAdmin) return true;
  const list = properties.allowlist;
  if (!Array.isArray(list)) return false;
  for (const entry of list) {
    if (typeof entry !== 'string') return false;
    if (entry === 'anyone') return true;
    const slash = entry.indexOf('/');
    if (slash < 0) return false;
    const kind = entry.slice(0, slash);
    const name = entry.slice(slash + 1);
    if (kind === 'u' && name === user.username) return true;
    if (kind === 'g' && user.groups.includes(name)) return true;
  }
  return false;
}

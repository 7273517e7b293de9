/**
 * The hub's users and groups: an in-memory document with the operations `wirekit hub user ...` and
 * the `/api/users` and `/api/groups` routes need, serialized as JSON by the state directory. Every
 * admin is in the group `admin`, as in Overlord. Passwords are stored as scrypt hashes only.
 */
import { HubNotFoundError, HubUsageError } from './errors.js';
import type { Principal } from './allowlist.js';

export interface UserRecord {
  readonly username: string;
  /** `scrypt$...` (see passwords.ts). */
  passwordHash: string;
  groups: string[];
}

export interface UsersDocument {
  readonly version: 1;
  users: UserRecord[];
  groups: string[];
}

export const ADMIN_GROUP = 'admin';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export function isValidName(name: string): boolean {
  return NAME.test(name);
}

export class Users {
  private readonly byName = new Map<string, UserRecord>();
  private readonly groupNames = new Set<string>([ADMIN_GROUP]);

  constructor(doc?: UsersDocument) {
    if (!doc) return;
    if (doc.version !== 1 || !Array.isArray(doc.users) || !Array.isArray(doc.groups)) throw new HubUsageError('users file: not a wirekit users document', 'local');
    for (const g of doc.groups) if (typeof g === 'string' && isValidName(g)) this.groupNames.add(g);
    for (const u of doc.users) {
      if (typeof u?.username !== 'string' || !isValidName(u.username) || typeof u.passwordHash !== 'string' || !Array.isArray(u.groups)) {
        throw new HubUsageError('users file: a malformed user entry', 'local');
      }
      this.byName.set(u.username, { username: u.username, passwordHash: u.passwordHash, groups: u.groups.filter((g) => this.groupNames.has(g)) });
    }
  }

  toDocument(): UsersDocument {
    return { version: 1, users: [...this.byName.values()].map((u) => ({ ...u, groups: [...u.groups] })), groups: [...this.groupNames] };
  }

  get size(): number {
    return this.byName.size;
  }

  get(username: string): UserRecord | undefined {
    return this.byName.get(username);
  }

  list(): { username: string; is_admin: boolean; groups: string[] }[] {
    return [...this.byName.values()]
      .sort((a, b) => (a.username < b.username ? -1 : 1))
      .map((u) => ({ username: u.username, is_admin: u.groups.includes(ADMIN_GROUP), groups: [...u.groups] }));
  }

  principal(username: string): Principal | undefined {
    const u = this.byName.get(username);
    return u && { username: u.username, isAdmin: u.groups.includes(ADMIN_GROUP), groups: u.groups };
  }

  add(username: string, passwordHash: string, isAdmin: boolean): void {
    if (!isValidName(username)) throw new HubUsageError(`"${username}" is not a valid user name (letters, digits, . _ @ -; up to 64)`);
    if (this.byName.has(username)) throw new HubUsageError(`user ${username} already exists`);
    this.byName.set(username, { username, passwordHash, groups: isAdmin ? [ADMIN_GROUP] : [] });
  }

  remove(username: string): void {
    if (!this.byName.delete(username)) throw new HubNotFoundError(`no user ${username}`);
  }

  setPassword(username: string, passwordHash: string): void {
    this.require(username).passwordHash = passwordHash;
  }

  listGroups(): { name: string; user_count: number }[] {
    return [...this.groupNames].sort().map((name) => ({ name, user_count: [...this.byName.values()].filter((u) => u.groups.includes(name)).length }));
  }

  addGroup(name: string): void {
    if (!isValidName(name)) throw new HubUsageError(`"${name}" is not a valid group name`);
    if (this.groupNames.has(name)) throw new HubUsageError(`group ${name} already exists`);
    this.groupNames.add(name);
  }

  removeGroup(name: string): void {
    if (name === ADMIN_GROUP) throw new HubUsageError('the admin group cannot be removed');
    if (!this.groupNames.delete(name)) throw new HubNotFoundError(`no group ${name}`);
    for (const u of this.byName.values()) u.groups = u.groups.filter((g) => g !== name);
  }

  groupMembers(name: string): string[] {
    if (!this.groupNames.has(name)) throw new HubNotFoundError(`no group ${name}`);
    return [...this.byName.values()].filter((u) => u.groups.includes(name)).map((u) => u.username).sort();
  }

  addToGroup(name: string, username: string): void {
    if (!this.groupNames.has(name)) throw new HubNotFoundError(`no group ${name}`);
    const u = this.require(username);
    if (!u.groups.includes(name)) u.groups.push(name);
  }

  removeFromGroup(name: string, username: string): void {
    if (!this.groupNames.has(name)) throw new HubNotFoundError(`no group ${name}`);
    const u = this.require(username);
    u.groups = u.groups.filter((g) => g !== name);
  }

  private require(username: string): UserRecord {
    const u = this.byName.get(username);
    if (!u) throw new HubNotFoundError(`no user ${username}`);
    return u;
  }
}

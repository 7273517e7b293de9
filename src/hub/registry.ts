/**
 * The hub's table of connected agents. Sans-I/O: the caller passes the time and acts on the
 * returned events (tell monitors, end sessions, close the connection); nothing here touches a
 * socket or a timer.
 *
 * - An id is unique: registering an id that a connected agent holds is refused (Overlord's
 *   duplicate machine id rule), so a newcomer cannot take a device's place.
 * - Each entry remembers the connection that registered it (`owner`): only that connection's
 *   keepalives refresh it and only its end removes it, so a stale connection can never erase a
 *   fresh registration.
 * - `expire(now)` drops every agent silent for longer than the keepalive timeout.
 */
import { RegistryFullError } from './errors.js';
import { DuplicateAgentError } from './errors.js';
import { matchesFilters, type AgentFilter } from './filter.js';

export interface AgentInfo {
  readonly id: string;
  readonly hostname: string;
  /** Labels (from a JSON file and flags) and Overlord ghost properties. */
  readonly properties: Readonly<Record<string, unknown>>;
  /** The agent's address as the hub sees it (host, without the port). */
  readonly address: string;
  readonly version: string;
  /** Session kinds and features the agent offers (`exec`, `terminal`, `upload`, ...). */
  readonly capabilities: readonly string[];
  /** False for Overlord ghosts, which cannot authenticate. */
  readonly authenticated: boolean;
}

export interface AgentEntry<Owner> extends AgentInfo {
  /** When it registered, ms since the epoch. */
  readonly since: number;
  /** Last keepalive, ms since the epoch. */
  lastSeen: number;
  readonly owner: Owner;
}

export type RegistryEvent<Owner> =
  | { readonly type: 'joined'; readonly agent: AgentEntry<Owner> }
  | { readonly type: 'left'; readonly agent: AgentEntry<Owner>; readonly reason: 'closed' | 'timeout' };

export interface RegistryOptions {
  /** Agents allowed at once. Default 20,000. */
  readonly maxAgents?: number;
  /** An agent silent longer than this is dropped, in ms. Default 30,000. */
  readonly keepaliveTimeoutMs?: number;
}


/** The longest agent id, in characters. */
export const MAX_AGENT_ID_LENGTH = 256;

/** Whether `id` can name an agent (non-empty, bounded, no whitespace, slashes or control characters). */
export function isValidAgentId(id: string): boolean {
  if (id.length === 0 || id.length > MAX_AGENT_ID_LENGTH || /[\s/\\]/u.test(id)) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

export class AgentRegistry<Owner> {
  private readonly agents = new Map<string, AgentEntry<Owner>>();
  readonly maxAgents: number;
  readonly keepaliveTimeoutMs: number;

  constructor(options: RegistryOptions = {}) {
    this.maxAgents = options.maxAgents ?? 20_000;
    this.keepaliveTimeoutMs = options.keepaliveTimeoutMs ?? 30_000;
  }

  get size(): number {
    return this.agents.size;
  }

  /** Adds an agent. Throws `DuplicateAgentError` when its id is taken, `RegistryFullError` at the limit. */
  register(info: AgentInfo, owner: Owner, now: number): RegistryEvent<Owner> {
    if (this.agents.has(info.id)) throw new DuplicateAgentError(info.id);
    if (this.agents.size >= this.maxAgents) throw new RegistryFullError(this.maxAgents);
    const agent: AgentEntry<Owner> = { ...info, since: now, lastSeen: now, owner };
    this.agents.set(info.id, agent);
    return { type: 'joined', agent };
  }

  /** Records a keepalive from `owner`; false when `owner` does not hold `id`. */
  seen(id: string, owner: Owner, now: number): boolean {
    const agent = this.agents.get(id);
    if (!agent || agent.owner !== owner) return false;
    agent.lastSeen = now;
    return true;
  }

  /** Removes `id` if `owner` holds it (its connection ended). */
  remove(id: string, owner: Owner): RegistryEvent<Owner> | undefined {
    const agent = this.agents.get(id);
    if (!agent || agent.owner !== owner) return undefined;
    this.agents.delete(id);
    return { type: 'left', agent, reason: 'closed' };
  }

  /** Drops every agent whose last keepalive is older than the timeout. */
  expire(now: number): RegistryEvent<Owner>[] {
    const events: RegistryEvent<Owner>[] = [];
    for (const agent of this.agents.values()) {
      if (now - agent.lastSeen > this.keepaliveTimeoutMs) {
        this.agents.delete(agent.id);
        events.push({ type: 'left', agent, reason: 'timeout' });
      }
    }
    return events;
  }

  get(id: string): AgentEntry<Owner> | undefined {
    return this.agents.get(id);
  }

  /** Agents matching every filter (keys: `id`, `hostname`, `address`, `version`, or a property), sorted by id. */
  list(filters: readonly AgentFilter[] = []): AgentEntry<Owner>[] {
    const out: AgentEntry<Owner>[] = [];
    for (const agent of this.agents.values()) {
      if (filters.length === 0 || matchesFilters({ ...agent.properties, id: agent.id, hostname: agent.hostname, address: agent.address, version: agent.version }, filters)) out.push(agent);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

export { RegistryFullError };

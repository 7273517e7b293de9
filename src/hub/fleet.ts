/**
 * What a hub shares with the other hubs of its fleet. `Hub` calls these hooks at each step of an
 * agent's life (claim its id, drop the claim, share its token) and when a user lists or opens
 * agents (the other hubs' agents are listed too, and a session to one is asked of its hub).
 *
 * `LocalFleet`, the default, is a hub alone: every hook is a no-op and no other hub has agents, so
 * a hub without `--nats` behaves exactly as it always has. `NatsFleet` (nats-fleet.ts) is a fleet
 * whose registry, events and routing go through NATS.
 */
import { randomUUID } from 'node:crypto';
import type { AgentFilter } from './filter.js';
import type { AgentLinkHandle, Hub } from './hub.js';
import type { AgentEntry } from './registry.js';

export interface FleetBackend {
  /**
   * Called once the hub's listeners are up; `agentAddress` is where agents reach it (`HOST:PORT`),
   * `relayAddress` where other hubs reach its relay port (fleet-relay.ts), if it has one.
   */
  start(hub: Hub, self: { agentAddress: string; relayAddress?: string; relayTls?: boolean }): Promise<void>;
  /**
   * An agent passed this hub's own checks: claim its id fleet-wide, with the SHA-256 (hex) of the
   * token it uses from now on (other hubs check its dial-backs against it). Rejects with
   * `DuplicateAgentError`.
   */
  claim(agent: AgentEntry<AgentLinkHandle>, tokenHash: string): Promise<void>;
  /** The agent's link on this hub ended: drop this hub's claim (never another hub's). */
  release(id: string): void;
  /** Agents connected to other hubs, matching every filter, sorted by id. Their `owner` routes a dial-back. */
  listRemote(filters: readonly AgentFilter[]): AgentEntry<AgentLinkHandle>[];
  /** The agent `id` on another hub, if any. */
  getRemote(id: string): AgentEntry<AgentLinkHandle> | undefined;
  /** The SHA-256 (hex) of agent `id`'s token as the fleet knows it (an agent enrolled on another hub). */
  agentTokenHash(id: string): string | undefined;
  /** Shares agent `id`'s token hash with the other hubs. */
  shareAgentToken(id: string, hash: string): Promise<void>;
  /** A new session id (a fleet's names the hub the session waits on). */
  newSessionId(): string;
  /** An agent here could not dial back for `sid`, which this hub does not wait for (another hub does). */
  dialFailed(agentId: string, sid: string, message: string): void;
  /** Leaves the fleet: drops this hub's claims and disconnects. */
  close(): Promise<void>;
}

/** A hub alone. */
export class LocalFleet implements FleetBackend {
  start(): Promise<void> {
    return Promise.resolve();
  }
  claim(): Promise<void> {
    return Promise.resolve();
  }
  release(): void {}
  listRemote(): AgentEntry<AgentLinkHandle>[] {
    return [];
  }
  getRemote(): undefined {
    return undefined;
  }
  agentTokenHash(): undefined {
    return undefined;
  }
  shareAgentToken(): Promise<void> {
    return Promise.resolve();
  }
  newSessionId(): string {
    return randomUUID();
  }
  dialFailed(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

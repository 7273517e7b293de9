/**
 * The client side of the hub's user port (`user-port.ts`): log in, list agents, and route a
 * connection to an agent. A routed connection continues as a connection to that agent's daemon,
 * so `AgentClient` runs every session kind over it unchanged.
 */
import { HubReplyError } from './errors.js';
import type { Duplex } from 'node:stream';
import type { SocketAddress } from '../channels/connect.js';
import { ControlClient } from '../protocols/control/node-client.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { WirekitError } from '../errors.js';

export interface HubClientOptions {
  /** TLS to the hub: `true`, or Node TLS options (ca, servername). */
  tls?: boolean | { ca?: string | Buffer; servername?: string; rejectUnauthorized?: boolean };
  /** Time for connecting and each reply, in ms. Default 10,000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface AgentListing {
  id: string;
  hostname: string;
  address: string;
  version: string;
  capabilities: string[];
  properties: Record<string, unknown>;
  since: string;
  authenticated: boolean;
}


function rethrow(err: unknown): never {
  if (err instanceof RemoteCommandError) throw new HubReplyError(err.remoteCode ?? 'WK_REMOTE_COMMAND_FAILED', err.message);
  throw err;
}

export type HubCredentials = { token: string } | { username: string; password: string };

/** Connects to a hub's user port and authenticates. */
export async function connectHub(address: SocketAddress, credentials: HubCredentials, options: HubClientOptions = {}): Promise<HubSession> {
  const timeout = options.timeoutMs ?? 10_000;
  const client = await ControlClient.connect(address, { timeout, signal: options.signal, tls: options.tls });
  try {
    await client.waitGreeting({ timeout });
    if (client.version !== 'wirekit-hub/1') throw new WirekitError('WK_PROTOCOL', `not a wirekit hub (it greets as ${JSON.stringify(client.version)})`, { origin: 'remote' });
    await client.call('auth', credentials, { timeout }).catch(rethrow);
    return new HubSession(client, timeout);
  } catch (err) {
    client.close();
    throw err;
  }
}

export class HubSession {
  constructor(
    private readonly client: ControlClient,
    private readonly timeout: number,
  ) {}

  /** The token a password login was issued. */
  token(): Promise<{ token: string; expire: number }> {
    return this.client.call<{ token: string; expire: number }>('token', {}, { timeout: this.timeout }).catch(rethrow);
  }

  whoami(): Promise<{ username: string; isAdmin: boolean; groups: string[]; hub: string }> {
    return this.client.call<{ username: string; isAdmin: boolean; groups: string[]; hub: string }>('whoami', {}, { timeout: this.timeout }).catch(rethrow);
  }

  async agents(filter: readonly string[] = []): Promise<AgentListing[]> {
    const r = await this.client.call<{ agents: AgentListing[] }>('agents', { filter }, { timeout: this.timeout }).catch(rethrow);
    return r.agents;
  }

  /**
   * Drains the hub (admins only): its agents move to other hubs, `batch` every `intervalMs` (each
   * within `jitterMs`); resolves when they have gone. `onProgress` gets each batch's counts.
   */
  drain(
    options: { batch?: number; intervalMs?: number; jitterMs?: number; timeoutMs?: number; onProgress?: (p: { moved: number; remaining: number }) => void } = {},
  ): Promise<{ moved: number; remaining: number }> {
    const opts = { ...(options.batch === undefined ? {} : { batch: options.batch }), ...(options.intervalMs === undefined ? {} : { interval: options.intervalMs }), ...(options.jitterMs === undefined ? {} : { jitter: options.jitterMs }) };
    return this.client
      .call<{ moved: number; remaining: number }>('drain', opts, {
        timeout: options.timeoutMs ?? 3_600_000,
        ...(options.onProgress ? { onProgress: (m: unknown) => options.onProgress!(m as { moved: number; remaining: number }) } : {}),
      })
      .catch(rethrow);
  }

  /**
   * Routes this connection to `agent`: resolves with the raw stream, which from here on is a
   * connection to the agent's daemon (its greeting comes first). This session is used up.
   */
  async route(agent: string): Promise<Duplex> {
    const { stream } = await this.client.hijack('route', { agent }, { timeout: this.timeout }).catch(rethrow);
    return stream;
  }

  close(): void {
    this.client.close();
  }
}

export { HubReplyError };

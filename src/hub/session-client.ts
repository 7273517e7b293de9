/**
 * The agent protocol's client through the hub: an `AgentClient` whose connections are sessions
 * the hub opens to an agent (dial-back), used by the HTTP API's session endpoints.
 */
import type { Duplex } from 'node:stream';
import { AgentClient } from '../agent/client.js';
import { handOff } from '../channels/hand-off.js';
import type { Principal } from './allowlist.js';
import type { Hub } from './hub.js';

/**
 * An `AgentClient` whose every connection is a new session to agent `id` through the hub. Each
 * session is released when its stream closes; `onStream` sees the agent-side streams.
 */
export function hubAgentClient(hub: Hub, user: Principal, id: string, options: { signal?: AbortSignal; onStream?: (s: Duplex) => void } = {}): AgentClient {
  return new AgentClient({
    address: { kind: 'tcp', host: hub.name, port: 0, tls: false },
    label: `agent ${id} via hub ${hub.name}`,
    dial: async () => {
      const s = await hub.openSession(user, id, { signal: options.signal });
      s.stream.once('close', s.release);
      if (s.stream.destroyed) s.release();
      s.stream.on('error', () => {});
      options.onStream?.(s.stream);
      return handOff(s.stream, s.leftover);
    },
  });
}

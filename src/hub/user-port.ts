/**
 * The hub's user port: the agent control protocol (docs/agent.md) as the CLI speaks it to a
 * daemon, with the hub's own commands before a routing step. After `route`, the connection is
 * spliced to the agent's dial-back, and the client goes on exactly as if it had connected to that
 * agent's daemon directly (the agent greets it, already authenticated as the hub's user).
 *
 * ```
 * hub:    {"version":"wirekit-hub/1","auth":"token"}
 * client: {"cmd":"auth","opts":{"token":"<user token>"}}      or {"username":..,"password":..}
 * client: {"cmd":"agents","opts":{"filter":["site=lab"]}}     → {"agents":[...]}
 * client: {"cmd":"route","opts":{"agent":"dev1"}}             → {"agent":"dev1"}, then the agent's bytes
 * client: {"cmd":"drain","opts":{"batch":100,"interval":1000}} → progress {"moved","remaining"}…, {"moved","remaining"} (admins)
 * ```
 */
import type { Duplex } from 'node:stream';
import { ControlServer } from '../protocols/control/node-server.js';
import { WirekitError } from '../errors.js';
import type { Principal } from './allowlist.js';
import { HubAuthError, HubPermissionError, HubUsageError } from './errors.js';
import { parseFilter } from './filter.js';
import type { Hub } from './hub.js';
import { splice } from './splice.js';
import type { AgentEntry } from './registry.js';

export const HUB_PROTOCOL_VERSION = 'wirekit-hub/1';

interface UserConnection {
  user?: Principal;
  address: string;
  /** Set by a password login, for the `token` command to hand out. */
  issued?: { token: string; expire: number };
}

/** An agent as `wirekit ls` and `GET /api/agents` show it. */
export function describeAgent(a: AgentEntry<unknown>): Record<string, unknown> {
  return {
    id: a.id,
    hostname: a.hostname,
    address: a.address,
    version: a.version,
    capabilities: a.capabilities,
    properties: a.properties,
    since: new Date(a.since).toISOString(),
    authenticated: a.authenticated,
  };
}

export function userPortServer(hub: Hub): ControlServer<UserConnection> {
  const server = new ControlServer<UserConnection>({
    version: HUB_PROTOCOL_VERSION,
    greeting: { auth: 'token' },
    idleTimeout: 5 * 60_000,
    authenticate: {
      command: 'auth',
      async verify(opts, conn) {
        const o = (opts ?? {}) as { token?: unknown; username?: unknown; password?: unknown };
        const data = conn.data!;
        if (typeof o.token === 'string') {
          data.user = hub.authenticate(o.token);
          return true;
        }
        if (typeof o.username === 'string' && typeof o.password === 'string') {
          data.issued = await hub.login(o.username, o.password, data.address);
          data.user = hub.authenticate(data.issued.token);
          return true;
        }
        throw new HubAuthError('auth needs {"token"} or {"username","password"}');
      },
      response: { authenticated: true },
      closeOnFailure: true,
    },
    errorReply: (err) => {
      if (err instanceof WirekitError) return { message: err.message, code: err.code, close: err.code === 'WK_AUTH' || err.code === 'WK_LIMIT' };
      return undefined;
    },
  });
  const userOf = (conn: { data?: UserConnection }): Principal => {
    const u = conn.data?.user;
    if (!u) throw new HubAuthError('not authenticated');
    // Rights may have changed since the token was issued.
    return hub.users.principal(u.username) ?? (() => { throw new HubAuthError('the user no longer exists'); })();
  };
  server.command('auth', () => ({ authenticated: true }));
  server.command('token', (_opts, ctx) => {
    const issued = ctx.connection.data?.issued;
    if (!issued) throw new HubUsageError('no token was issued on this connection (log in with a password first)');
    return issued;
  });
  server.command('whoami', (_opts, ctx) => {
    const u = userOf(ctx.connection);
    return { username: u.username, isAdmin: u.isAdmin, groups: u.groups, hub: hub.name };
  });
  server.command('agents', (opts: { filter?: unknown }, ctx) => {
    const user = userOf(ctx.connection);
    const raw = opts.filter === undefined ? [] : Array.isArray(opts.filter) ? opts.filter : [opts.filter];
    if (!raw.every((f) => typeof f === 'string') || raw.length > 16) throw new HubUsageError('filter: up to 16 KEY=REGEX strings');
    return { agents: hub.listAgents(user, (raw as string[]).map(parseFilter)).map(describeAgent) };
  });
  server.command('drain', async (opts: { batch?: unknown; interval?: unknown; jitter?: unknown }, ctx) => {
    const user = userOf(ctx.connection);
    if (!user.isAdmin) throw new HubPermissionError(`${user.username} may not drain the hub (admins only)`);
    const int = (v: unknown, what: string, max: number) => {
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new HubUsageError(`drain: "${what}" must be an integer from 0 to ${max}`);
      return v;
    };
    const batchSize = int(opts.batch, 'batch', 1_000_000);
    const intervalMs = int(opts.interval, 'interval', 3_600_000);
    const jitterMs = int(opts.jitter, 'jitter', 3_600_000);
    // Not tied to this connection: a drain, once asked for, goes on if the admin's client goes.
    return hub.drain(
      { ...(batchSize === undefined ? {} : { batchSize }), ...(intervalMs === undefined ? {} : { intervalMs }), ...(jitterMs === undefined ? {} : { jitterMs }) },
      (p) => ctx.progress(p),
    );
  });
  server.command('route', async (opts: { agent?: unknown }, ctx) => {
    const user = userOf(ctx.connection);
    if (typeof opts.agent !== 'string') throw new HubUsageError('route needs {"agent": ID}');
    const session = await hub.openSession(user, opts.agent, { signal: ctx.signal });
    await ctx.reply({ agent: opts.agent });
    let userSide: Duplex;
    try {
      userSide = ctx.hijack();
    } catch (err) {
      session.stream.destroy();
      session.release();
      throw err;
    }
    userSide.on('error', () => {});
    void splice({ stream: userSide }, { stream: session.stream, leftover: session.leftover }).finally(session.release);
  });
  return server;
}

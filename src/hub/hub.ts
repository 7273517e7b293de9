/**
 * The hub itself: the agent registry, users and tokens, and the sessions waiting for their
 * agent's dial-back. The listeners (agent port, user port, HTTP API) are thin drivers that call
 * into it. Everything the hub keeps on disk is in its state directory.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { TimeoutError, AbortedError } from '../errors.js';
import { createLogger, type Logger } from '../agent/log.js';
import { mayOpen, type Principal } from './allowlist.js';
import { HubAuthError, HubDrainingError, HubLimitError, HubNotFoundError, HubPermissionError, HubUsageError, LockedOutError } from './errors.js';
import type { AgentFilter } from './filter.js';
import { LocalFleet, type FleetBackend } from './fleet.js';
import type { AttachMessage, RegisterMessage } from './link-messages.js';
import { LoginThrottle } from './login-throttle.js';
import { hashPassword, verifyPassword, DEFAULT_SCRYPT_COST, type ScryptCost } from './passwords.js';
import { AgentRegistry, isValidAgentId, type AgentEntry, type AgentInfo, type RegistryEvent } from './registry.js';
import { StateDir } from './state-dir.js';
import { TokenSigner, sameSecret } from './tokens.js';
import { Users, type UsersDocument } from './users.js';

/**
 * What the hub needs of an agent's link to open a session on it. Every session starts as a
 * connection that speaks the agent daemon's protocol (docs/agent.md), whatever the kind of agent:
 * - a wirekit agent's link implements `dial`: the agent dials back and its daemon serves the
 *   connection;
 * - a link that serves sessions itself implements `connect` (an Overlord ghost's link,
 *   src/hub/overlord/: the hub runs the daemon's side and translates each session kind to the
 *   ghost's), and the hub uses it instead of a dial-back.
 */
export interface AgentLinkHandle {
  /** `hub`: a fleet hub's agent port to dial back to instead of this hub's. */
  dial(sid: string, hub?: string): void;
  close(reason: string): void;
  /** Tells the agent to reconnect to another hub after `delayMs`, and ends the link (draining). */
  move?(delayMs: number): void;
  /** Opens a daemon-protocol connection to the agent without a dial-back (Overlord ghosts). */
  connect?(sid: string, signal?: AbortSignal): Promise<{ stream: Duplex; leftover: Uint8Array }>;
}

export interface HubOptions {
  /** The hub's name, told to agents and shown in logs. Default: `hub`. */
  name?: string;
  logger?: Logger;
  /** Agents at once. Default 20,000. */
  maxAgents?: number;
  /** Agent keepalive interval told to agents, in ms. Default 10,000. */
  keepaliveMs?: number;
  /** Sessions waiting for or running on one agent. Default 64. */
  maxSessionsPerAgent?: number;
  /** Sessions one user may have open at once. Default 64. */
  maxSessionsPerUser?: number;
  /** How long a session waits for its agent's dial-back, in ms. Default 10,000. */
  dialTimeoutMs?: number;
  /** User token lifetime, in seconds. Default 7 days. */
  tokenLifetimeS?: number;
  /** scrypt cost for new password hashes (tests lower it). */
  scryptCost?: ScryptCost;
  /** The other hubs of a fleet (nats-fleet.ts). Default: none, a hub alone. */
  fleet?: FleetBackend;
  /** The secret fleet hubs prove on a relay stream. Default: derived from hub.json's token secret. */
  fleetSecret?: Uint8Array;
}

interface HubSecrets {
  readonly version: 1;
  /** base64 */
  readonly tokenSecret: string;
  readonly enrollmentToken: string;
}

interface AgentTokens {
  readonly version: 1;
  /** agent id → SHA-256 (hex) of its token. */
  readonly agents: Record<string, string>;
}

interface Pending {
  readonly agentId: string;
  readonly user: string;
  resolve(v: { stream: Duplex; leftover: Uint8Array }): void;
  reject(err: Error): void;
}

export interface HubEvents {
  joined: [AgentEntry<AgentLinkHandle>];
  left: [AgentEntry<AgentLinkHandle>, 'closed' | 'timeout'];
  /** An Overlord ghost offers a download it started itself (`ghost.py --download`): its sid, the terminal's sid, the ghost. */
  'file download': [string, string, AgentEntry<AgentLinkHandle>];
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class Hub extends EventEmitter<HubEvents> {
  readonly registry: AgentRegistry<AgentLinkHandle>;
  readonly logger: Logger;
  readonly name: string;
  readonly keepaliveMs: number;
  readonly fleet: FleetBackend;
  private readonly pending = new Map<string, Pending>();
  /** The agent-side streams of running sessions, per agent: ended when the agent goes. */
  private readonly running = new Map<string, Set<Duplex>>();
  private readonly sessionsByAgent = new Map<string, number>();
  private readonly sessionsByUser = new Map<string, number>();
  private readonly throttle = new LoginThrottle();
  /** Set by `drain`: no new agents. */
  private draining = false;
  private readonly signer: TokenSigner;
  private readonly options: HubOptions;
  /** The agents.json write running, and the one waiting to follow it. */
  private tokensWriting: Promise<void> | undefined;
  private tokensQueued: Promise<void> | undefined;

  private constructor(
    readonly state: StateDir,
    readonly users: Users,
    private readonly secrets: HubSecrets,
    private readonly agentTokens: Record<string, string>,
    options: HubOptions,
  ) {
    super();
    this.options = options;
    this.name = options.name ?? 'hub';
    this.logger = options.logger ?? createLogger('warn');
    this.keepaliveMs = options.keepaliveMs ?? 10_000;
    this.fleet = options.fleet ?? new LocalFleet();
    this.registry = new AgentRegistry({ maxAgents: options.maxAgents, keepaliveTimeoutMs: 3 * this.keepaliveMs });
    this.signer = new TokenSigner(Buffer.from(secrets.tokenSecret, 'base64'), options.tokenLifetimeS);
  }

  /** Opens (creating if needed) the hub state in `dir`. */
  static async open(dir: string, options: HubOptions = {}): Promise<Hub> {
    const state = await StateDir.open(dir);
    let secrets = await state.read<HubSecrets>('hub.json');
    if (!secrets) {
      secrets = { version: 1, tokenSecret: randomBytes(32).toString('base64'), enrollmentToken: randomBytes(24).toString('base64url') };
      await state.write('hub.json', secrets);
    }
    if (secrets.version !== 1 || typeof secrets.tokenSecret !== 'string' || typeof secrets.enrollmentToken !== 'string') {
      throw new HubUsageError(`${dir}/hub.json is not a wirekit hub file`, 'local');
    }
    const users = new Users(await state.read<UsersDocument>('users.json'));
    const tokens = (await state.read<AgentTokens>('agents.json'))?.agents ?? {};
    return new Hub(state, users, secrets, { ...tokens }, options);
  }

  /** The token new agents enroll with (`wirekit serve --hub URL --enroll-token-file ...`). */
  get enrollmentToken(): string {
    return this.secrets.enrollmentToken;
  }

  // ---- users ----

  async addUser(username: string, password: string, isAdmin: boolean): Promise<void> {
    this.users.add(username, await hashPassword(password, this.options.scryptCost ?? DEFAULT_SCRYPT_COST), isAdmin);
    await this.saveUsers();
  }

  async setPassword(username: string, password: string): Promise<void> {
    this.users.setPassword(username, await hashPassword(password, this.options.scryptCost ?? DEFAULT_SCRYPT_COST));
    await this.saveUsers();
  }

  async removeUser(username: string): Promise<void> {
    this.users.remove(username);
    await this.saveUsers();
  }

  saveUsers(): Promise<void> {
    return this.state.write('users.json', this.users.toDocument());
  }

  /**
   * Checks a user's password and returns a signed token. Five failures from one address lock it
   * out for a while (`LockedOutError`); a wrong name or password is `HubAuthError`.
   */
  async login(username: string, password: string, address: string): Promise<{ token: string; expire: number }> {
    const now = Date.now();
    const until = this.throttle.lockedUntil(address, now);
    if (until > 0) throw new LockedOutError(address, until);
    const user = this.users.get(username);
    // Verify against a dummy hash for unknown users, so timing does not tell which names exist.
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
    if (!user || !ok) {
      this.throttle.fail(address, now);
      this.logger.warn(`hub: failed login for ${JSON.stringify(username.slice(0, 64))} from ${address}`);
      throw new HubAuthError('Authentication error');
    }
    this.throttle.succeed(address);
    return this.signer.sign(username, user.groups.includes('admin'), now);
  }

  /** The user a token names, still existing, with the rights they have now. */
  authenticate(token: string): Principal {
    const claims = this.signer.verify(token);
    const principal = this.users.principal(claims.username);
    if (!principal) throw new HubAuthError('invalid token');
    return principal;
  }

  // ---- agents ----

  /** Checks an agent's registration and adds it; throws the error the agent is refused with. */
  async registerAgent(msg: RegisterMessage, address: string, link: AgentLinkHandle): Promise<string | undefined> {
    if (this.draining) throw new HubDrainingError(this.name);
    if (!isValidAgentId(msg.id)) throw new HubUsageError(`invalid agent id ${JSON.stringify(msg.id.slice(0, 64))}`);
    let issued: string | undefined;
    if (this.knownAgentToken(msg.id, msg.token)) {
      // A returning agent with its own token.
    } else if (sameSecret(msg.token, this.secrets.enrollmentToken)) {
      if (this.registry.get(msg.id) === undefined) {
        issued = randomBytes(32).toString('base64url');
      }
    } else {
      this.logger.warn(`hub: agent ${JSON.stringify(msg.id.slice(0, 64))} from ${address} refused: wrong token`);
      throw new HubAuthError('wrong enrollment or agent token');
    }
    const event = this.registry.register(
      { id: msg.id, hostname: msg.hostname, properties: msg.properties, address, version: msg.version, capabilities: msg.capabilities, authenticated: true },
      link,
      Date.now(),
    );
    const hash = sha256(issued ?? msg.token);
    try {
      await this.fleet.claim(event.agent, hash);
    } catch (err) {
      this.registry.remove(msg.id, link);
      throw err;
    }
    if (issued !== undefined) {
      this.agentTokens[msg.id] = hash;
      await this.saveAgentTokens();
    }
    await this.fleet.shareAgentToken(msg.id, hash);
    this.logger.info(`hub: agent ${msg.id} joined from ${address}`);
    this.emitRegistry(event);
    return issued;
  }

  /** Whether `token` is agent `id`'s own token, as this hub or (an agent enrolled elsewhere) the fleet knows it. */
  private knownAgentToken(id: string, token: string): boolean {
    const local = this.agentTokens[id];
    if (local !== undefined && sameSecret(sha256(token), local)) return true;
    const shared = this.fleet.agentTokenHash(id);
    return shared !== undefined && sameSecret(sha256(token), shared);
  }

  /**
   * Writes agents.json with every token issued so far. One write at a time: tokens issued while a
   * write runs go out together in the next one (a fleet enrolling at once costs a few writes, not
   * one per agent, and no older snapshot can be renamed over a newer one).
   */
  private saveAgentTokens(): Promise<void> {
    if (this.tokensQueued) return this.tokensQueued;
    const queued: Promise<void> = (this.tokensWriting ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        // From here on, a new token needs a new write: this one may have taken its snapshot already.
        if (this.tokensQueued === queued) this.tokensQueued = undefined;
        this.tokensWriting = queued;
        return this.state.write('agents.json', { version: 1, agents: this.agentTokens } satisfies AgentTokens);
      })
      .finally(() => {
        if (this.tokensWriting === queued) this.tokensWriting = undefined;
      });
    this.tokensQueued = queued;
    return queued;
  }

  /**
   * Adds an agent that cannot authenticate (an Overlord ghost, src/hub/overlord/), marked
   * `authenticated: false`. Refused when the id is held by a connected agent (any kind) or was
   * ever enrolled by a wirekit agent (a ghost cannot take a known device's id). Added for the
   * Overlord compatibility listeners.
   */
  registerUnauthenticated(info: Omit<AgentInfo, 'authenticated'>, link: AgentLinkHandle): void {
    if (!isValidAgentId(info.id)) throw new HubUsageError(`invalid agent id ${JSON.stringify(info.id.slice(0, 64))}`);
    if (this.agentTokens[info.id] !== undefined && this.registry.get(info.id) === undefined) {
      throw new HubAuthError(`agent id ${info.id} belongs to an enrolled wirekit agent`);
    }
    const event = this.registry.register({ ...info, authenticated: false }, link, Date.now());
    this.logger.info(`hub: unauthenticated agent ${info.id} joined from ${info.address}`);
    this.emitRegistry(event);
  }

  agentSeen(id: string, link: AgentLinkHandle): void {
    this.registry.seen(id, link, Date.now());
  }

  /** The agent's link ended. */
  agentGone(id: string, link: AgentLinkHandle): void {
    const event = this.registry.remove(id, link);
    if (!event) return;
    this.logger.info(`hub: agent ${id} left`);
    this.fleet.release(id);
    this.endSessions(id);
    for (const [sid, p] of this.pending) {
      if (p.agentId === id) {
        this.pending.delete(sid);
        p.reject(new HubNotFoundError(`agent ${id} left`));
      }
    }
    this.emitRegistry(event);
  }

  /** Drops agents whose keepalive stopped (the links' own timers normally do it first). */
  expireAgents(): void {
    for (const event of this.registry.expire(Date.now())) {
      if (event.type === 'left') {
        event.agent.owner.close('keepalive timeout');
        this.fleet.release(event.agent.id);
        this.endSessions(event.agent.id);
      }
      this.emitRegistry(event);
    }
  }

  /** Ends every running session of agent `id` (its link is gone, so they are too). */
  private endSessions(id: string): void {
    const streams = this.running.get(id);
    if (!streams) return;
    this.running.delete(id);
    for (const s of streams) s.destroy();
  }

  private emitRegistry(event: RegistryEvent<AgentLinkHandle>): void {
    if (event.type === 'joined') this.emit('joined', event.agent);
    else this.emit('left', event.agent, event.reason);
  }

  /** Agents `user` may see (this hub's and, in a fleet, the other hubs'), filtered, sorted by id. */
  listAgents(user: Principal, filters: readonly AgentFilter[] = []): AgentEntry<AgentLinkHandle>[] {
    const local = this.registry.list(filters);
    const remote = this.fleet.listRemote(filters).filter((a) => this.registry.get(a.id) === undefined);
    const all = remote.length === 0 ? local : [...local, ...remote].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return all.filter((a) => mayOpen(user, a.properties));
  }

  /** The agent `id` if `user` may open it; `HubNotFoundError` / `HubPermissionError` otherwise. */
  agentFor(user: Principal, id: string): AgentEntry<AgentLinkHandle> {
    const agent = this.registry.get(id) ?? this.fleet.getRemote(id);
    if (!agent) throw new HubNotFoundError(`no agent ${id}`);
    if (!mayOpen(user, agent.properties)) throw new HubPermissionError(`${user.username} may not open agent ${id}`);
    return agent;
  }

  // ---- sessions ----

  /**
   * Asks agent `id` to dial back and resolves with the agent's side of the new connection (and any
   * bytes it sent past its handshake line) once it attached. The session counts against the agent's
   * and the user's limits until `release` is called.
   */
  openSession(user: Principal, id: string, options: { signal?: AbortSignal } = {}): Promise<{ stream: Duplex; leftover: Uint8Array; release: () => void }> {
    const agent = this.agentFor(user, id);
    const perAgent = this.options.maxSessionsPerAgent ?? 64;
    const perUser = this.options.maxSessionsPerUser ?? 64;
    if ((this.sessionsByAgent.get(id) ?? 0) >= perAgent) return Promise.reject(new HubLimitError(`agent ${id} has ${perAgent} sessions open`));
    if ((this.sessionsByUser.get(user.username) ?? 0) >= perUser) return Promise.reject(new HubLimitError(`${user.username} has ${perUser} sessions open`));
    const sid = this.fleet.newSessionId();
    const count = (m: Map<string, number>, k: string, d: number) => {
      const n = (m.get(k) ?? 0) + d;
      if (n <= 0) m.delete(k);
      else m.set(k, n);
    };
    count(this.sessionsByAgent, id, 1);
    count(this.sessionsByUser, user.username, 1);
    let released = false;
    let stream: Duplex | undefined;
    const release = () => {
      if (released) return;
      released = true;
      count(this.sessionsByAgent, id, -1);
      count(this.sessionsByUser, user.username, -1);
      if (stream) this.running.get(id)?.delete(stream);
    };
    const timeoutMs = this.options.dialTimeoutMs ?? 10_000;
    // A link that serves sessions itself (an Overlord ghost's) needs no dial-back.
    const connect = agent.owner.connect?.bind(agent.owner);
    if (connect) {
      return connect(sid, options.signal).then(
        (v) => {
          stream = v.stream;
          let set = this.running.get(id);
          if (!set) this.running.set(id, (set = new Set()));
          set.add(v.stream);
          v.stream.once('close', release);
          return { ...v, release };
        },
        (err: unknown) => {
          release();
          throw err;
        },
      );
    }
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.pending.delete(sid);
      };
      const fail = (err: Error) => {
        done();
        release();
        reject(err);
      };
      const timer = setTimeout(() => fail(new TimeoutError(`agent ${id} dialing back`, timeoutMs)), timeoutMs);
      const onAbort = () => fail(new AbortedError(`session to ${id}`, options.signal?.reason));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(sid, {
        agentId: id,
        user: user.username,
        resolve: (v) => {
          done();
          stream = v.stream;
          let set = this.running.get(id);
          if (!set) this.running.set(id, (set = new Set()));
          set.add(v.stream);
          v.stream.once('close', release);
          resolve({ ...v, release });
        },
        reject: fail,
      });
      agent.owner.dial(sid);
    });
  }

  /** How long a session waits for its agent's dial-back, in ms. */
  get dialTimeoutMs(): number {
    return this.options.dialTimeoutMs ?? 10_000;
  }

  /**
   * The secret the hubs of a fleet prove to each other on a relay stream (fleet-relay.ts): derived
   * from the token secret, which the hubs of one fleet share (hub.json), unless `fleetSecret` is set.
   */
  get fleetSecret(): Uint8Array {
    return this.options.fleetSecret ?? createHmac('sha256', Buffer.from(this.secrets.tokenSecret, 'base64')).update('wirekit fleet relay secret v1').digest();
  }

  /**
   * Relay, on the hub where the user waits: another fleet hub (already authenticated) offers the
   * bytes of session `sid` of agent `agentId`. Returns the user the session is for; throws when no
   * session waits for it.
   */
  relayOffer(sid: string, agentId: string): string {
    const p = this.pending.get(sid);
    if (!p || p.agentId !== agentId) throw new HubNotFoundError(`no session ${sid} waits for agent ${agentId}`);
    return p.user;
  }

  /** The relayed stream of session `sid` is ready; false when the session no longer waits (the caller closes it). */
  relayAttach(sid: string, agentId: string, stream: Duplex, leftover: Uint8Array): boolean {
    const p = this.pending.get(sid);
    if (!p || p.agentId !== agentId) return false;
    p.resolve({ stream, leftover });
    return true;
  }

  /**
   * Relay, on the agent's hub: asks agent `agentId` (on this hub) to dial back here for a session of
   * `user` that another hub relays, and resolves with the agent's stream once it attached.
   */
  awaitDialBack(agentId: string, user: string, timeoutMs = this.dialTimeoutMs): Promise<{ stream: Duplex; leftover: Uint8Array }> {
    const agent = this.registry.get(agentId);
    if (!agent) return Promise.reject(new HubNotFoundError(`agent ${agentId} left`));
    const sid = this.fleet.newSessionId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(sid);
        reject(new TimeoutError(`agent ${agentId} dialing back for a relay`, timeoutMs));
      }, timeoutMs);
      const settle = () => {
        clearTimeout(timer);
        this.pending.delete(sid);
      };
      this.pending.set(sid, {
        agentId,
        user,
        resolve: (v) => {
          settle();
          let set = this.running.get(agentId);
          if (!set) this.running.set(agentId, (set = new Set()));
          set.add(v.stream);
          v.stream.once('close', () => this.running.get(agentId)?.delete(v.stream));
          resolve(v);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      });
      agent.owner.dial(sid);
    });
  }

  /** The agent could not dial back for `sid`. */
  dialFailed(agentId: string, sid: string, message: string): void {
    const p = this.pending.get(sid);
    if (p && p.agentId === agentId) p.reject(new HubNotFoundError(`agent ${agentId} could not dial back: ${message}`));
    else if (!p) this.fleet.dialFailed(agentId, sid, message);
  }

  /**
   * A dial-back arrived: returns the user it is for, or throws (unknown sid, wrong agent or token).
   * On success the hub owns `stream` from now on.
   */
  attach(msg: AttachMessage, stream: Duplex, leftover: Uint8Array): string {
    const p = this.pending.get(msg.sid);
    if (!p || p.agentId !== msg.id || !this.knownAgentToken(msg.id, msg.token)) {
      throw new HubAuthError('no session waits for this dial-back');
    }
    p.resolve({ stream, leftover });
    return p.user;
  }

  /** Whether `drain` was called (the hub takes no new agents). */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Draining for maintenance: from now on no new agent is taken, and the agents here are told to
   * move to another hub (their next `--hub`), `batchSize` at a time every `intervalMs`, each after a
   * random delay within `jitterMs` (default: the interval), so the other hubs see a spread of
   * reconnects, not a herd. Sessions already running go on until they end or their agent leaves.
   * Resolves once every agent that can move has left (or `timeoutMs` after the last batch, default
   * 30 s), with how many were told to move and how many are still here. Links that cannot move
   * (Overlord ghosts) are left alone. `onBatch` is called after each batch.
   */
  async drain(
    options: { batchSize?: number; intervalMs?: number; jitterMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
    onBatch?: (progress: { moved: number; remaining: number }) => void,
  ): Promise<{ moved: number; remaining: number }> {
    this.draining = true;
    const batchSize = Math.max(1, options.batchSize ?? 100);
    const intervalMs = Math.max(0, options.intervalMs ?? 1000);
    const jitterMs = Math.max(0, options.jitterMs ?? intervalMs);
    const wait = (ms: number) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          options.signal?.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, ms);
        options.signal?.addEventListener('abort', done, { once: true });
      });
    const movable = () => this.registry.list().filter((a) => a.owner.move !== undefined);
    this.logger.info(`hub: draining ${movable().length} agents, ${batchSize} every ${intervalMs} ms`);
    let moved = 0;
    const told = new Set<AgentLinkHandle>();
    for (;;) {
      if (options.signal?.aborted) break;
      const batch = movable().filter((a) => !told.has(a.owner)).slice(0, batchSize);
      if (batch.length === 0) break;
      for (const a of batch) {
        told.add(a.owner);
        a.owner.move!(Math.floor(Math.random() * jitterMs));
        moved++;
      }
      const remaining = movable().length;
      onBatch?.({ moved, remaining });
      if (movable().every((a) => told.has(a.owner))) break;
      await wait(intervalMs);
    }
    // The links close as their move line is written; wait for the registry to show it.
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    while (movable().length > 0 && Date.now() < deadline && !options.signal?.aborted) await wait(50);
    const remaining = movable().length;
    this.logger.info(`hub: drained: ${moved} agents told to move, ${remaining} still here`);
    return { moved, remaining };
  }

  /** Ends every agent link and fails every waiting session. */
  close(): void {
    for (const agent of this.registry.list()) agent.owner.close('hub shutting down');
    for (const [sid, p] of this.pending) {
      this.pending.delete(sid);
      p.reject(new HubNotFoundError('hub shutting down'));
    }
  }
}

// A valid hash of a random password, verified for unknown users so a login takes the same time.
const DUMMY_HASH = `scrypt$15$8$1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;

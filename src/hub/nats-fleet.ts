/**
 * A fleet of hubs on NATS (Node driver; the records and messages are nats-records.ts).
 *
 * - Registry: one JetStream KV entry per agent (bucket `wirekit-agents`, its `max_age` is the entry
 *   TTL: NATS 2.9 has no per-key TTL). A hub claims an agent with create-if-absent, refreshes its
 *   claims every TTL/3 by compare-and-set on the revision it holds, and deletes a claim only at the
 *   revision it holds, so a dying hub cannot erase a fresh registration elsewhere. An entry that
 *   exists is taken over only when its hub says it no longer holds the agent or does not answer at
 *   all (no responders: that hub is gone); otherwise the newcomer is refused as a duplicate.
 * - Events: every hub watches the bucket; other hubs' entries appear in its listing and its monitor
 *   clients see `joined`/`left` for them. An entry not refreshed for a TTL is dropped locally too (an
 *   entry aged out by `max_age` leaves no delete marker to watch).
 * - Routing: a session to an agent on another hub is a NATS request to that hub (`dial`); it tells
 *   the agent to dial back to this hub's agent port. No responders means offline, answered at once.
 *   The session's bytes never go through NATS.
 * - Failure: without NATS the hub goes on serving its own agents (claims wait); on every
 *   (re)connect it restarts its watches, drops entries that vanished, and claims its agents again.
 */
import { randomUUID } from 'node:crypto';
import { connect, credsAuthenticator, ErrorCode, Events, type ConnectionOptions, type KV, type KvEntry, type NatsConnection, type QueuedIterator, type Subscription } from 'nats';
import { readFileSync } from 'node:fs';
import type { Logger } from '../agent/log.js';
import { DuplicateAgentError, HubBusyError, HubUsageError } from './errors.js';
import type { AgentFilter } from './filter.js';
import type { FleetBackend } from './fleet.js';
import type { AgentLinkHandle, Hub } from './hub.js';
import {
  AGENTS_BUCKET,
  TOKENS_BUCKET,
  agentKey,
  encodeJson,
  isValidHubId,
  parseAgentRecord,
  parseDialFailed,
  parseDialReply,
  parseDialRequest,
  parseHoldsReply,
  parseHoldsRequest,
  parseTokenRecord,
  subjects,
  type AgentRecord,
  type DialReply,
} from './nats-records.js';
import { AgentRegistry, type AgentEntry } from './registry.js';
import { openRelay, type OpenedRelay } from './fleet-relay.js';
import { splice } from './splice.js';

export interface NatsFleetOptions {
  /** NATS server URLs (`nats://host:port`, `tls://host:port`); several for a NATS cluster. */
  servers: readonly string[];
  /** This hub's id in the fleet (a subject token: letters, digits, `_`, `-`). */
  hubId: string;
  /** How long an agent's entry lives without a refresh, in ms (the bucket's max_age). Default 30,000. */
  ttlMs?: number;
  /** NATS user and password. */
  user?: string;
  pass?: string;
  /** NATS token. */
  token?: string;
  /** A NATS credentials file (JWT and NKey seed). */
  credsFile?: string;
  /** TLS to NATS: CA, and a client certificate and key. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
  /** Time for each NATS request, in ms. Default 2,000. */
  requestTimeoutMs?: number;
  /** Wait between reconnect attempts to NATS, in ms. Default 1,000. */
  reconnectWaitMs?: number;
  /** How long `start` waits for the first connection before going on alone, in ms. Default 5,000. */
  startTimeoutMs?: number;
  /** Claims written at once (registrations beyond wait their turn). Default 256. */
  concurrency?: number;
  /**
   * How long a registration waits for its turn to claim before the agent is refused `WK_HUB_BUSY`
   * (it retries with backoff and jitter), in ms. Default 5,000: with the claim's own requests it
   * stays within an agent's 10 s register timeout.
   */
  claimQueueMs?: number;
  /** Agents on other hubs this hub lists at most. Default 200,000. */
  maxRemoteAgents?: number;
  /** Sessions this hub relays for other hubs at once (fleet-relay.ts). Default 1,024. */
  maxRelays?: number;
}

/** A claim this hub holds (or means to: revision 0 until it is in the KV). */
interface Held {
  rev: number;
  value: Uint8Array;
}

const isWrongSequence = (err: unknown) => (err as { api_error?: { err_code?: number } } | undefined)?.api_error?.err_code === 10071;
const isNoResponders = (err: unknown) => (err as { code?: string } | undefined)?.code === ErrorCode.NoResponders;
const idOfKey = (key: string) => Buffer.from(key, 'base64url').toString('utf8');
const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** An agent on another hub: a dial goes to that hub by NATS. */
class RemoteLink implements AgentLinkHandle {
  constructor(
    private readonly fleet: NatsFleet,
    public record: AgentRecord,
    /** The entry's revision as the watch last delivered it. */
    public rev: number,
  ) {}
  dial(sid: string): void {
    this.fleet.requestDial(this.record, sid);
  }
  close(): void {}
}

export class NatsFleet implements FleetBackend {
  readonly hubId: string;
  readonly ttlMs: number;
  private hub!: Hub;
  private log!: Logger;
  private agentAddress = '';
  private relayAddress: string | undefined;
  private relayTls = false;
  /** Sessions this hub relays for other hubs now. */
  private relays = 0;
  private nc: NatsConnection | undefined;
  private agents: KV | undefined;
  private tokens: KV | undefined;
  /** NATS is there and the buckets are open. */
  private ready = false;
  private closing = false;
  private readonly held = new Map<string, Held>();
  /** One chain of KV operations per agent id, so a claim, its refreshes and its release never overlap. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly remote: AgentRegistry<AgentLinkHandle>;
  /** Which watch generation last confirmed each remote entry (entries not confirmed after a resync left). */
  private readonly confirmed = new Map<string, number>();
  private readonly tokenHashes = new Map<string, string>();
  /** Token hashes to write once NATS is back. */
  private readonly unsharedTokens = new Set<string>();
  /** Sessions other hubs asked this hub's agents for: sid → the asking hub, for a dialFailed. */
  private readonly forwarded = new Map<string, { from: string; at: number; relay?: string; relayTls?: boolean }>();
  private watchGen = 0;
  private watchers: QueuedIterator<KvEntry>[] = [];
  private subs: Subscription[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  private resyncing: Promise<void> | undefined;
  /** Registrations' claims in flight, and those waiting for a turn (first in, first out). */
  private claiming = 0;
  private readonly claimQueue: { go: () => void; timer: ReturnType<typeof setTimeout> }[] = [];
  private resyncAgain = false;

  constructor(private readonly options: NatsFleetOptions) {
    if (!isValidHubId(options.hubId)) throw new HubUsageError(`invalid fleet hub id ${JSON.stringify(options.hubId)} (letters, digits, _ and -, up to 64)`, 'local');
    if (options.servers.length === 0) throw new HubUsageError('a NATS fleet needs at least one server URL', 'local');
    this.hubId = options.hubId;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.remote = new AgentRegistry({ maxAgents: options.maxRemoteAgents ?? 200_000, keepaliveTimeoutMs: this.ttlMs + this.refreshMs });
  }

  private get refreshMs(): number {
    return Math.max(100, Math.floor(this.ttlMs / 3));
  }

  private get timeout(): number {
    return this.options.requestTimeoutMs ?? 2000;
  }

  /** Whether NATS is connected and the fleet state is in sync (tests, logs). */
  get connected(): boolean {
    return this.ready;
  }

  // ---- FleetBackend ----

  async start(hub: Hub, self: { agentAddress: string; relayAddress?: string; relayTls?: boolean }): Promise<void> {
    this.hub = hub;
    this.log = hub.logger;
    this.agentAddress = self.agentAddress;
    this.relayAddress = self.relayAddress;
    this.relayTls = self.relayTls === true;
    const o = this.options;
    const opts: ConnectionOptions = {
      servers: [...o.servers],
      name: `wirekit-hub ${this.hubId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectWaitMs ?? 1000,
      waitOnFirstConnect: true,
      // No stack captured per request: a registration costs several, and thousands come at once.
      noAsyncTraces: true,
      timeout: this.timeout,
      ...(o.user !== undefined ? { user: o.user, pass: o.pass } : {}),
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.credsFile !== undefined ? { authenticator: credsAuthenticator(new Uint8Array(readFileSync(o.credsFile))) } : {}),
      ...(o.tls ? { tls: { ...o.tls } } : {}),
    };
    const first = connect(opts).then((nc) => this.connected_(nc));
    const started = await Promise.race([first.then(() => true), delay(o.startTimeoutMs ?? 5000).then(() => false)]);
    if (!started) {
      this.log.warn(`hub: NATS (${o.servers.join(', ')}) not reachable yet; serving this hub's agents alone until it is`);
      first.catch((err: Error) => this.log.error(`hub: leaving the fleet: ${err.message}`));
    }
    this.timers.push(setInterval(() => this.tick(), this.refreshMs));
    for (const t of this.timers) t.unref();
  }

  async claim(agent: AgentEntry<AgentLinkHandle>, tokenHash: string): Promise<void> {
    this.held.set(agent.id, { rev: 0, value: this.recordOf(agent, tokenHash) });
    if (!this.ready) return;
    try {
      await this.turn();
    } catch (err) {
      this.held.delete(agent.id);
      throw err;
    }
    try {
      await this.enqueue(agent.id, () => this.claimHeld(agent.id));
    } catch (err) {
      if (err instanceof DuplicateAgentError) {
        this.held.delete(agent.id);
        throw err;
      }
      // NATS trouble: the agent is served here; its claim is written at the next refresh.
      this.log.warn(`hub: claim of ${agent.id} not stored yet: ${(err as Error).message}`);
    } finally {
      this.endTurn();
    }
  }

  /**
   * Waits for one of `concurrency` claim slots (the requests of concurrent claims are pipelined
   * on the one NATS connection); rejects with `HubBusyError` after `claimQueueMs` in the queue.
   */
  private turn(): Promise<void> {
    const limit = this.options.concurrency ?? 256;
    if (this.claiming < limit && this.claimQueue.length === 0) {
      this.claiming++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = {
        go: () => {
          clearTimeout(entry.timer);
          this.claiming++;
          resolve();
        },
        timer: setTimeout(() => {
          const i = this.claimQueue.indexOf(entry);
          if (i >= 0) this.claimQueue.splice(i, 1);
          reject(new HubBusyError(`hub ${this.hubId} has ${this.claiming + this.claimQueue.length} registrations in progress; retry later`));
        }, this.options.claimQueueMs ?? 5000),
      };
      entry.timer.unref?.();
      this.claimQueue.push(entry);
    });
  }

  private endTurn(): void {
    this.claiming--;
    const next = this.claimQueue.shift();
    if (next) next.go();
  }

  release(id: string): void {
    if (this.closing) return;
    void this.enqueue(id, async () => {
      const h = this.held.get(id);
      // The agent came back to this hub meanwhile: its new link holds the claim.
      if (!h || this.hub.registry.get(id) !== undefined) return;
      this.held.delete(id);
      if (h.rev > 0 && this.ready) await this.agents!.delete(agentKey(id), { previousSeq: h.rev });
    }).catch(() => {});
  }

  listRemote(filters: readonly AgentFilter[]): AgentEntry<AgentLinkHandle>[] {
    return this.remote.list(filters);
  }

  getRemote(id: string): AgentEntry<AgentLinkHandle> | undefined {
    return this.remote.get(id);
  }

  agentTokenHash(id: string): string | undefined {
    // The claim's own hash first: it arrives with the entry, before any dial-back can.
    const owner = this.remote.get(id)?.owner;
    return (owner instanceof RemoteLink ? owner.record.tokenSha256 : undefined) ?? this.tokenHashes.get(id);
  }

  async shareAgentToken(id: string, hash: string): Promise<void> {
    if (this.tokenHashes.get(id) === hash && !this.unsharedTokens.has(id)) return;
    this.tokenHashes.set(id, hash);
    this.unsharedTokens.add(id);
    if (this.ready) await this.putToken(id);
  }

  newSessionId(): string {
    return `${this.hubId}.${randomUUID()}`;
  }

  dialFailed(agentId: string, sid: string, message: string): void {
    const f = this.forwarded.get(sid);
    if (!f) return;
    this.forwarded.delete(sid);
    if (f.relay !== undefined) {
      void this.relayFor(agentId, sid, f.relay, f.relayTls === true, message, f.from);
      return;
    }
    this.nc?.publish(subjects.dialFailed(f.from), encodeJson({ sid, agent: agentId, message }));
  }

  /**
   * Agent `agentId` (here) could not dial back to hub `from`: relay the session over a hub-to-hub
   * stream to `from`'s relay port, with the agent dialing back to this hub instead.
   */
  private async relayFor(agentId: string, sid: string, relay: string, tls: boolean, why: string, from: string): Promise<void> {
    const fail = (message: string) => this.nc?.publish(subjects.dialFailed(from), encodeJson({ sid, agent: agentId, message }));
    if (this.relays >= (this.options.maxRelays ?? 1024)) return void fail(`${why} (and hub ${this.hubId} relays too many sessions already)`);
    this.relays++;
    let done = false;
    const finish = () => {
      if (!done) this.relays--;
      done = true;
    };
    let opened: OpenedRelay;
    try {
      opened = await openRelay(relay, { secret: this.hub.fleetSecret, from: this.hubId, sid, agent: agentId, tls, timeoutMs: this.timeout });
    } catch (err) {
      finish();
      this.log.warn(`hub: cannot relay ${sid} of ${agentId} to hub ${from}: ${(err as Error).message}`);
      return void fail(`${why}; relay through hub ${this.hubId}: ${(err as Error).message}`);
    }
    try {
      const back = await this.hub.awaitDialBack(agentId, opened.user);
      const leftover = opened.spliced();
      this.log.info(`hub: relaying ${sid} of ${agentId} to hub ${from} (the agent cannot reach it: ${why})`);
      void splice({ stream: opened.socket, leftover }, back).finally(finish);
    } catch (err) {
      finish();
      opened.failed(`${why}; and back to hub ${this.hubId}: ${(err as Error).message}`);
    }
  }

  /** Leaves the fleet cleanly: deletes this hub's claims (at the revisions it holds) and disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const nc = this.nc;
    if (nc && this.ready && this.agents) {
      const kv = this.agents;
      await pool([...this.held], this.options.concurrency ?? 256, ([id, h]) => (h.rev > 0 ? kv.delete(agentKey(id), { previousSeq: h.rev }) : Promise.resolve()));
    }
    this.ready = false;
    this.stopWatches();
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
  }

  // ---- connection and resync ----

  private async connected_(nc: NatsConnection): Promise<void> {
    if (this.closing) {
      await nc.close();
      return;
    }
    // Another live hub with this id would answer on its subjects: refuse to share them.
    try {
      await nc.request(subjects.ping(this.hubId), encodeJson({}), { timeout: 500 });
      await nc.close();
      throw new HubUsageError(`another hub in the fleet already has the id ${this.hubId} (set --name)`, 'local');
    } catch (err) {
      if (err instanceof HubUsageError) throw err;
    }
    this.nc = nc;
    this.subscribe(nc);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) {
          if (this.ready) this.log.warn(`hub: lost NATS; serving this hub's agents alone until it is back`);
          this.ready = false;
        } else if (s.type === Events.Reconnect) {
          this.log.info(`hub: NATS is back (${String(s.data)}); resyncing`);
          void this.resync();
        }
      }
    })().catch(() => {});
    await this.resync();
  }

  /** (Re)opens the buckets and watches, forgets what vanished, and claims every agent of this hub. */
  private resync(): Promise<void> {
    if (this.resyncing) {
      this.resyncAgain = true;
      return this.resyncing;
    }
    this.resyncing = (async () => {
      do {
        this.resyncAgain = false;
        try {
          await this.resyncOnce();
        } catch (err) {
          this.log.warn(`hub: fleet resync failed: ${(err as Error).message}; retrying`);
          this.ready = false;
          if (this.closing || this.nc?.isClosed()) break;
          await delay(this.options.reconnectWaitMs ?? 1000);
          this.resyncAgain = true;
        }
      } while (this.resyncAgain && !this.closing);
    })().finally(() => (this.resyncing = undefined));
    return this.resyncing;
  }

  private async resyncOnce(): Promise<void> {
    const nc = this.nc;
    if (!nc || this.closing) return;
    const js = nc.jetstream({ timeout: this.timeout });
    this.agents = await js.views.kv(AGENTS_BUCKET, { ttl: this.ttlMs, history: 1, timeout: this.timeout });
    this.tokens = await js.views.kv(TOKENS_BUCKET, { history: 1, timeout: this.timeout });
    await this.startWatches();
    this.ready = true;
    for (const id of [...this.unsharedTokens]) await this.putToken(id);
    // Every agent of this hub: claimed again (adopting its own entries, taking over dead hubs').
    const ids = this.hub.registry.list().map((a) => a.id);
    for (const id of ids) {
      const h = this.held.get(id);
      if (h) h.rev = 0;
    }
    await pool(ids, this.options.concurrency ?? 256, (id) => this.enqueue(id, () => this.claimOrLose(id)));
    this.log.info(`hub: in sync with the fleet (${ids.length} agents here, ${this.remote.size} on other hubs)`);
  }

  private stopWatches(): void {
    this.watchGen++;
    for (const w of this.watchers) w.stop();
    this.watchers = [];
  }

  private async startWatches(): Promise<void> {
    this.stopWatches();
    const gen = this.watchGen;
    const initAgents = new Promise<void>((resolve) => {
      void this.agents!.watch({ initializedFn: resolve }).then((w) => {
        this.watchers.push(w);
        void (async () => {
          for await (const e of w) {
            if (gen !== this.watchGen) break;
            this.onAgentEntry(e, gen);
          }
        })().catch(() => {});
      }, () => resolve());
    });
    const initTokens = new Promise<void>((resolve) => {
      void this.tokens!.watch({ initializedFn: resolve }).then((w) => {
        this.watchers.push(w);
        void (async () => {
          for await (const e of w) {
            if (gen !== this.watchGen) break;
            this.onTokenEntry(e);
          }
        })().catch(() => {});
      }, () => resolve());
    });
    await Promise.race([Promise.all([initAgents, initTokens]), delay(10 * this.timeout)]);
    // Entries the fresh watch did not deliver are gone from the KV.
    for (const a of this.remote.list()) {
      if ((this.confirmed.get(a.id) ?? -1) < gen) this.dropRemote(a.id, 'timeout');
    }
  }

  // ---- the registry watch ----

  private onAgentEntry(e: KvEntry, gen: number): void {
    const id = idOfKey(e.key);
    if (e.operation !== 'PUT') {
      this.dropRemote(id, 'closed');
      return;
    }
    let rec: AgentRecord;
    try {
      rec = parseAgentRecord(e.value);
    } catch (err) {
      this.log.warn(`hub: fleet entry ${e.key} ignored: ${(err as Error).message}`);
      return;
    }
    if (rec.id !== id) return;
    if (rec.hub === this.hubId) {
      // Ours. One this hub no longer holds (it restarted) is deleted now rather than at its TTL.
      this.dropRemote(id, undefined);
      if (!this.held.has(id) && this.hub.registry.get(id) === undefined) {
        void this.enqueue(id, async () => {
          if (!this.held.has(id)) await this.agents?.delete(e.key, { previousSeq: e.revision });
        }).catch(() => {});
      }
      return;
    }
    const cur = this.remote.get(id);
    if (cur && cur.owner instanceof RemoteLink && cur.owner.record.hub === rec.hub && cur.since === rec.since) {
      cur.owner.record = rec;
      cur.owner.rev = e.revision;
      this.remote.seen(id, cur.owner, Date.now());
      this.confirmed.set(id, gen);
      return;
    }
    if (cur) this.dropRemote(id, 'closed');
    // Held here too: a conflict that this hub's next refresh settles.
    if (this.hub.registry.get(id) !== undefined) return;
    const link = new RemoteLink(this, rec, e.revision);
    try {
      this.remote.register(
        { id, hostname: rec.hostname, properties: rec.properties, address: rec.address, version: rec.version, capabilities: rec.capabilities, authenticated: rec.authenticated },
        link,
        rec.since,
      );
    } catch (err) {
      this.log.warn(`hub: fleet agent ${id} not listed: ${(err as Error).message}`);
      return;
    }
    this.remote.seen(id, link, Date.now());
    this.confirmed.set(id, gen);
    this.hub.emit('joined', this.remote.get(id)!);
  }

  /** Forgets an agent of another hub (telling monitors it left, unless `reason` is undefined). */
  private dropRemote(id: string, reason: 'closed' | 'timeout' | undefined): void {
    const cur = this.remote.get(id);
    if (!cur) return;
    this.remote.remove(id, cur.owner);
    this.confirmed.delete(id);
    if (reason !== undefined && this.hub.registry.get(id) === undefined) this.hub.emit('left', cur, reason);
  }

  private onTokenEntry(e: KvEntry): void {
    const id = idOfKey(e.key);
    if (e.operation !== 'PUT') return;
    try {
      if (!this.unsharedTokens.has(id)) this.tokenHashes.set(id, parseTokenRecord(e.value).sha256);
    } catch (err) {
      this.log.warn(`hub: fleet token ${e.key} ignored: ${(err as Error).message}`);
    }
  }

  private async putToken(id: string): Promise<void> {
    const hash = this.tokenHashes.get(id);
    if (hash === undefined || !this.tokens) return;
    try {
      await this.tokens.put(agentKey(id), encodeJson({ v: 1, sha256: hash }));
      this.unsharedTokens.delete(id);
    } catch (err) {
      this.log.warn(`hub: token of ${id} not shared yet: ${(err as Error).message}`);
    }
  }

  // ---- claims ----

  private recordOf(agent: AgentEntry<unknown>, tokenSha256: string): Uint8Array {
    const rec: AgentRecord = {
      v: 1,
      id: agent.id,
      hub: this.hubId,
      hubAddress: this.agentAddress,
      hostname: agent.hostname,
      address: agent.address,
      version: agent.version,
      capabilities: agent.capabilities,
      properties: agent.properties,
      since: agent.since,
      authenticated: agent.authenticated,
      tokenSha256,
    };
    return encodeJson(rec);
  }

  private enqueue(id: string, fn: () => Promise<void>): Promise<void> {
    const run = (this.chains.get(id) ?? Promise.resolve()).then(fn);
    const settled = run.catch(() => {});
    this.chains.set(id, settled);
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id);
    });
    return run;
  }

  /**
   * Writes this hub's claim of `id`: create-if-absent; an existing entry is adopted when it is this
   * hub's, taken over (compare-and-set on the revision read) when its hub no longer holds the agent
   * or does not answer, and otherwise refused as a duplicate.
   */
  private async claimHeld(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h || this.hub.registry.get(id) === undefined || !this.agents) return;
    const kv = this.agents;
    const key = agentKey(id);
    // Another hub's entry as the watch delivered it (a failover: the dead hub's): the takeover rule
    // on that revision, without first failing a create and reading the entry. If the entry changed
    // since, the compare-and-set fails and the full claim below decides.
    const known = this.remote.get(id)?.owner;
    if (known instanceof RemoteLink && known.rev > 0 && known.record.hub !== this.hubId) {
      const holder = known.record.hub;
      if (await this.holds(holder, id)) throw new DuplicateAgentError(id);
      try {
        h.rev = await kv.update(key, h.value, known.rev);
        this.log.info(`hub: agent ${id} taken over from hub ${holder}`);
        return;
      } catch (err) {
        if (!isWrongSequence(err)) throw err;
      }
    }
    for (let attempt = 0; attempt < 4; attempt++) {
      // Create-if-absent (kv.create would read the entry on a conflict, and so does this loop).
      try {
        h.rev = await kv.put(key, h.value, { previousSeq: 0 });
        return;
      } catch (err) {
        if (!isWrongSequence(err)) throw err;
      }
      const cur = await kv.get(key);
      if (!cur) continue;
      if (cur.operation !== 'PUT') {
        // A delete marker: absent, so created at the marker's revision (as kv.create does).
        try {
          h.rev = await kv.update(key, h.value, cur.revision);
          return;
        } catch (err) {
          if (!isWrongSequence(err)) throw err;
          continue;
        }
      }
      let holder: string | undefined;
      try {
        holder = parseAgentRecord(cur.value).hub;
      } catch {
        holder = undefined;
      }
      if (holder !== undefined && holder !== this.hubId && (await this.holds(holder, id))) throw new DuplicateAgentError(id);
      try {
        h.rev = await kv.update(key, h.value, cur.revision);
        if (holder !== undefined && holder !== this.hubId) this.log.info(`hub: agent ${id} taken over from hub ${holder}`);
        return;
      } catch (err) {
        if (!isWrongSequence(err)) throw err;
      }
    }
    throw new DuplicateAgentError(id);
  }

  /** Claims `id` again; when another hub holds it, this hub's link of it is closed (the fleet's holder wins). */
  private async claimOrLose(id: string): Promise<void> {
    try {
      await this.claimHeld(id);
    } catch (err) {
      if (!(err instanceof DuplicateAgentError)) throw err;
      this.held.delete(id);
      this.log.warn(`hub: agent ${id} is held by another hub; closing its link here`);
      this.hub.registry.get(id)?.owner.close('agent id held by another hub');
    }
  }

  /** Refreshes the claim of `id` by compare-and-set on the revision held. */
  private async refresh(id: string): Promise<void> {
    const h = this.held.get(id);
    if (!h || !this.agents || this.hub.registry.get(id) === undefined) return;
    if (h.rev === 0) return this.claimOrLose(id);
    try {
      h.rev = await this.agents.update(agentKey(id), h.value, h.rev);
    } catch (err) {
      if (!isWrongSequence(err)) throw err;
      // Someone wrote it (or it aged out while NATS was away): claim it again, or lose it.
      h.rev = 0;
      await this.claimOrLose(id);
    }
  }

  /** Whether hub `hubId` says it holds agent `id`; a hub that does not answer holds nothing. */
  private async holds(hubId: string, id: string): Promise<boolean> {
    try {
      const m = await this.nc!.request(subjects.holds(hubId), encodeJson({ agent: id }), { timeout: this.timeout });
      return parseHoldsReply(m.data).held;
    } catch (err) {
      if (isNoResponders(err)) return false;
      // It is there but slow: do not take its agent away.
      return true;
    }
  }

  private tick(): void {
    const now = Date.now();
    for (const e of this.remote.expire(now)) {
      this.confirmed.delete(e.agent.id);
      if (this.hub.registry.get(e.agent.id) === undefined) this.hub.emit('left', e.agent, 'timeout');
    }
    for (const [sid, f] of this.forwarded) if (now - f.at > 60_000) this.forwarded.delete(sid);
    if (!this.ready || this.closing || this.resyncing) return;
    void pool([...this.held.keys()], this.options.concurrency ?? 256, (id) => this.enqueue(id, () => this.refresh(id))).catch(() => {});
    if (this.unsharedTokens.size > 0) for (const id of [...this.unsharedTokens]) void this.putToken(id);
  }

  // ---- routing ----

  /** Asks the hub holding `rec` to have the agent dial back to this hub for session `sid`. */
  requestDial(rec: AgentRecord, sid: string): void {
    const fail = (message: string) => this.hub.dialFailed(rec.id, sid, message);
    const nc = this.nc;
    if (!nc || !this.ready) return fail(`agent ${rec.id} is on hub ${rec.hub} and this hub has lost NATS`);
    void (async () => {
      // The dial-back is checked against the agent's token: know it before the agent arrives.
      if (!this.tokenHashes.has(rec.id) && this.tokens) {
        const t = await this.tokens.get(agentKey(rec.id)).catch(() => null);
        if (t && t.operation === 'PUT') this.onTokenEntry(t);
      }
      const m = await nc.request(subjects.dial(rec.hub), encodeJson({ sid, agent: rec.id, from: this.hubId, hub: this.agentAddress, ...(this.relayAddress === undefined ? {} : { relay: this.relayAddress, relayTls: this.relayTls }) }), { timeout: this.timeout });
      const reply = parseDialReply(m.data);
      if (!reply.ok) fail(reply.message);
    })().catch((err: unknown) => fail(isNoResponders(err) ? `its hub ${rec.hub} does not answer (offline)` : (err as Error).message));
  }

  private subscribe(nc: NatsConnection): void {
    const serve = (subject: string, handle: (data: Uint8Array) => unknown) => {
      this.subs.push(
        nc.subscribe(subject, {
          callback: (err, msg) => {
            if (err) return;
            let reply: unknown;
            try {
              reply = handle(msg.data);
            } catch (e) {
              reply = { ok: false, code: 'WK_MALFORMED', message: (e as Error).message };
            }
            if (msg.reply && reply !== undefined) msg.respond(encodeJson(reply));
          },
        }),
      );
    };
    serve(subjects.ping(this.hubId), () => ({ hub: this.hubId }));
    serve(subjects.holds(this.hubId), (data) => {
      const { agent } = parseHoldsRequest(data);
      return { held: this.held.has(agent) && this.hub.registry.get(agent) !== undefined };
    });
    serve(subjects.dial(this.hubId), (data): DialReply => {
      const req = parseDialRequest(data);
      const agent = this.hub.registry.get(req.agent);
      if (!agent) return { ok: false, code: 'WK_NOT_FOUND', message: `agent ${req.agent} is not on hub ${this.hubId}` };
      if (this.forwarded.size >= 100_000) return { ok: false, code: 'WK_LIMIT', message: `hub ${this.hubId} has too many dial-backs pending` };
      this.forwarded.set(req.sid, { from: req.from, at: Date.now(), ...(req.relay === undefined ? {} : { relay: req.relay, relayTls: req.relayTls === true }) });
      agent.owner.dial(req.sid, req.hub);
      return { ok: true };
    });
    serve(subjects.dialFailed(this.hubId), (data) => {
      const n = parseDialFailed(data);
      this.hub.dialFailed(n.agent, n.sid, n.message);
      return undefined;
    });
  }
}

/** Runs `fn` over `items`, `limit` at a time; failures are the callee's business. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

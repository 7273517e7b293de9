/**
 * Forwarded web services: an HTTP service that listens on an agent's side (a device's admin page,
 * noVNC), opened in a browser tab through the hub. docs/console.md, "Forwarded web services".
 *
 * Each forward gets an origin of its own, `SCHEME://LABEL.SUFFIX:PORT` from the pattern
 * `SCHEME://*.SUFFIX:PORT` (by default `http://*.localhost:PORT` of the hub's HTTP listener, which
 * browsers resolve to loopback), with a random 128-bit LABEL. Its pages therefore share nothing with
 * the console's origin: not its cookie (host-only), not its storage, and the hub's API refuses their
 * WebSockets and non-GET requests by Origin.
 *
 * Authorization: `POST /api/agents/{id}/web-forward {"port","host"?,"path"?}` (the console's user,
 * who must be allowed to open the agent) makes the forward and answers with a URL on its origin
 * that carries a capability: 32 random bytes, good once, for 60 s. Opening it exchanges the
 * capability for a cookie `wirekit_forward` (HttpOnly, SameSite=Strict, host-only: that origin
 * alone) on a small page that then moves on to the service by `<meta refresh>` (a same-origin
 * navigation, so the Strict cookie goes with it; its `Referrer-Policy: no-referrer` keeps the
 * capability out of the service's logs). Every request after that must carry the cookie; the hub
 * re-checks the user's token (expired, user removed) and their right to open the agent each time,
 * and refuses requests a browser marks as coming from another origin (`Sec-Fetch-Site` other than
 * `same-origin` or `none`; without it, a foreign `Origin`), so a sibling forward or another site
 * cannot use the cookie.
 *
 * Proxying: each request is one forward session to the agent (the same `forward` session kind as
 * `wirekit forward` and `WS /api/agents/{id}/forward`), HTTP/1.1 over it with `Connection: close`;
 * `Host` (and an `Origin` of the forward's own) are rewritten to the target's, the hub's cookie is
 * removed, and `Location` headers pointing at the target are rewritten to the forward's origin.
 * WebSocket upgrades (noVNC) are relayed raw after the rewritten request head. Backpressure is the
 * streams' own (pipe).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Principal } from './allowlist.js';
import { mayOpen } from './allowlist.js';
import { HttpError } from './errors.js';
import type { HubHttpApi } from './http-api.js';
import { ok, readJson, requestToken } from './http-api.js';
import { hubAgentClient } from './session-client.js';

export const FORWARD_COOKIE = 'wirekit_forward';
/** The path on a forward's origin where the capability is exchanged for the cookie. */
export const FORWARD_LOGIN_PATH = '/.wirekit-forward-login';

export interface WebForwardOptions {
  /**
   * The forwards' origin pattern, `http(s)://*.SUFFIX[:PORT]` (the `*` is the random label); false
   * turns forwarded web services off. Unset: `http(s)://*.localhost:PORT` of the hub's HTTP
   * listener, set by startHub once it listens (`setOrigin`).
   */
  origin?: string | false;
  /** How long a capability URL may wait to be opened. Default 60 s. */
  capabilityTtlMs?: number;
  /** Forwards one user may hold. Default 32; past it the oldest goes. */
  maxPerUser?: number;
  /** Forwards in all. Default 4096. */
  maxForwards?: number;
  /** Connecting to the service on the agent's side. Default 10 s. */
  connectTimeoutMs?: number;
  /** Set the Secure flag on the forward cookie (https origins get it regardless). */
  secureCookie?: boolean;
}

interface Forward {
  readonly label: string;
  readonly origin: string;
  readonly username: string;
  /** The user's hub token: checked again on every request (expiry, user removed). */
  readonly token: string;
  readonly agentId: string;
  readonly host: string;
  readonly port: number;
  capability: Buffer | undefined;
  readonly capabilityExpires: number;
  readonly secret: Buffer;
}

interface OriginPattern {
  readonly scheme: 'http' | 'https';
  /** `.localhost`: what follows the label. */
  readonly suffix: string;
  /** `:7780` or ''. */
  readonly port: string;
}

export function parseForwardOrigin(pattern: string): OriginPattern {
  const m = /^(https?):\/\/\*((?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)(:\d{1,5})?\/?$/i.exec(pattern);
  if (!m) throw new HttpError(400, `forward origin must look like http://*.localhost:7780, not ${JSON.stringify(pattern)}`, 'WK_USAGE');
  return { scheme: m[1]!.toLowerCase() as 'http' | 'https', suffix: m[2]!.toLowerCase(), port: m[3] ?? '' };
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

function cookieValue(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Cookie header without the hub's own cookies (the service never sees them). */
function serviceCookies(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const kept = header
    .split(';')
    .map((p) => p.trim())
    .filter((p) => {
      const name = p.slice(0, Math.max(0, p.indexOf('='))).trim();
      return p !== '' && name !== FORWARD_COOKIE && name !== 'wirekit_token';
    });
  return kept.length > 0 ? kept.join('; ') : undefined;
}

const sameBytes = (a: Buffer, b: Buffer) => a.length === b.length && timingSafeEqual(a, b);

function fromBase64url(s: string | null | undefined): Buffer | undefined {
  if (!s || !/^[A-Za-z0-9_-]{43}$/.test(s)) return undefined;
  return Buffer.from(s, 'base64url');
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The forwards of one hub HTTP API, and the handler of every request to a forward's origin. */
export class WebForwards {
  private pattern: OriginPattern | undefined;
  private readonly byLabel = new Map<string, Forward>();
  private readonly ttl: number;
  private readonly maxPerUser: number;
  private readonly max: number;
  private readonly connectTimeout: number;

  constructor(
    private readonly api: HubHttpApi,
    private readonly options: WebForwardOptions = {},
  ) {
    if (options.origin) this.pattern = parseForwardOrigin(options.origin);
    this.ttl = options.capabilityTtlMs ?? 60_000;
    this.maxPerUser = options.maxPerUser ?? 32;
    this.max = options.maxForwards ?? 4096;
    this.connectTimeout = options.connectTimeoutMs ?? 10_000;
  }

  /** Sets the origin pattern (see `WebForwardOptions.origin`); forwards made before keep theirs. */
  setOrigin(origin: string | false): void {
    this.pattern = origin === false ? undefined : parseForwardOrigin(origin);
  }

  /** The origin pattern, or undefined when forwarded web services are off. */
  get origin(): string | undefined {
    const p = this.pattern;
    return p && `${p.scheme}://*${p.suffix}${p.port}`;
  }

  get enabled(): boolean {
    return this.pattern !== undefined;
  }

  get size(): number {
    return this.byLabel.size;
  }

  /**
   * The forward label a Host header names (`wk-` and 32 hex digits, then the pattern's suffix and
   * port), or undefined when it is not a forward origin's host. Only such labels are taken, so a
   * console whose own host name happens to match the pattern (`hub.example.net` under
   * `*.example.net`) is still the console.
   */
  labelOf(host: string | undefined): string | undefined {
    const p = this.pattern;
    if (!p || !host) return undefined;
    const h = host.toLowerCase();
    const m = /^(wk-[0-9a-f]{32})(\.[^:]+)(:\d+)?$/.exec(h);
    if (!m || m[2] !== p.suffix) return undefined;
    const port = m[3] ?? '';
    const defaultPort = p.scheme === 'https' ? ':443' : ':80';
    return port === p.port || (port === '' && p.port === defaultPort) || (port === defaultPort && p.port === '') ? m[1] : undefined;
  }

  /** Registers `POST /api/agents/{id}/web-forward`. */
  registerRoutes(): void {
    this.api.route('POST', /^\/api\/agents\/([^/]+)\/web-forward$/, async ({ req, url, res, user, agent }) => {
      if (!this.pattern) throw new HttpError(404, 'forwarded web services are turned off on this hub');
      const u = user();
      const a = agent(u);
      const body = (await readJson(req, 4096)) as { port?: unknown; host?: unknown; path?: unknown } | null;
      const port = body?.port;
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new HttpError(400, 'port must be 1..65535');
      const host = body?.host ?? 'localhost';
      if (typeof host !== 'string' || !/^[A-Za-z0-9.:_-]{1,253}$/.test(host)) throw new HttpError(400, 'host must be a host name or address');
      const path = body?.path ?? '/';
      if (typeof path !== 'string' || !/^\/(?![/\\])[^\s\\]{0,2047}$/.test(path)) throw new HttpError(400, 'path must start with a single / and hold no spaces');
      const f = this.create(u, requestToken(req, url)!, a.id, host, port);
      this.api.hub.logger.info(`hub: ${u.username} opened a web forward to ${host}:${port} on ${a.id} (${f.origin})`);
      const capability = f.capability!.toString('base64url');
      ok(res, { url: `${f.origin}${FORWARD_LOGIN_PATH}?cap=${capability}&next=${encodeURIComponent(path)}`, origin: f.origin, expires: Math.floor(f.capabilityExpires / 1000) });
    });
  }

  private create(user: Principal, token: string, agentId: string, host: string, port: number): Forward {
    const p = this.pattern!;
    this.sweep();
    const mine = [...this.byLabel.values()].filter((f) => f.username === user.username);
    if (mine.length >= this.maxPerUser) this.byLabel.delete(mine[0]!.label);
    if (this.byLabel.size >= this.max) throw new HttpError(429, 'too many forwarded web services on this hub', 'WK_LIMIT');
    const label = `wk-${randomBytes(16).toString('hex')}`;
    const f: Forward = {
      label,
      origin: `${p.scheme}://${label}${p.suffix}${p.port}`,
      username: user.username,
      token,
      agentId,
      host,
      port,
      capability: randomBytes(32),
      capabilityExpires: Date.now() + this.ttl,
      secret: randomBytes(32),
    };
    this.byLabel.set(label, f);
    return f;
  }

  /** Drops forwards whose capability went unused past its time, or whose user's token is no longer valid. */
  private sweep(): void {
    const now = Date.now();
    for (const f of this.byLabel.values()) {
      if ((f.capability && now > f.capabilityExpires) || !this.principal(f)) this.byLabel.delete(f.label);
    }
  }

  private principal(f: Forward): Principal | undefined {
    try {
      return this.api.hub.authenticate(f.token);
    } catch {
      return undefined;
    }
  }

  /**
   * The forward a request may use, or an HTTP error: the cookie must match, the user's token still
   * be valid, the agent connected and open to them, and the request not come from another origin.
   */
  private authorize(req: http.IncomingMessage, label: string): { f: Forward; user: Principal } {
    const f = this.byLabel.get(label);
    const given = fromBase64url(cookieValue(req, FORWARD_COOKIE));
    if (!f || !given || !sameBytes(given, f.secret)) throw new HttpError(401, 'open this service from the wirekit console');
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    if (site !== undefined ? site !== 'same-origin' && site !== 'none' : origin !== undefined && origin !== f.origin) {
      throw new HttpError(403, 'a request from another origin');
    }
    const user = this.principal(f);
    if (!user) {
      this.byLabel.delete(f.label);
      throw new HttpError(401, 'your hub session ended; open this service from the console again');
    }
    const agent = this.api.hub.registry.get(f.agentId) ?? this.api.hub.fleet.getRemote(f.agentId);
    if (!agent) throw new HttpError(502, `agent ${f.agentId} is not connected`, 'WK_NOT_FOUND');
    if (!mayOpen(user, agent.properties)) throw new HttpError(403, 'Unauthorized', 'WK_PERMISSION');
    return { f, user };
  }

  private async connect(f: Forward, user: Principal): Promise<Duplex> {
    const client = hubAgentClient(this.api.hub, user, f.agentId, { signal: AbortSignal.timeout(this.connectTimeout) });
    return client.forward(f.host, f.port);
  }

  private targetHost(f: Forward): string {
    return `${f.host.includes(':') ? `[${f.host}]` : f.host}:${f.port}`;
  }

  /** The request's headers for the service: hop-by-hop ones dropped, Host, Origin and Cookie rewritten. */
  private serviceHeaders(req: http.IncomingMessage, f: Forward, upgrade: boolean): [string, string][] {
    const out: [string, string][] = [['Host', this.targetHost(f)]];
    const raw = req.rawHeaders;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      let value = raw[i + 1]!;
      if (HOP_BY_HOP.has(lower) || lower === 'cookie') continue;
      if (lower === 'origin' && value === f.origin) value = `http://${this.targetHost(f)}`;
      if (lower === 'referer' && value.startsWith(f.origin + '/')) value = `http://${this.targetHost(f)}${value.slice(f.origin.length)}`;
      out.push([name, value]);
    }
    const cookies = serviceCookies(req.headers.cookie);
    if (cookies) out.push(['Cookie', cookies]);
    if (upgrade) {
      out.push(['Connection', 'Upgrade'], ['Upgrade', req.headers.upgrade ?? 'websocket']);
    } else out.push(['Connection', 'close']);
    return out;
  }

  /** The capability exchange: a cookie for this origin, then on to the service. */
  private login(req: http.IncomingMessage, res: http.ServerResponse, label: string, url: URL): void {
    const f = this.byLabel.get(label);
    const cap = fromBase64url(url.searchParams.get('cap'));
    if (!f || !f.capability || !cap || !sameBytes(cap, f.capability) || Date.now() > f.capabilityExpires) {
      return plain(res, 401, 'This link is used up or expired; open the service from the wirekit console again.');
    }
    f.capability = undefined; // once
    const nextParam = url.searchParams.get('next') ?? '/';
    const next = /^\/(?![/\\])[^\s\\"<>]*$/.test(nextParam) ? nextParam : '/';
    const secure = this.options.secureCookie || this.pattern!.scheme === 'https' ? '; Secure' : '';
    const page = `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=${next.replace(/&/g, '&amp;')}"><title>wirekit forward</title><p>Opening the service on ${escapeHtml(f.agentId)}…</p>`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(page),
      'set-cookie': `${FORWARD_COOKIE}=${f.secret.toString('base64url')}; Path=/; HttpOnly; SameSite=Strict${secure}`,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      'x-content-type-options': 'nosniff',
    });
    res.end(page);
  }

  /** Serves a request to a forward's origin (`label` from labelOf). */
  async request(req: http.IncomingMessage, res: http.ServerResponse, label: string): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://forward');
    } catch {
      return plain(res, 400, 'bad request');
    }
    if (url.pathname === FORWARD_LOGIN_PATH && req.method === 'GET') return this.login(req, res, label, url);
    let conn: Duplex;
    let f: Forward;
    try {
      const a = this.authorize(req, label);
      f = a.f;
      conn = await this.connect(f, a.user);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 502;
      return plain(res, status, status === 502 && !(err instanceof HttpError) ? `cannot reach the service: ${(err as Error).message}` : (err as Error).message);
    }
    conn.on('error', () => {});
    const headers = this.serviceHeaders(req, f, false);
    const out = http.request({
      method: req.method,
      path: req.url,
      headers: headers.flat(),
      createConnection: () => conn as unknown as import('node:net').Socket,
    } as http.RequestOptions);
    const fail = (err: Error) => {
      this.api.hub.logger.debug(`hub forward ${f.agentId}:${f.port}: ${err.message}`);
      if (!res.headersSent) plain(res, 502, `the service failed: ${err.message}`);
      else res.destroy();
      conn.destroy();
    };
    out.on('error', fail);
    out.on('response', (sr) => {
      const h: [string, string][] = [];
      const raw = sr.rawHeaders;
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const lower = raw[i]!.toLowerCase();
        let value = raw[i + 1]!;
        if (HOP_BY_HOP.has(lower)) continue;
        if (lower === 'set-cookie' && value.trimStart().startsWith(`${FORWARD_COOKIE}=`)) continue;
        if (lower === 'location') value = this.rewriteLocation(value, f);
        h.push([raw[i]!, value]);
      }
      res.writeHead(sr.statusCode ?? 502, sr.statusMessage, h.flat());
      sr.pipe(res);
      sr.on('error', () => res.destroy());
    });
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
      conn.destroy();
    });
    req.pipe(out);
  }

  private rewriteLocation(value: string, f: Forward): string {
    for (const prefix of [`http://${this.targetHost(f)}`, ...(f.port === 80 ? [`http://${f.host}`] : [])]) {
      if (value === prefix || value.startsWith(prefix + '/') || value.startsWith(prefix + '?')) return f.origin + value.slice(prefix.length);
    }
    return value;
  }

  /** Relays a WebSocket (or any) upgrade to a forward's origin: the rewritten head, then raw bytes. */
  async upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, label: string): Promise<void> {
    socket.on('error', () => {});
    const refuse = (status: number, text: string) => socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    let conn: Duplex;
    let f: Forward;
    try {
      const a = this.authorize(req, label);
      f = a.f;
      conn = await this.connect(f, a.user);
    } catch (err) {
      return void refuse(err instanceof HttpError ? err.status : 502, (err as Error).message);
    }
    if (socket.destroyed) return void conn.destroy();
    conn.on('error', () => socket.destroy());
    socket.on('error', () => conn.destroy());
    socket.on('close', () => conn.destroy());
    conn.on('close', () => socket.destroy());
    const lines = [`${req.method} ${req.url} HTTP/1.1`, ...this.serviceHeaders(req, f, true).map(([k, v]) => `${k}: ${v}`), '', ''];
    conn.write(lines.join('\r\n'));
    if (head.length > 0) conn.write(head);
    socket.pipe(conn);
    conn.pipe(socket);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

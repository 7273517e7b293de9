/**
 * The hub's HTTP and WebSocket API, in the shape of Overlord's current one: JSON replies wrapped
 * as `{"status":"success","data":...}` or `{"status":"error","data":"<message>"}`, a login that
 * returns a signed token, the token as `Authorization: Bearer`, `?token=` (WebSockets) or an
 * HttpOnly SameSite=Strict cookie. Every WebSocket upgrade checks the token and the Origin header
 * before upgrading. Session endpoints (tty, shell, exec, forward, file) are in `http-sessions.ts`.
 */
import { HttpError } from './errors.js';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { WirekitError } from '../errors.js';
import type { Principal } from './allowlist.js';
import { mayOpen } from './allowlist.js';
import { parseFilter } from './filter.js';
import type { Hub } from './hub.js';
import type { AgentEntry } from './registry.js';
import { describeAgent } from './user-port.js';
import { WebForwards } from './web-forward.js';

export interface HttpApiOptions {
  /**
   * Origins allowed to open WebSockets besides the hub's own (same host and port as the request's
   * Host header). A request without Origin (a CLI, a script) is allowed: Origin is what browsers
   * send, and it is a browser's cross-site request that must be refused.
   */
  allowedOrigins?: readonly string[];
  /** Largest JSON request body, in bytes. Default 64 KiB. */
  maxJsonBody?: number;
  /** Set the Secure flag on the token cookie (when served over TLS). */
  secureCookie?: boolean;
  /**
   * Forwarded web services (web-forward.ts): their origin pattern (`http://*.localhost:7780`), or
   * false for none. Unset: `http(s)://*.localhost:PORT` of the listener, set by startHub.
   */
  forwardOrigin?: string | false;
}

export const TOKEN_COOKIE = 'wirekit_token';


export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(text);
}

export const ok = (res: http.ServerResponse, data: unknown, headers?: http.OutgoingHttpHeaders) => sendJson(res, 200, { status: 'success', data }, headers);

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status;
  if (err instanceof WirekitError) {
    switch (err.code) {
      case 'WK_AUTH':
        return 401;
      case 'WK_PERMISSION':
        return 401; // Overlord answers allowlist denials with 401 Unauthorized
      case 'WK_NOT_FOUND':
        return 404;
      case 'WK_LIMIT':
        return 429;
      case 'WK_TIMEOUT':
        return 504;
      default:
        return 400;
    }
  }
  return 500;
}

export function sendError(res: http.ServerResponse, err: unknown): void {
  const status = statusOf(err);
  const message = status === 500 ? 'internal error' : (err as Error).message;
  if (!res.headersSent) sendJson(res, status, { status: 'error', data: message });
  else res.destroy();
}

export function readJson(req: http.IncomingMessage, max: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max) return reject(new HttpError(413, `request body over ${max} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new HttpError(413, `request body over ${max} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null'));
      } catch {
        reject(new HttpError(400, 'Invalid request'));
      }
    });
    req.on('error', reject);
  });
}

function cookieToken(req: http.IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/** The request's token: Bearer header, then `?token=`, then the cookie. */
export function requestToken(req: http.IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const parts = auth.split(' ');
    if (parts.length === 2 && parts[0] === 'Bearer') return parts[1];
    return undefined;
  }
  return url.searchParams.get('token') ?? cookieToken(req);
}

/** The host name of a Host header (without the port; IPv6 brackets kept, as URL.hostname has them). */
function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
}

export function peerAddress(req: http.IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Serves what no route matched; true when it answered, false for a 404. */
export type Fallback = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;

export type RouteHandler = (ctx: RouteContext) => void | Promise<void>;
export type UpgradeHandler = (ctx: UpgradeContext) => void | Promise<void>;

export interface RouteContext {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
  readonly params: readonly string[];
  /** The authenticated user (throws 401 when the request carries no valid token). */
  user(): Principal;
  /** The agent named by the first path parameter, if `user` may open it. */
  agent(user: Principal): AgentEntry<unknown>;
}

export interface UpgradeContext {
  readonly req: http.IncomingMessage;
  readonly url: URL;
  readonly params: readonly string[];
  readonly user: Principal;
  /** Completes the upgrade. */
  accept(): Promise<WebSocket>;
  agent(): AgentEntry<unknown>;
}

interface Route<H> {
  readonly method: string;
  readonly pattern: RegExp;
  readonly handler: H;
}

/** The HTTP side of a hub: routes, WebSocket upgrades with token and Origin checks. */
export class HubHttpApi {
  private readonly routes: Route<RouteHandler>[] = [];
  private readonly upgrades: Route<UpgradeHandler>[] = [];
  /** Upgrades served before any token or Origin check (Overlord ghosts' `/connect`; see rawUpgrade). */
  private readonly rawUpgrades = new Map<string, (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void>();
  readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly maxJson: number;
  private fallback: Fallback | undefined;
  /** Forwarded web services: every request to one of their origins goes there, and nowhere else. */
  readonly forwards: WebForwards;

  constructor(
    readonly hub: Hub,
    private readonly options: HttpApiOptions = {},
  ) {
    this.maxJson = options.maxJsonBody ?? 64 * 1024;
    this.forwards = new WebForwards(this, { origin: options.forwardOrigin, secureCookie: options.secureCookie });
    this.coreRoutes();
    this.forwards.registerRoutes();
  }

  route(method: string, pattern: RegExp, handler: RouteHandler): void {
    this.routes.push({ method, pattern, handler });
  }

  /** As `route`, but ahead of the routes added so far (the web root's `/api/apps` over the empty list). */
  routeFirst(method: string, pattern: RegExp, handler: RouteHandler): void {
    this.routes.unshift({ method, pattern, handler });
  }

  websocket(pattern: RegExp, handler: UpgradeHandler): void {
    this.upgrades.push({ method: 'GET', pattern, handler });
  }

  /**
   * Serves upgrades of exactly `path` with `handler`, before and without the token and Origin
   * checks. Added for Overlord ghosts (`GET /connect`), which cannot authenticate and are let in
   * only when the operator turns them on (src/hub/overlord/).
   */
  rawUpgrade(path: string, handler: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void): void {
    this.rawUpgrades.set(path, handler);
  }

  /** Serves what no route matched (the console's static files); return false for a 404. */
  setFallback(fn: Fallback): void {
    this.fallback = fn;
  }

  /** Tries `fn` first, then the fallback there was (the operator's web root before the console). */
  prependFallback(fn: Fallback): void {
    const next = this.fallback;
    this.fallback = async (req, res, url) => (await fn(req, res, url)) || (next !== undefined && (await next(req, res, url)));
  }

  /** Attaches to an HTTP(S) server's `request` and `upgrade` events. */
  attach(server: http.Server): void {
    server.on('request', (req, res) => void this.handle(req, res));
    server.on('upgrade', (req, socket, head) => void this.handleUpgrade(req, socket, head));
  }

  private authenticate(req: http.IncomingMessage, url: URL): Principal {
    const token = requestToken(req, url);
    if (!token) throw new HttpError(401, 'JWT token required');
    try {
      return this.hub.authenticate(token);
    } catch {
      throw new HttpError(401, 'invalid token');
    }
  }

  private agentFor(user: Principal, id: string | undefined): AgentEntry<unknown> {
    const agent = id === undefined ? undefined : (this.hub.registry.get(id) ?? this.hub.fleet.getRemote(id));
    if (!agent) throw new HttpError(404, `No client with mid ${id}`);
    if (!mayOpen(user, agent.properties)) throw new HttpError(401, 'Unauthorized', 'WK_PERMISSION');
    return agent;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const label = this.forwards.labelOf(req.headers.host);
    if (label !== undefined) return this.forwards.request(req, res, label);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://hub');
    } catch {
      return sendError(res, new HttpError(400, 'Invalid request'));
    }
    const path = url.pathname;
    // Cross-site request forgery: a browser attaches the SameSite=Strict cookie to a form POST from
    // another port of the same host (SameSite ignores ports), without a preflight. Any request that
    // changes something and carries a foreign Origin is refused, as WebSocket upgrades are.
    if (req.method !== 'GET' && req.method !== 'HEAD' && !this.originAllowed(req)) {
      this.hub.logger.warn(`hub http: ${req.method} ${path} from origin ${req.headers.origin} refused`);
      return sendError(res, new HttpError(403, 'origin not allowed'));
    }
    let allowed = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      allowed = true;
      if (r.method !== req.method) continue;
      const params = m.slice(1).map((p) => decodeURIComponent(p));
      let user: Principal | undefined;
      const ctx: RouteContext = {
        req,
        res,
        url,
        params,
        user: () => (user ??= this.authenticate(req, url)),
        agent: (u) => this.agentFor(u, params[0]),
      };
      try {
        await r.handler(ctx);
      } catch (err) {
        if (statusOf(err) === 500) this.hub.logger.error(`hub http: ${req.method} ${path}: ${(err as Error).stack ?? String(err)}`);
        sendError(res, err);
      }
      return;
    }
    if (allowed) return sendError(res, new HttpError(405, 'method not allowed'));
    try {
      if (await this.fallback?.(req, res, url)) return;
    } catch (err) {
      this.hub.logger.error(`hub http: ${req.method} ${path}: ${(err as Error).stack ?? String(err)}`);
      return sendError(res, err);
    }
    sendError(res, new HttpError(404, 'not found'));
  }

  /** Same origin as the request's Host, or one of the allowed origins; no Origin (not a browser) passes. */
  originAllowed(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    if (this.options.allowedOrigins?.includes(origin)) return true;
    try {
      const o = new URL(origin);
      if (o.protocol === 'http:' || o.protocol === 'https:') return o.host === req.headers.host;
      // ovl's WebSocket library (ws4py) sends its ws:// or wss:// URL's scheme and host as Origin.
      // No browser sends such an Origin (a page's origin is http(s) or "null"), so it is no
      // cross-site request; the host must still be the one asked for (ports compared loosely:
      // the URL parser drops a default port that ws4py keeps in Host).
      if (o.protocol === 'ws:' || o.protocol === 'wss:') return o.hostname === hostnameOf(req.headers.host);
      return false;
    } catch {
      return false;
    }
  }

  private async handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => {});
    const label = this.forwards.labelOf(req.headers.host);
    if (label !== undefined) return this.forwards.upgrade(req, socket, head, label);
    const refuse = (status: number, message: string) => {
      const body = JSON.stringify({ status: 'error', data: message });
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://hub');
    } catch {
      return refuse(400, 'Invalid request');
    }
    const raw = this.rawUpgrades.get(url.pathname);
    if (raw) return raw(req, socket, head);
    const route = this.upgrades.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).find((x) => x.m);
    if (!route) return refuse(404, 'not found');
    if (!this.originAllowed(req)) {
      this.hub.logger.warn(`hub http: WebSocket ${url.pathname} from origin ${req.headers.origin} refused`);
      return refuse(403, 'origin not allowed');
    }
    let user: Principal;
    try {
      user = this.authenticate(req, url);
    } catch (err) {
      return refuse(statusOf(err), (err as Error).message);
    }
    const params = route.m!.slice(1).map((p) => decodeURIComponent(p));
    let accepted = false;
    const ctx: UpgradeContext = {
      req,
      url,
      params,
      user,
      agent: () => this.agentFor(user, params[0]),
      accept: () =>
        new Promise((resolve) => {
          accepted = true;
          this.wss.handleUpgrade(req, socket, head, (ws) => resolve(ws));
        }),
    };
    try {
      await route.r.handler(ctx);
    } catch (err) {
      if (!accepted) refuse(statusOf(err), statusOf(err) === 500 ? 'internal error' : (err as Error).message);
      else this.hub.logger.warn(`hub http: WebSocket ${url.pathname}: ${(err as Error).message}`);
    }
  }

  private coreRoutes(): void {
    this.route('POST', /^\/api\/auth\/login$/, async ({ req, res }) => {
      const body = (await readJson(req, this.maxJson)) as { username?: unknown; password?: unknown } | null;
      if (typeof body?.username !== 'string' || typeof body.password !== 'string') throw new HttpError(401, 'Invalid request');
      let issued: { token: string; expire: number };
      try {
        issued = await this.hub.login(body.username, body.password, peerAddress(req));
      } catch (err) {
        if (err instanceof WirekitError && err.code === 'WK_LIMIT') throw new HttpError(401, 'Too many failed attempts', 'WK_LIMIT');
        throw new HttpError(401, 'Authentication error');
      }
      const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(issued.token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(0, issued.expire - Math.floor(Date.now() / 1000))}${this.options.secureCookie ? '; Secure' : ''}`;
      ok(res, issued, { 'set-cookie': cookie });
    });
    this.route('POST', /^\/api\/auth\/logout$/, ({ res }) => {
      ok(res, null, { 'set-cookie': `${TOKEN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` });
    });
    this.route('GET', /^\/api\/agents$/, ({ url, res, user }) => {
      const filters = url.searchParams.getAll('filter').map(parseFilter);
      ok(res, this.hub.listAgents(user(), filters).map((a) => ({ mid: a.id, sid: a.id, ...describeAgent(a) })));
    });
    this.route('GET', /^\/api\/agents\/([^/]+)\/properties$/, ({ res, user, agent }) => {
      ok(res, agent(user()).properties);
    });
    this.route('GET', /^\/api\/whoami$/, ({ res, user }) => {
      const u = user();
      ok(res, { username: u.username, is_admin: u.isAdmin, groups: u.groups });
    });
    this.route('GET', /^\/api\/apps$/, ({ res }) => ok(res, []));
    this.websocket(/^\/api\/monitor$/, async ({ user, accept }) => {
      const ws = await accept();
      const send = (event: string, agent: AgentEntry<unknown>) => {
        if (!mayOpen(user, agent.properties)) return;
        // Backpressure: a monitor that does not read is dropped rather than buffered without bound.
        if (ws.bufferedAmount > 1024 * 1024) return ws.terminate();
        ws.send(JSON.stringify({ event, data: [JSON.stringify({ mid: agent.id, sid: agent.id }), describeAgent(agent)] }));
      };
      const joined = (a: AgentEntry<unknown>) => send('agent joined', a);
      const left = (a: AgentEntry<unknown>) => send('agent left', a);
      // Overlord's `file download` event: `[sid, terminal_sid]` (the dashboard then fetches
      // /api/sessions/{sid}/file for a terminal it has open), to users allowed on the ghost.
      const download = (sid: string, terminalSid: string, agent: AgentEntry<unknown>) => {
        if (!mayOpen(user, agent.properties)) return;
        if (ws.bufferedAmount > 1024 * 1024) return ws.terminate();
        ws.send(JSON.stringify({ event: 'file download', data: [sid, terminalSid] }));
      };
      this.hub.on('joined', joined);
      this.hub.on('left', left);
      this.hub.on('file download', download);
      const ping = setInterval(() => ws.ping(), 30_000);
      ws.on('message', () => {});
      ws.on('close', () => {
        clearInterval(ping);
        this.hub.off('joined', joined);
        this.hub.off('left', left);
        this.hub.off('file download', download);
      });
    });
  }
}

export { HttpError };

/**
 * The parts of Overlord's current HTTP API that `ovl` and the Overlord dashboard use beyond the
 * hub's own routes (http-api.ts, http-sessions.ts, http-files.ts):
 *
 * - users and groups under `/api/users` and `/api/groups` (admins; anyone else gets Overlord's
 *   plain-text `403 Admin privileges required`), and `PUT /api/users/self/password` for any user;
 * - `GET /api/agents/{mid}/fs` (`op=lstree|fstat`, `path`), `POST .../fs/symlinks`
 *   (`target`, `dest`) and `POST .../fs/directories` (`path`, `perm` in decimal, default 493):
 *   sent to a current-generation Overlord ghost as `list_tree`, `fstat`, `create_symlink`,
 *   `mkdir`, its payload passed back as `data`. A wirekit agent has no such requests, nor has a
 *   classic ghost: 400 with a message that says so;
 * - `POST /api/agents/upgrade` (admins): `upgrade` (timeout -1, never answered) to every ghost
 *   connected to this hub.
 *
 * Replies and error strings follow overlordd (see docs/overlord.md, "The HTTP API").
 */
import type http from 'node:http';
import { WirekitError } from '../errors.js';
import type { Principal } from './allowlist.js';
import { HttpError, ok, peerAddress, readJson, sendJson, type HubHttpApi, type RouteContext } from './http-api.js';
import { GhostLink } from './overlord/ghost-link.js';
import { ghostPortOf } from './overlord/ghost-port.js';
import { agentFstat, agentMkdir, agentSymlink, type FsReply } from './agent-fs.js';
import { mayOpen } from './allowlist.js';
import { encodeRequest, NO_REPLY } from '../protocols/overlord/index.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { AgentEntry } from './registry.js';

const MAX_JSON = 64 * 1024;
const ADMIN_REQUIRED = 'Admin privileges required';

/** A reply of plain text (overlordd's http.Error), not the JSON wrapper. */
function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) + 1, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text + '\n');
}

type Handler = (ctx: RouteContext, user: Principal) => void | Promise<void>;

/** Runs `fn` for an admin; a non-admin gets the plain-text 403 (a missing token is still 401 JSON). */
function admin(fn: Handler): (ctx: RouteContext) => Promise<void> {
  return async (ctx) => {
    const user = ctx.user();
    if (!user.isAdmin) return sendText(ctx.res, 403, ADMIN_REQUIRED);
    await fn(ctx, user);
  };
}

async function body(req: http.IncomingMessage, invalid: string): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = await readJson(req, MAX_JSON);
  } catch (err) {
    if (err instanceof HttpError && err.status === 413) throw err;
    throw new HttpError(400, invalid);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, invalid);
  return v as Record<string, unknown>;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** The agent as a current-generation ghost connected here, or undefined (fs through exec: agent-fs.ts). */
function fsGhost(agent: AgentEntry<unknown>): GhostLink | undefined {
  const link = agent.owner;
  return link instanceof GhostLink && link.generation === 'current' ? link : undefined;
}

/** Writes an fs reply as overlordd does: the payload as data, 500 with `{error}` on a failure. */
function fsReply(res: http.ServerResponse, r: FsReply): void {
  if (r.ok) return ok(res, r.payload);
  sendJson(res, 500, { status: 'error', data: { error: r.error } });
}

/** Sends an fs request and writes overlordd's reply: the payload as data, 500 with it on a ghost error. */
async function fsCall(res: http.ServerResponse, link: GhostLink, name: string, payload: Record<string, unknown>): Promise<void> {
  const r = await link.call(name, payload);
  if (!r) throw new WirekitError('WK_PROTOCOL', `ghost ${link.mid} gave no reply to ${name}`, { origin: 'remote' });
  if (r.ok) return ok(res, r.payload);
  sendJson(res, 500, { status: 'error', data: r.payload ?? { error: r.error ?? 'failed' } });
}

/** Adds users, groups, fs and upgrade routes to `api`. */
export function registerOverlordApi(api: HubHttpApi): void {
  const hub = api.hub;
  const users = hub.users;
  const seg = '([^/]+)';

  // ---- ghost.py's self-upgrade: the file the operator names (--ghost-upgrade-file), else 404 ----
  api.route('GET', /^\/upgrade\/ghost\.py(\.sha1)?$/, async ({ res, params }) => {
    const file = ghostPortOf(hub)?.ghostUpgradeFile;
    if (!file) throw new HttpError(404, 'Not found');
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (err) {
      hub.logger.warn(`hub overlord: cannot read the ghost upgrade file ${file}: ${(err as Error).message}`);
      throw new HttpError(404, 'Not found');
    }
    const sha1 = params[0] === '.sha1';
    const out = sha1 ? Buffer.from(createHash('sha1').update(data).digest('hex') + '\n') : data;
    res.writeHead(200, { 'content-type': sha1 ? 'text/plain; charset=utf-8' : 'text/x-python', 'content-length': out.length, 'cache-control': 'no-store' });
    res.end(out);
  });

  // ---- a download a ghost started itself (ghost.py --download in a terminal), as the dashboard fetches it ----
  api.route('GET', new RegExp(`^/api/sessions/${seg}/file$`), async ({ res, params, user }) => {
    const u = user();
    const port = ghostPortOf(hub);
    const sid = params[0]!;
    const d = port?.peekDownload(sid);
    if (!port || !d) throw new HttpError(404, `No download session with ID ${sid}`);
    const agent = hub.registry.get(d.mid);
    if (agent && !mayOpen(u, agent.properties)) throw new HttpError(403, 'Forbidden');
    if (!port.takeDownload(sid)) throw new HttpError(404, `No download session with ID ${sid}`);
    const { socket, leftover } = d.child.raw();
    socket.write(encodeRequest(d.child.generation, randomBytes(16).toString('hex'), 'clear_to_download', null, NO_REPLY));
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${d.filename.split('/').pop()!.replace(/["\r\n\\]/g, '')}"`,
      'content-length': d.size,
      'cache-control': 'no-store',
    });
    let got = 0;
    const take = (b: Uint8Array): boolean => {
      const part = b.subarray(0, Math.min(b.length, d.size - got));
      got += part.length;
      if (part.length && !res.write(part)) {
        socket.pause();
        res.once('drain', () => socket.resume());
      }
      return got >= d.size;
    };
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.destroy();
        resolve();
      };
      res.once('close', done);
      if (d.size === 0 || (leftover.length > 0 && take(leftover))) return done();
      socket.on('data', (b: Uint8Array) => {
        if (take(b)) done();
      });
      socket.once('end', done);
      socket.once('close', done);
      socket.resume();
    });
    // A ghost that sent less than it announced: the reply is cut short (the client sees it).
    if (got < d.size) res.destroy();
    else res.end();
  });

  // ---- users (self first: a user named "self" is not reachable by the admin routes, as in Overlord) ----
  api.route('PUT', /^\/api\/users\/self\/password$/, async ({ req, res, user }) => {
    const me = user();
    let b: Record<string, unknown>;
    try {
      b = await body(req, 'Invalid request format');
    } catch (err) {
      return sendText(res, err instanceof HttpError ? err.status : 400, (err as Error).message);
    }
    try {
      // Through login: the same throttle as the login route guards this password check.
      await hub.login(me.username, str(b.current_password), peerAddress(req));
    } catch (err) {
      if (err instanceof WirekitError && err.code === 'WK_LIMIT') return sendText(res, 401, 'Too many failed attempts');
      return sendText(res, 401, 'Current password is incorrect');
    }
    if (str(b.new_password) === '') return sendText(res, 400, 'New password is required');
    try {
      await hub.setPassword(me.username, str(b.new_password));
    } catch (err) {
      return sendText(res, 500, `Failed to update password: ${(err as Error).message}`);
    }
    sendJson(res, 200, { status: 'success', data: 'Password updated successfully' });
  });
  api.route('GET', /^\/api\/users$/, admin(({ res }) => ok(res, users.list())));
  api.route(
    'POST',
    /^\/api\/users$/,
    admin(async ({ req, res }) => {
      const b = await body(req, 'Invalid request');
      const username = str(b.username);
      const password = str(b.password);
      if (!username || !password) throw new HttpError(400, 'Username and password are required');
      await hub.addUser(username, password, b.is_admin === true);
      ok(res, { message: 'User created successfully' });
    }),
  );
  api.route(
    'DELETE',
    new RegExp(`^/api/users/${seg}$`),
    admin(async ({ res, params }, me) => {
      if (params[0] === me.username) throw new HttpError(400, 'you cannot delete yourself');
      await hub.removeUser(params[0]!);
      ok(res, { message: 'User deleted successfully' });
    }),
  );
  api.route(
    'PUT',
    new RegExp(`^/api/users/${seg}/password$`),
    admin(async ({ req, res, params }) => {
      const b = await body(req, 'Invalid request');
      if (!str(b.password)) throw new HttpError(400, 'Password is required');
      await hub.setPassword(params[0]!, str(b.password));
      ok(res, { message: 'Password updated successfully' });
    }),
  );

  // ---- groups ----
  api.route('GET', /^\/api\/groups$/, admin(({ res }) => ok(res, users.listGroups())));
  api.route(
    'POST',
    /^\/api\/groups$/,
    admin(async ({ req, res }) => {
      const b = await body(req, 'Invalid request');
      if (!str(b.name)) throw new HttpError(400, 'Group name is required');
      users.addGroup(str(b.name));
      await hub.saveUsers();
      ok(res, { message: 'Group created successfully' });
    }),
  );
  api.route(
    'DELETE',
    new RegExp(`^/api/groups/${seg}$`),
    admin(async ({ res, params }) => {
      users.removeGroup(params[0]!);
      await hub.saveUsers();
      ok(res, { message: 'Group deleted successfully' });
    }),
  );
  api.route('GET', new RegExp(`^/api/groups/${seg}/users$`), admin(({ res, params }) => ok(res, users.groupMembers(params[0]!))));
  api.route(
    'POST',
    new RegExp(`^/api/groups/${seg}/users$`),
    admin(async ({ req, res, params }) => {
      const b = await body(req, 'Invalid request format');
      if (!str(b.username)) throw new HttpError(400, 'Username is required');
      users.addToGroup(params[0]!, str(b.username));
      await hub.saveUsers();
      ok(res, { message: 'User added to group successfully' });
    }),
  );
  api.route(
    'DELETE',
    new RegExp(`^/api/groups/${seg}/users/${seg}$`),
    admin(async ({ res, params }) => {
      users.removeFromGroup(params[0]!, params[1]!);
      await hub.saveUsers();
      ok(res, { message: 'User removed from group successfully' });
    }),
  );

  // ---- fs (Overlord ghosts of the current generation) ----
  api.route('GET', new RegExp(`^/api/agents/${seg}/fs$`), async ({ res, url, user, agent }) => {
    const a = agent(user());
    const path = url.searchParams.get('path') ?? '';
    if (!path) throw new HttpError(400, 'path parameter is required');
    const op = url.searchParams.get('op') || 'lstree';
    if (op !== 'lstree' && op !== 'fstat') throw new HttpError(400, `Unknown operation ${op.slice(0, 64)}`);
    const g = fsGhost(a);
    if (g) return fsCall(res, g, op === 'lstree' ? 'list_tree' : 'fstat', { path });
    if (op === 'lstree') {
      throw new HttpError(400, `${a.id} is ${a.version.startsWith('overlord') ? 'a classic Overlord ghost (or one on another hub of the fleet)' : 'a wirekit agent'}: lstree (ovl pull) is for current Overlord ghosts (use wirekit cp)`);
    }
    fsReply(res, await agentFstat(hub, user(), a.id, path));
  });
  api.route('POST', new RegExp(`^/api/agents/${seg}/fs/symlinks$`), async ({ res, url, user, agent }) => {
    const a = agent(user());
    const target = url.searchParams.get('target') ?? '';
    const dest = url.searchParams.get('dest') ?? '';
    if (!target) throw new HttpError(400, 'target parameter is required');
    if (!dest) throw new HttpError(400, 'dest parameter is required');
    const g = fsGhost(a);
    if (g) return fsCall(res, g, 'create_symlink', { target, dest });
    fsReply(res, await agentSymlink(hub, user(), a.id, target, dest));
  });
  api.route('POST', new RegExp(`^/api/agents/${seg}/fs/directories$`), async ({ res, url, user, agent }) => {
    const a = agent(user());
    const path = url.searchParams.get('path') ?? '';
    if (!path) throw new HttpError(400, 'path parameter is required');
    const permText = url.searchParams.get('perm') ?? '';
    // Decimal, as ovl sends it (`%d` of a mode, possibly with its file-type bits); passed on as is.
    if (permText !== '' && !/^\d{1,10}$/.test(permText)) throw new HttpError(400, 'invalid perm parameter');
    const perm = permText === '' ? 0o755 : Number(permText);
    if (perm > 0x7fffffff) throw new HttpError(400, 'invalid perm parameter');
    const g = fsGhost(a);
    if (g) return fsCall(res, g, 'mkdir', { path, perm });
    fsReply(res, await agentMkdir(hub, user(), a.id, path, perm));
  });

  // ---- upgrade ----
  api.route(
    'POST',
    /^\/api\/agents\/upgrade$/,
    admin(async ({ res }) => {
      const failed: string[] = [];
      for (const a of hub.registry.list()) {
        if (!(a.owner instanceof GhostLink)) continue; // wirekit agents are upgraded by their own packaging
        try {
          await a.owner.call('upgrade', null, -1);
        } catch {
          failed.push(a.id);
        }
      }
      if (failed.length > 0) return sendJson(res, 500, { status: 'error', data: `Failed to send upgrade request for agents: ${failed.join(', ')}` });
      ok(res, null);
    }),
  );
}

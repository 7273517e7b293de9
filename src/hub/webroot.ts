/**
 * An operator's web root on the hub's HTTP port (`wirekit hub --overlord-webroot DIR`), as
 * overlordd serves its `webroot` directory: `DIR/index.html` at `/`, every other file at its path
 * (Overlord's dashboard is built into `DIR/apps/dashboard/`, its page copied to `DIR/index.html`),
 * and `GET /api/apps` lists the directories of `DIR/apps`.
 *
 * Only what no API route matched comes here, and what the web root does not have goes on to the
 * hub's own console (console-assets.ts). Safe by construction: GET and HEAD only; the path is
 * decoded once and refused if a segment is empty, `.`/`..`, starts with a dot (hidden files and
 * `.git` are not served) or holds `\`, NUL or control characters; the file's real path (symlinks
 * resolved) must stay inside the web root's real path; no directory listings (a directory serves
 * its `index.html`, a request for it without the final slash is redirected as overlordd does).
 * Cache: names with a content hash (`name-HASH.js|css|...`, as Vite writes them) under an `assets`
 * directory are cached for a year (`immutable`); everything else is revalidated (`no-cache`, with an
 * ETag of size and mtime, answered 304).
 */
import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type http from 'node:http';
import { ok, type HubHttpApi } from './http-api.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.py': 'text/x-python; charset=utf-8',
  '.sha1': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json',
};

/** A built asset whose name carries its content hash (`index-DqOl--Fg.css`) under an `assets` directory. */
const HASHED = /(^|\/)assets\/(?:[^/]+\/)*[^/]+[-.][A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

/** The path below the web root as safe relative segments, or undefined when it is refused. */
export function webrootSegments(pathname: string): string[] | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return undefined;
  }
  if (!decoded.startsWith('/')) return undefined;
  const parts = decoded.slice(1).split('/');
  // A final slash names a directory: its last segment is empty, and only that one may be.
  if (parts.at(-1) === '') parts.pop();
  for (const p of parts) {
    if (p === '' || p.startsWith('.') || p.includes('\\') || [...p].some((c) => c.charCodeAt(0) < 0x20 || c === '\x7f')) return undefined;
  }
  return parts;
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** Serves `dir` from `api`'s fallback, before what was there (the console); adds `GET /api/apps`. */
export function serveWebroot(api: HubHttpApi, dir: string): void {
  const root = path.resolve(dir);
  let realRoot: Promise<string> | undefined;
  const rootReal = () => (realRoot ??= realpath(root));

  api.routeFirst('GET', /^\/api\/apps$/, async ({ res }) => {
    let names: string[] = [];
    try {
      const entries = await readdir(path.join(await rootReal(), 'apps'), { withFileTypes: true });
      names = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
    } catch {
      // No apps directory: an empty list, as overlordd gives.
    }
    ok(res, names);
  });

  const serve = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const segs = webrootSegments(url.pathname);
    if (!segs) return false;
    let base: string;
    try {
      base = await rootReal();
    } catch {
      return false; // the directory is gone: the console still answers
    }
    let file = path.join(base, ...segs);
    let real: string;
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      real = await realpath(file);
      if (!inside(base, real)) return false;
      st = await stat(real);
      if (st.isDirectory()) {
        if (!url.pathname.endsWith('/')) {
          // As overlordd's file server: a directory is addressed with its final slash.
          const loc = url.pathname + '/' + url.search;
          res.writeHead(301, { location: loc, 'content-length': 0, 'cache-control': 'no-cache' });
          res.end();
          return true;
        }
        file = path.join(real, 'index.html');
        real = await realpath(file);
        if (!inside(base, real)) return false;
        st = await stat(real);
      }
      if (!st.isFile()) return false;
    } catch {
      return false;
    }
    const rel = path.relative(base, file).split(path.sep).join('/');
    const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
    const headers: http.OutgoingHttpHeaders = {
      'content-type': TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': HASHED.test(rel) ? 'public, max-age=31536000, immutable' : 'no-cache',
      etag,
      'last-modified': new Date(st.mtimeMs).toUTCString(),
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'referrer-policy': 'no-referrer',
    };
    const inm = req.headers['if-none-match'];
    if (inm !== undefined && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag)) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': st.size });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    const s = createReadStream(real);
    s.on('error', () => res.destroy());
    res.once('close', () => s.destroy());
    s.pipe(res);
    return true;
  };
  api.prependFallback(serve);
}

/**
 * Serves the browser console (src/console/) at `/`: the page, its stylesheet, the console's compiled
 * modules (the `.js` files tsc wrote next to this folder's sibling `console/`) and xterm.js with its
 * fit addon (resolved from node_modules, where the package's dependencies put them). Everything is
 * read once, at startup, and served from memory.
 *
 * Every asset except the page lives under `/assets/<hash>/`, the hash of all of them together, and
 * is cached for a year (`immutable`); the page itself is revalidated on every load (`no-cache` with
 * an ETag), so an upgraded hub is picked up at the next reload. Every reply carries the same
 * Content-Security-Policy: scripts only from the hub itself, connections only back to it, no frames,
 * no plugins, no inline script. `style-src` allows inline styles because xterm.js sizes its rows
 * with `<style>` elements it creates.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type http from 'node:http';
import type { HubHttpApi } from './http-api.js';
import { CONSOLE_CSS, consolePage } from '../console/page.js';

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};

/** Modules of src/console that run on the hub, not in the browser. */
const SERVER_SIDE = new Set(['page.js']);

function asset(body: Buffer | string, name: string): Asset {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { body: b, type: TYPES[path.extname(name)] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(b).digest('base64url').slice(0, 27)}"` };
}

/** The source-map comment would make browsers ask for a file that is not served. */
const withoutSourceMap = (js: string) => js.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');

/** The console's files by name under `/assets/<hash>/`, and the hash. */
export function loadConsoleAssets(): { hash: string; files: Map<string, Asset>; page: Asset } {
  const files = new Map<string, Asset>();
  const dir = fileURLToPath(new URL('../console/', import.meta.url));
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('.js') && !SERVER_SIDE.has(name)) files.set(name, asset(withoutSourceMap(readFileSync(path.join(dir, name), 'utf8')), name));
  }
  const require = createRequire(import.meta.url);
  const vendor: [string, string][] = [
    ['vendor/xterm.mjs', '@xterm/xterm/lib/xterm.mjs'],
    ['vendor/xterm.css', '@xterm/xterm/css/xterm.css'],
    ['vendor/addon-fit.mjs', '@xterm/addon-fit/lib/addon-fit.mjs'],
  ];
  for (const [name, spec] of vendor) {
    files.set(name, asset(withoutSourceMap(readFileSync(require.resolve(spec), 'utf8')), name));
  }
  files.set('console.css', asset(CONSOLE_CSS, 'console.css'));
  const h = createHash('sha256');
  for (const [name, a] of files) h.update(name).update('\0').update(a.etag);
  const hash = h.digest('hex').slice(0, 16);
  return { hash, files, page: asset(consolePage(`/assets/${hash}/`), 'index.html') };
}

function securityHeaders(): http.OutgoingHttpHeaders {
  return {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
}

function send(req: http.IncomingMessage, res: http.ServerResponse, a: Asset, cache: string): void {
  const headers = { ...securityHeaders(), 'content-type': a.type, 'cache-control': cache, etag: a.etag };
  const inm = req.headers['if-none-match'];
  if (inm !== undefined && (inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === a.etag))) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': a.body.length });
  res.end(req.method === 'HEAD' ? undefined : a.body);
}

/** Serves the console from `api`'s fallback: `/` (and `/index.html`) and `/assets/<hash>/NAME`. */
export function serveConsole(api: HubHttpApi): void {
  let assets: ReturnType<typeof loadConsoleAssets>;
  try {
    assets = loadConsoleAssets();
  } catch (err) {
    api.hub.logger.warn(`hub http: no web console (${(err as Error).message})`);
    return;
  }
  api.setFallback((req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const p = url.pathname;
    if (p === '/' || p === '/index.html') {
      send(req, res, assets.page, 'no-cache');
      return true;
    }
    const m = /^\/assets\/([0-9a-f]{16})\/(.+)$/.exec(p);
    if (!m) return false;
    const a = assets.files.get(m[2]!);
    if (!a) return false;
    // An older page asking for an older hash gets today's file, revalidated rather than pinned.
    send(req, res, a, m[1] === assets.hash ? 'public, max-age=31536000, immutable' : 'no-cache');
    return true;
  });
}

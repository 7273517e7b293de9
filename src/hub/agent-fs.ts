/**
 * Overlord's fs requests (`fstat`, `mkdir`, `create_symlink`; docs/overlord.md) for an agent that
 * has none: a wirekit agent, or a classic Overlord ghost. They run as a short POSIX `sh` command
 * through the agent's exec session (paths as arguments, never in the script), with an Overlord
 * ghost's rules: a relative path is relative to `$HOME`, an entry is from lstat. So `ovl push` of a
 * directory reaches them too. `list_tree` (ovl's `pull`) is not offered this way.
 */
import type { Principal } from './allowlist.js';
import type { Hub } from './hub.js';
import { hubAgentClient } from './session-client.js';

/** The reply an Overlord ghost would give: success with a payload, or the error text. */
export type FsReply = { ok: true; payload: unknown } | { ok: false; error: string };

const MAX_OUTPUT = 64 * 1024;
const TIMEOUT_MS = 60_000;

const HOME = 'cd "$HOME" 2>/dev/null || :; ';

// Prints kind, absolute path, st_mode in hex, size, mtime, link target, each ended by NUL.
// GNU stat first, then BSD; without -L both report the link itself (lstat).
const FSTAT =
  HOME +
  'p=$1; case $p in /*) ;; *) p=$PWD/$p;; esac; ' +
  'if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf missing; exit 0; fi; ' +
  's=$(stat -c "%f %s %Y" -- "$p" 2>/dev/null || stat -f "%Xp %z %m" "$p") || exit 1; ' +
  'if [ -L "$p" ]; then k=link; t=$(readlink "$p"); elif [ -d "$p" ]; then k=dir; t=; else k=file; t=; fi; ' +
  'printf "%s\\0%s\\0%s\\0%s\\0" "$k" "$p" "$s" "$t"';

const MKDIR = HOME + 'mkdir -p -- "$1" && chmod "$2" -- "$1"';
const SYMLINK = HOME + 'if [ -e "$2" ] || [ -L "$2" ]; then rm -f -- "$2" || exit 1; fi; ln -s -- "$1" "$2"';

async function run(hub: Hub, user: Principal, id: string, script: string, args: string[]): Promise<{ code: number | null; out: Buffer; err: string }> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  timer.unref?.();
  try {
    const client = hubAgentClient(hub, user, id, { signal: abort.signal });
    const ex = await client.exec(['sh', '-c', script, 'sh', ...args], { endInput: true });
    const out: Buffer[] = [];
    let outLen = 0;
    let err = '';
    ex.stdout.on('data', (d: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(d);
      outLen += d.length;
    });
    ex.stderr.on('data', (d: Buffer) => {
      if (err.length < 4096) err += String(d);
    });
    const onAbort = () => ex.close();
    abort.signal.addEventListener('abort', onAbort, { once: true });
    const status = await ex.exit;
    abort.signal.removeEventListener('abort', onAbort);
    return { code: status.code, out: Buffer.concat(out), err: err.trim() };
  } finally {
    clearTimeout(timer);
  }
}

const failure = (r: { err: string }, what: string): FsReply => ({ ok: false, error: r.err || `${what} failed` });

export async function agentFstat(hub: Hub, user: Principal, id: string, path: string): Promise<FsReply> {
  const r = await run(hub, user, id, FSTAT, [path]);
  if (r.code !== 0) return failure(r, 'fstat');
  const text = r.out.toString('utf8');
  if (text === 'missing') return { ok: true, payload: { exists: false } };
  const [kind, abs, st, target] = text.split('\0');
  const [mode, size, mtime] = (st ?? '').split(' ').map((x, i) => (i === 0 ? parseInt(x, 16) : Number(x)));
  if (!kind || !abs || !Number.isFinite(mode) || !Number.isFinite(size) || !Number.isFinite(mtime)) return { ok: false, error: 'fstat: unexpected output from stat' };
  const entry: Record<string, unknown> = { exists: true, path: abs, perm: mode, size, mtime, is_dir: kind === 'dir', is_symlink: kind === 'link' };
  if (kind === 'link') entry.link_target = target ?? '';
  return { ok: true, payload: entry };
}

export async function agentMkdir(hub: Hub, user: Principal, id: string, path: string, perm: number): Promise<FsReply> {
  const r = await run(hub, user, id, MKDIR, [path, (perm & 0o7777).toString(8)]);
  return r.code === 0 ? { ok: true, payload: null } : failure(r, 'mkdir');
}

export async function agentSymlink(hub: Hub, user: Principal, id: string, target: string, dest: string): Promise<FsReply> {
  const r = await run(hub, user, id, SYMLINK, [target, dest]);
  return r.code === 0 ? { ok: true, payload: null } : failure(r, 'create_symlink');
}

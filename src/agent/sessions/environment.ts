/**
 * Where programs of exec and terminal sessions run and what they see, as ssh sets it up: a clean
 * environment for the daemon's user (HOME, USER, LOGNAME, SHELL, a standard PATH; TERM for a
 * terminal) plus what the client asks for, never the daemon's own environment; and the user's
 * home directory as the starting directory, `~` and relative working directories taken from it.
 */
import { constants as fsConstants, readFileSync } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WirekitError } from '../../errors.js';
import { fileError } from '../paths.js';
import type { SessionContext } from './context.js';
import { confinePath, isWithin } from '../paths.js';

/** The PATH ssh's default login gives (Debian's /etc/login.defs). */
export const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Root's PATH adds the system directories. */
export const ROOT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The daemon's user: name, home directory and login shell (from the password database). */
export interface SessionUser {
  name: string;
  home: string;
  shell: string;
  uid: number;
}

/** The user the daemon runs as. */
export function sessionUser(): SessionUser {
  let info: os.UserInfo<string> | undefined;
  try {
    info = os.userInfo();
  } catch {
    info = undefined;
  }
  const uid = info?.uid ?? process.getuid?.() ?? -1;
  return {
    name: info?.username ?? process.env.USER ?? String(uid),
    home: info?.homedir || os.homedir(),
    shell: info?.shell || '/bin/sh',
    uid,
  };
}

/**
 * The environment of a session's program: the user's HOME, USER, LOGNAME, SHELL and PATH, TERM
 * when given, the default locale, then `extra` (what the client sent: `-e NAME=VALUE`, LANG and
 * LC_*), which wins.
 */
export function sessionEnv(extra: Record<string, string> | undefined, opts: { term?: string; user?: SessionUser } = {}): Record<string, string> {
  const user = opts.user ?? sessionUser();
  const env: Record<string, string> = {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: user.shell,
    PATH: user.uid === 0 ? ROOT_PATH : DEFAULT_PATH,
  };
  if (opts.term) env.TERM = opts.term;
  return { ...env, ...defaultLocale(), ...(extra ?? {}) };
}

const LOCALE_VAR = /^(LANG|LANGUAGE|LC_[A-Z_]+)$/;
let systemLocale: Record<string, string> | undefined;

/**
 * The locale a program gets when the client sends none: the system's default, as pam_env gives
 * an ssh login (/etc/default/locale, /etc/locale.conf), else the daemon's own LANG and LC_*
 * (the one part of its environment passed on: a web console sends no locale, and a UTF-8 shell
 * must not fall back to C).
 */
export function defaultLocale(): Record<string, string> {
  if (systemLocale === undefined) {
    systemLocale = {};
    for (const file of ['/etc/default/locale', '/etc/locale.conf']) {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        const m = /^\s*([A-Z_]+)=(["']?)(.*)\2\s*$/.exec(line);
        if (m && LOCALE_VAR.test(m[1]!) && m[3]) systemLocale[m[1]!] = m[3];
      }
    }
  }
  if (Object.keys(systemLocale).length > 0) return systemLocale;
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (LOCALE_VAR.test(k) && v) own[k] = v;
  return own;
}

/**
 * The directory a program starts in: `cwd` as the client gave it, `~` and `~/x` expanded and a
 * relative path taken from the home directory, or the home directory itself when none is given.
 * Under a root (`--root`), paths are confined to it (`/` is the root) and the start is the home
 * directory when it lies inside the root, else the root. The directory must exist and be
 * enterable: else `WK_NOT_FOUND`, `WK_NOT_DIR` or `WK_PERMISSION` naming the directory.
 */
export async function sessionCwd(cwd: string | undefined, ctx: Pick<SessionContext, 'root'>, user: SessionUser = sessionUser()): Promise<string> {
  const shown = cwd ?? '~';
  let dir: string;
  if (ctx.root === undefined) {
    dir = path.resolve(user.home, expandHome(cwd ?? '~', user.home));
  } else {
    const home = isWithin(path.resolve(ctx.root), user.home) ? '/' + path.relative(path.resolve(ctx.root), user.home) : '/';
    const given = cwd === undefined ? home : expandHome(cwd, home);
    // Joined, not resolved: `..` above the root is refused by confinePath, not clamped.
    dir = await confinePath(given.startsWith('/') ? given : `${home}/${given}`, { root: ctx.root }).catch((err: unknown) => {
      throw fileError(err, `working directory ${shown}`);
    });
  }
  try {
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    await access(dir, fsConstants.X_OK);
  } catch (err) {
    const e = fileError(err, `working directory ${shown}`);
    if (e instanceof WirekitError && e.code === 'WK_NOT_DIR') throw new WirekitError('WK_NOT_DIR', `working directory ${shown}: not a directory`, { origin: 'remote' });
    throw e;
  }
  return dir;
}

/** `~` and `~/x` with `home` put in; anything else unchanged (`~user` is not expanded). */
export function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.posix.join(home, p.slice(2));
  return p;
}

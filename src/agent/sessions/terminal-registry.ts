/**
 * The daemon's running terminal sessions, by id, so an upload can name one (`"terminal": ID`) and
 * land in that terminal shell's current directory (docs/agent.md, "Transfer requests").
 *
 * Each terminal gets a random id (in its reply, `{"id": ID}`) and remembers the scope of the
 * connection that opened it: `hub user NAME` for a session a hub relayed for that user, `direct`
 * for a client of the daemon's own socket or token. An upload may name only a terminal of its own
 * scope; any other id is unknown to it (`WK_NOT_FOUND`, the same answer as for an id never used).
 *
 * The directory is the cwd of the terminal's foreground process group leader (the `tpgid` field
 * of `/proc/PID/stat`), so a file dropped while `vi` runs in `~/src` lands in `~/src`; when that
 * process is gone or not readable, the shell's own cwd. Linux only (elsewhere: no directory, and
 * the upload goes where it would without a terminal).
 */
import { randomUUID } from 'node:crypto';
import { readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { WirekitError } from '../../errors.js';
import { isWithin } from '../paths.js';
import type { SessionContext } from './context.js';

interface Entry {
  scope: string;
  pid: number | undefined;
}

const terminals = new Map<string, Entry>();

/** The scope of a connection that has none set (a direct client of the daemon). */
export const DIRECT_SCOPE = 'direct';

/** A terminal's place in the registry, taken before its program starts. */
export interface TerminalSlot {
  readonly id: string;
  /** Records the program's pid until `exited` settles. */
  attach(pid: number, exited: Promise<unknown>): void;
}

/** Takes an id for a new terminal of the connection behind `ctx`. */
export function terminalSlot(ctx: Pick<SessionContext, 'scope'>): TerminalSlot {
  const id = randomUUID();
  const entry: Entry = { scope: ctx.scope ?? DIRECT_SCOPE, pid: undefined };
  return {
    id,
    attach(pid, exited) {
      entry.pid = pid;
      terminals.set(id, entry);
      const drop = () => void (terminals.get(id) === entry && terminals.delete(id));
      exited.then(drop, drop);
    },
  };
}

/** The pid of terminal `id` as the connection of `scope` may see it, or undefined. */
export function terminalPid(id: string, scope: string | undefined): number | undefined {
  const e = terminals.get(id);
  return e && e.scope === (scope ?? DIRECT_SCOPE) ? e.pid : undefined;
}

/** How many terminals are registered (tests). */
export function registeredTerminals(): number {
  return terminals.size;
}

/** `tpgid` of `/proc/PID/stat`: the foreground process group of the process's terminal. */
export function foregroundGroup(stat: string): number | undefined {
  // pid (comm) state ppid pgrp session tty_nr tpgid ...; comm may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const n = Number(fields[5]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The current directory of terminal `id` (see the module comment), or undefined when this
 * machine cannot tell. `WK_NOT_FOUND` when `scope` has no such terminal.
 */
export async function terminalCwd(id: string, scope: string | undefined): Promise<string | undefined> {
  const pid = terminalPid(id, scope);
  if (pid === undefined) throw new WirekitError('WK_NOT_FOUND', `no terminal ${JSON.stringify(id.slice(0, 64))} in this session's scope`, { origin: 'remote' });
  const usable = (p: string | undefined) => (p !== undefined && p.startsWith('/') && !p.endsWith(' (deleted)') ? p : undefined);
  const group = await readFile(`/proc/${pid}/stat`, 'utf8').then(foregroundGroup, () => undefined);
  if (group !== undefined && group !== pid) {
    const cwd = usable(await readlink(`/proc/${group}/cwd`).catch(() => undefined));
    if (cwd !== undefined) return cwd;
  }
  return usable(await readlink(`/proc/${pid}/cwd`).catch(() => undefined));
}

/**
 * An upload's `dest` with `"terminal": id`: a relative (or empty) one is taken from the
 * terminal's current directory; an absolute one or `~/...` is kept. Under a root the directory is
 * given as the daemon names paths there (`/` is the root); a directory outside the root, or one
 * this machine cannot tell, leaves `dest` as it is (from the home directory, or the root).
 */
export async function destInTerminal(dest: string, id: string, ctx: Pick<SessionContext, 'scope' | 'root'>): Promise<string> {
  if (dest.startsWith('/') || dest === '~' || dest.startsWith('~/')) return dest;
  const cwd = await terminalCwd(id, ctx.scope);
  if (cwd === undefined) return dest;
  let base = cwd;
  if (ctx.root !== undefined) {
    const realRoot = await realpath(ctx.root).catch(() => undefined);
    if (realRoot === undefined || !isWithin(realRoot, cwd)) return dest;
    base = '/' + path.relative(realRoot, cwd);
  }
  return dest === '' || dest === '.' ? base : path.posix.join(base, dest);
}

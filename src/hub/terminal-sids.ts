/**
 * The terminal sids the hub handed out on `WS /api/agents/{id}/tty` (the `{"type":"sid","data":SID}`
 * frame), so that an upload naming one (`POST /api/agents/{id}/file?terminal_sid=SID`, as Overlord's
 * dashboard sends it) lands in that terminal shell's current directory. A sid stands for one live
 * terminal of one agent, opened by one user; it is known only to the hub that serves the terminal.
 *
 * For an Overlord ghost the sid is the ghost's own terminal sid (the ghost finds the directory);
 * for a wirekit agent it is a fresh id of the hub's, standing for the agent's terminal id (the
 * terminal reply's `id`), which the agent resolves for connections of the same hub user only.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from './errors.js';
import type { Hub } from './hub.js';

interface TerminalRecord {
  readonly agent: string;
  readonly user: string;
  /** The terminal as the agent names it in an upload's `terminal`. */
  readonly terminal: string;
}

const byHub = new WeakMap<Hub, Map<string, TerminalRecord>>();

function table(hub: Hub): Map<string, TerminalRecord> {
  let t = byHub.get(hub);
  if (!t) byHub.set(hub, (t = new Map()));
  return t;
}

/**
 * Records a terminal of `agent` opened by `user`; `reply` is the agent's terminal reply. Returns
 * the sid to tell the client and the function that forgets it (at the session's end), or
 * undefined when the agent names no terminal (an agent older than terminal ids).
 */
export function recordTerminal(hub: Hub, agent: string, user: string, reply: unknown): { sid: string; forget(): void } | undefined {
  const r = (reply ?? {}) as { sid?: unknown; id?: unknown };
  const own = typeof r.sid === 'string' && r.sid !== '' ? r.sid : undefined;
  const id = own ?? (typeof r.id === 'string' && r.id !== '' ? r.id : undefined);
  if (id === undefined) return undefined;
  const sid = own ?? randomUUID();
  const t = table(hub);
  const rec = { agent, user, terminal: id };
  t.set(sid, rec);
  return { sid, forget: () => void (t.get(sid) === rec && t.delete(sid)) };
}

/**
 * The agent's name of terminal `sid` for an upload by `user` to `agent`. A sid of another agent or
 * another user, or one that ended, is refused as unknown (400, as Overlord refuses bad parameters).
 */
export function terminalFor(hub: Hub, agent: string, user: string, sid: string): string {
  const rec = byHub.get(hub)?.get(sid);
  if (!rec || rec.agent !== agent || rec.user !== user) throw new HttpError(400, `no terminal ${JSON.stringify(sid.slice(0, 64))} of yours on ${agent}`, 'WK_NOT_FOUND');
  return rec.terminal;
}

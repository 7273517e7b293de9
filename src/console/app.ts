/**
 * The console's entry: login and logout, the fleet list (GET /api/agents, then live from
 * WS /api/monitor), the filter box, and the panes (terminal, run, files, web) opened from it.
 * Every value from the hub reaches the page as text (dom.ts).
 */
import { byId, el } from './dom.js';
import { execPane } from './exec.js';
import { filesPane } from './files.js';
import { matchesFilterBox, parseFilterBox, propertyText, type AgentRecord } from './filter.js';
import { ApiError, api, openSocket, setUnauthorizedHandler, type PullSocket } from './net.js';
import { TerminalPane, type PaneHost } from './terminal.js';
import { webPane } from './web.js';

interface WhoAmI {
  username: string;
  is_admin: boolean;
  groups: string[];
}

const agents = new Map<string, AgentRecord>();
const denied = new Set<string>();
const terminals = new Set<TerminalPane>();
let monitor: PullSocket | undefined;
let session = 0;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

const panes = () => byId('panes');

/**
 * Keyboard use: the button a pane was opened from (by agent id and label), so closing the pane, or
 * Escape in a pane that is not a terminal, returns the focus there (or to the filter box when that
 * agent is gone).
 */
function focusOpener(id: string, label: string): void {
  const b = Array.from(document.querySelectorAll<HTMLButtonElement>('#fleet-body tr button')).find((x) => x.closest('tr')?.dataset.id === id && x.textContent === label);
  (b && !b.disabled ? b : byId('filter')).focus();
}

function paneHost(id: string, label: string): PaneHost {
  return {
    remove: (p) => {
      const hadFocus = p.contains(document.activeElement);
      p.remove();
      if (hadFocus || document.activeElement === document.body) focusOpener(id, label);
    },
  };
}

function show(view: 'login' | 'fleet'): void {
  byId('login-view').hidden = view !== 'login';
  byId('fleet-view').hidden = view !== 'fleet';
  byId('logout').hidden = view !== 'fleet';
}

function sinceText(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

function renderFleet(): void {
  const terms = parseFilterBox(byId<HTMLInputElement>('filter').value);
  const body = byId('fleet-body');
  // The rows are made anew: a focused button in them keeps its focus (keyboard use).
  const active = document.activeElement;
  const keep = active instanceof HTMLButtonElement && body.contains(active) ? { id: active.closest('tr')?.dataset.id, label: active.textContent } : undefined;
  const rows: HTMLElement[] = [];
  const list = [...agents.values()].sort((a, b) => a.id.localeCompare(b.id));
  let shown = 0;
  for (const a of list) {
    if (!matchesFilterBox(a, terms)) continue;
    shown++;
    const props = Object.entries(a.properties)
      .map(([k, v]) => `${k}=${propertyText(v)}`)
      .join('\n');
    const can = (cap: string) => a.capabilities.length === 0 || a.capabilities.includes(cap);
    const noAccess = denied.has(a.id);
    const btn = (label: string, cap: string, open: () => void) => {
      const b = el('button', { type: 'button', disabled: noAccess || !can(cap), title: noAccess ? 'you may not open this agent' : can(cap) ? undefined : `this agent offers no ${cap}`, 'aria-label': `${label} ${a.id}` }, label);
      b.addEventListener('click', open);
      return b;
    };
    rows.push(
      el(
        'tr',
        { 'data-id': a.id, class: noAccess ? 'denied' : undefined },
        el('td', { class: 'id' }, a.id),
        el('td', {}, a.hostname),
        el('td', { class: 'props' }, props),
        el('td', {}, el('time', { datetime: a.since }, sinceText(a.since))),
        el(
          'td',
          { class: 'open' },
          btn('Terminal', 'terminal', () => void openTerminal(a.id)),
          btn('Run', 'exec', () => openPane(execPane(a.id, paneHost(a.id, 'Run')), a.id, 'Run')),
          btn('Files', 'download', () => openPane(filesPane(a.id, paneHost(a.id, 'Files')), a.id, 'Files')),
          btn('Web', 'forward', () => openPane(webPane(a.id, paneHost(a.id, 'Web')), a.id, 'Web')),
        ),
      ),
    );
  }
  body.replaceChildren(...rows);
  if (keep?.id !== undefined) focusOpener(keep.id, keep.label ?? '');
  byId('fleet-count').textContent = shown === list.length ? `(${list.length})` : `(${shown} of ${list.length})`;
}

function openPane(p: HTMLElement, id: string, label: string): void {
  panes().append(p);
  p.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      focusOpener(id, label);
    }
  });
  (p.querySelector<HTMLElement>('form input') ?? p.querySelector<HTMLElement>('input, button'))?.focus();
}

async function openTerminal(id: string): Promise<void> {
  const back = paneHost(id, 'Terminal');
  const t = new TerminalPane(id, {
    remove: (p) => {
      terminals.delete(t);
      back.remove(p);
    },
    refused: (agentId) => void checkAccess(agentId),
  });
  terminals.add(t);
  panes().append(t.root);
  await t.start();
}

/** After a refused session: asks whether the user may open the agent at all, and marks it if not. */
async function checkAccess(id: string): Promise<void> {
  try {
    await api('GET', `/api/agents/${encodeURIComponent(id)}/properties`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && err.message === 'Unauthorized') {
      denied.add(id);
      renderFleet();
    }
  }
}

function monitorState(text: string): void {
  byId('monitor-state').textContent = text;
}

/** Keeps `agents` current: the monitor first (so nothing is missed), then the list, then the events seen meanwhile. */
async function watchFleet(mine: number): Promise<void> {
  let backoff = 500;
  while (mine === session) {
    monitorState('connecting…');
    let sock: PullSocket;
    try {
      sock = await openSocket('/api/monitor');
    } catch {
      // Refused: perhaps the session expired.
      try {
        await api('GET', '/api/whoami');
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return;
      }
      monitorState('monitor unavailable, retrying');
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 15_000);
      continue;
    }
    if (mine !== session) return sock.close();
    monitor = sock;
    const early: string[] = [];
    let listed = false;
    const apply = (text: string) => {
      let ev: { event?: unknown; data?: unknown };
      try {
        ev = JSON.parse(text) as typeof ev;
      } catch {
        return;
      }
      const rec = Array.isArray(ev.data) ? (ev.data[1] as AgentRecord | undefined) : undefined;
      if (!rec || typeof rec.id !== 'string') return;
      if (ev.event === 'agent joined') agents.set(rec.id, { ...rec, mid: rec.mid ?? rec.id });
      else if (ev.event === 'agent left') {
        agents.delete(rec.id);
        for (const t of terminals) if (t.agentId === rec.id) t.agentLeft();
      }
    };
    const listing = api<AgentRecord[]>('GET', '/api/agents').then(
      (list) => {
        agents.clear();
        for (const a of list) agents.set(a.id, a);
        listed = true;
        for (const t of early.splice(0)) apply(t);
        renderFleet();
      },
      () => {
        listed = true;
      },
    );
    monitorState('live');
    backoff = 500;
    for (;;) {
      const m = await sock.read();
      if (m === null) break;
      if (m.binary) continue;
      if (!listed) early.push(m.data);
      else {
        apply(m.data);
        renderFleet();
      }
    }
    await listing;
    monitor = undefined;
    if (mine !== session) return;
    monitorState('monitor lost, reconnecting');
    await new Promise((r) => setTimeout(r, backoff));
  }
}

function enter(who: WhoAmI, expire?: number): void {
  const mine = ++session;
  byId('whoami').textContent = `${who.username}${who.is_admin ? ' (admin)' : ''}`;
  show('fleet');
  byId<HTMLInputElement>('filter').focus();
  if (expiryTimer) clearTimeout(expiryTimer);
  if (expire !== undefined) {
    const ms = expire * 1000 - Date.now();
    if (ms > 0 && ms < 2 ** 31) expiryTimer = setTimeout(() => leave('Your session expired; log in again.'), ms);
  }
  void watchFleet(mine);
}

function leave(message = ''): void {
  session++;
  if (expiryTimer) clearTimeout(expiryTimer);
  monitor?.close();
  monitor = undefined;
  for (const t of [...terminals]) t.dispose();
  panes().replaceChildren();
  agents.clear();
  denied.clear();
  byId('fleet-body').replaceChildren();
  byId('whoami').textContent = '';
  byId('login-error').textContent = message;
  show('login');
  byId<HTMLInputElement>('login-user').focus();
}

async function main(): Promise<void> {
  setUnauthorizedHandler(() => leave('Your session ended; log in again.'));
  byId('filter').addEventListener('input', renderFleet);
  byId('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const user = byId<HTMLInputElement>('login-user');
    const pass = byId<HTMLInputElement>('login-pass');
    byId('login-error').textContent = '';
    try {
      // The reply's token is not kept: the HttpOnly cookie the hub sets is the session.
      const { expire } = await api<{ token: string; expire: number }>('POST', '/api/auth/login', { username: user.value, password: pass.value });
      pass.value = '';
      enter(await api<WhoAmI>('GET', '/api/whoami'), expire);
    } catch (err) {
      byId('login-error').textContent = err instanceof ApiError ? err.message : 'cannot reach the hub';
    }
  });
  byId('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/api/auth/logout');
    } catch {
      // logged out here regardless
    }
    leave();
  });
  try {
    enter(await api<WhoAmI>('GET', '/api/whoami'));
  } catch {
    leave();
  }
}

void main();

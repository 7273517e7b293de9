/**
 * A run-a-command pane: `WS /api/agents/{id}/exec?argv=<JSON array>&cwd=`. The hub sends binary
 * frames whose first byte says the stream (1 stdout, 2 stderr), then `{"type":"exit",...}` or
 * `{"type":"error",...}`; the pane sends stdin as binary frames and `{"type":"stdinClose"}`.
 * The command line is run as `sh -c LINE`, or given as a JSON array it is the argv itself.
 */
import { appendCapped, el } from './dom.js';
import { describeEnd, openSocket, parseControl, type PullSocket, type SessionEnd } from './net.js';
import type { PaneHost } from './terminal.js';

const MAX_SHOWN = 512 * 1024;

export function argvOf(line: string): string[] {
  const t = line.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      // a shell line after all
    }
  }
  return ['sh', '-c', line];
}

export function execPane(agentId: string, host: PaneHost): HTMLElement {
  const cmd = el('input', { name: 'cmd', 'aria-label': 'command', placeholder: 'command (sh -c), or a JSON argv', autocomplete: 'off', spellcheck: 'false' });
  const cwd = el('input', { name: 'cwd', 'aria-label': 'working directory', placeholder: 'cwd (optional)', size: '12' });
  const run = el('button', { type: 'submit' }, 'Run');
  const stdin = el('input', { name: 'stdin', 'aria-label': 'standard input line', placeholder: 'stdin line', disabled: true });
  const sendBtn = el('button', { type: 'button', disabled: true }, 'Send');
  const eof = el('button', { type: 'button', disabled: true }, 'Close stdin');
  const stop = el('button', { type: 'button', disabled: true }, 'Stop');
  const closeBtn = el('button', { type: 'button' }, 'Close');
  const state = el('span', { class: 'state', role: 'status' }, '');
  const out = el('pre', { class: 'out stdout', 'aria-label': 'stdout' });
  const err = el('pre', { class: 'out stderr', 'aria-label': 'stderr' });
  const form = el('form', { class: 'exec-form' }, cmd, cwd, run);
  const inRow = el('div', { class: 'exec-form' }, stdin, sendBtn, eof, stop);
  const root = el('section', { class: 'pane exec', 'data-agent': agentId, 'aria-label': `run a command on ${agentId}` }, el('div', { class: 'bar' }, el('span', { class: 'title' }, `run: ${agentId}`), state, closeBtn), form, inRow, out, err);
  let sock: PullSocket | undefined;
  const setRunning = (on: boolean) => {
    run.disabled = on;
    stdin.disabled = sendBtn.disabled = eof.disabled = stop.disabled = !on;
  };
  const enc = new TextEncoder();
  closeBtn.addEventListener('click', () => {
    sock?.close();
    host.remove(root);
  });
  sendBtn.addEventListener('click', () => {
    sock?.send(enc.encode(stdin.value + '\n'));
    stdin.value = '';
  });
  stdin.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') sendBtn.click();
  });
  eof.addEventListener('click', () => {
    sock?.send(JSON.stringify({ type: 'stdinClose' }));
    eof.disabled = true;
  });
  stop.addEventListener('click', () => sock?.close(1000, 'stopped'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!cmd.value.trim() || sock) return;
    out.textContent = '';
    err.textContent = '';
    state.textContent = 'starting';
    root.dataset.state = 'running';
    const q = new URLSearchParams({ argv: JSON.stringify(argvOf(cmd.value)) });
    if (cwd.value) q.set('cwd', cwd.value);
    try {
      sock = await openSocket(`/api/agents/${encodeURIComponent(agentId)}/exec?${q}`);
    } catch {
      state.textContent = 'could not start (agent gone, no access, or logged out)';
      root.dataset.state = 'ended';
      return;
    }
    setRunning(true);
    state.textContent = 'running';
    const decoders = [new TextDecoder(), new TextDecoder()];
    let end: SessionEnd | undefined;
    for (;;) {
      const m = await sock.read();
      if (m === null) break;
      if (m.binary) {
        const which = m.data[0] === 2 ? 1 : 0;
        appendCapped(which ? err : out, decoders[which]!.decode(m.data.subarray(1), { stream: true }), MAX_SHOWN);
      } else {
        const c = parseControl(m.data);
        if (c?.type === 'exit' || c?.type === 'error') end = c as SessionEnd;
      }
    }
    appendCapped(out, decoders[0]!.decode(), MAX_SHOWN);
    appendCapped(err, decoders[1]!.decode(), MAX_SHOWN);
    const closed = await sock.closed;
    sock = undefined;
    setRunning(false);
    state.textContent = describeEnd(end, closed);
    root.dataset.state = 'ended';
    if (end?.type === 'exit') root.dataset.exitCode = String(end.code ?? '');
  });
  return root;
}

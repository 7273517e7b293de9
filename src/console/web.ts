/**
 * A forwarded-web-service pane: `POST /api/agents/{id}/web-forward {"port","host","path"}` answers
 * with a one-time URL on an origin of the forward's own (docs/console.md, "Forwarded web
 * services"), opened in a new tab without an opener or a referrer. Each Open asks for a new one.
 */
import { el } from './dom.js';
import { ApiError, api } from './net.js';
import type { PaneHost } from './terminal.js';

export function webPane(agentId: string, host: PaneHost): HTMLElement {
  const port = el('input', { name: 'port', 'aria-label': 'port on the agent', placeholder: 'port', inputmode: 'numeric', size: '6', required: true, pattern: '[0-9]{1,5}' });
  const target = el('input', { name: 'host', 'aria-label': 'host, as the agent reaches it', value: 'localhost', size: '12' });
  const path = el('input', { name: 'path', 'aria-label': 'path', value: '/', size: '10' });
  const open = el('button', { type: 'submit' }, 'Open in a new tab');
  const closeBtn = el('button', { type: 'button', 'aria-label': `close web pane of ${agentId}` }, 'Close');
  const state = el('span', { class: 'state', role: 'status' }, '');
  const form = el('form', { class: 'exec-form' }, 'http://', target, ':', port, path, open);
  const root = el(
    'section',
    { class: 'pane web', 'data-agent': agentId, 'aria-label': `web service on ${agentId}` },
    el('div', { class: 'bar' }, el('span', { class: 'title' }, `web: ${agentId}`), state, closeBtn),
    form,
  );
  closeBtn.addEventListener('click', () => host.remove(root));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = Number(port.value);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      state.textContent = 'the port is 1 to 65535';
      return;
    }
    state.textContent = 'opening';
    try {
      const { url } = await api<{ url: string; origin: string }>('POST', `/api/agents/${encodeURIComponent(agentId)}/web-forward`, { port: n, host: target.value.trim() || 'localhost', path: path.value || '/' });
      window.open(url, '_blank', 'noopener,noreferrer');
      state.textContent = `opened ${target.value.trim() || 'localhost'}:${n} in a new tab`;
      root.dataset.state = 'opened';
    } catch (err) {
      state.textContent = err instanceof ApiError ? `refused: ${err.message}` : 'cannot reach the hub';
      root.dataset.state = 'refused';
    }
  });
  return root;
}

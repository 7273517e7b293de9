/**
 * Files: upload with `POST /api/agents/{id}/file?dest=PATH` (or `?terminal_sid=SID&filename=NAME`
 * for a file dropped on a terminal whose shell reported no directory; the file as the raw body,
 * application/octet-stream; reply `{path,size,sha256}`) and download with
 * `GET /api/agents/{id}/file?filename=PATH`, both with progress. An upload's SHA-256 as the hub
 * reports it is checked against the one computed here (as `wirekit cp` does) where the browser can
 * hash (crypto.subtle needs a secure context: https, or http on localhost). A download is checked
 * by the hub, which breaks the response off unless the agent's digest matched; a digest stated in
 * a header (`X-Checksum-Sha256`, `Repr-Digest`) is checked here too.
 */
import { el, formatBytes } from './dom.js';
import type { PaneHost } from './terminal.js';

/** Files this size or smaller are hashed in the browser (crypto.subtle hashes in one piece). */
const MAX_HASHED = 512 * 1024 * 1024;

async function sha256Hex(data: Blob): Promise<string | undefined> {
  if (!globalThis.crypto?.subtle || data.size > MAX_HASHED) return undefined;
  const d = await crypto.subtle.digest('SHA-256', await data.arrayBuffer());
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function progressLine(status: HTMLElement, label: string): { bar: HTMLProgressElement; text: HTMLElement } {
  const bar = el('progress', { max: '1', value: '0' });
  const text = el('span', {}, '');
  status.replaceChildren(`${label} `, bar, ' ', text);
  return { bar, text };
}

export interface UploadResult {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Uploads `file` to `dest` on the agent, reporting in `status`; resolves with the hub's reply.
 * With `terminalSid` and no `dest` it goes under its own name into that terminal shell's current
 * directory (`?terminal_sid=SID&filename=NAME`).
 */
export function uploadFile(agentId: string, file: File, dest: string | undefined, status: HTMLElement, terminalSid?: string): Promise<UploadResult | undefined> {
  const { bar, text } = progressLine(status, `upload ${file.name} → ${dest ?? "the shell's directory"}`);
  const q = new URLSearchParams(dest !== undefined ? { dest } : { filename: file.name });
  if (terminalSid !== undefined) q.set('terminal_sid', terminalSid);
  status.dataset.state = 'running';
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/agents/${encodeURIComponent(agentId)}/file?${q}`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      bar.max = e.total || file.size || 1;
      bar.value = e.loaded;
      text.textContent = `${formatBytes(e.loaded)} of ${formatBytes(file.size)}`;
    };
    const fail = (msg: string) => {
      text.textContent = `failed: ${msg}`;
      status.dataset.state = 'failed';
      resolve(undefined);
    };
    xhr.onerror = () => fail('network error');
    xhr.onload = async () => {
      let body: { status?: string; data?: unknown } = {};
      try {
        body = JSON.parse(xhr.responseText) as typeof body;
      } catch {
        // reported below
      }
      if (xhr.status !== 200 || body.status !== 'success') return fail(typeof body.data === 'string' ? body.data : `HTTP ${xhr.status}`);
      const r = body.data as UploadResult;
      bar.value = bar.max;
      const mine = await sha256Hex(file);
      if (mine !== undefined && mine !== r.sha256) {
        text.textContent = `CHECKSUM MISMATCH: sent ${mine}, agent has ${String(r.sha256)}`;
        status.dataset.state = 'failed';
        return resolve(undefined);
      }
      text.textContent = `${formatBytes(r.size)} at ${r.path}, sha256 ${r.sha256}${mine === undefined ? ' (not checked here)' : ' verified'}`;
      status.dataset.state = 'done';
      resolve(r);
    };
    xhr.send(file);
  });
}

/** The SHA-256 a download reply states, if any (`Repr-Digest`/`Digest: sha-256=`, or `X-Checksum-Sha256`). */
function statedSha256(h: Headers): string | undefined {
  const x = h.get('x-checksum-sha256');
  if (x) return x.toLowerCase();
  const d = h.get('repr-digest') ?? h.get('digest');
  const m = d ? /sha-256=:?([A-Za-z0-9+/=]+):?/i.exec(d) : null;
  if (!m) return undefined;
  try {
    return [...atob(m[1]!)].map((c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return undefined;
  }
}

function filenameOf(res: Response, fallback: string): string {
  const cd = res.headers.get('content-disposition') ?? '';
  const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
  if (star) {
    try {
      return decodeURIComponent(star[1]!);
    } catch {
      // fall through
    }
  }
  const plain = /filename="?([^";]+)"?/i.exec(cd);
  const name = plain ? plain[1]! : fallback.split('/').pop() || 'download';
  return name.replace(/[/\\]/g, '_');
}

/** Downloads `remotePath` from the agent with progress, then hands it to the browser as a file. */
export async function downloadFile(agentId: string, remotePath: string, status: HTMLElement): Promise<void> {
  const { bar, text } = progressLine(status, `download ${remotePath}`);
  status.dataset.state = 'running';
  let res: Response;
  try {
    res = await fetch(`/api/agents/${encodeURIComponent(agentId)}/file?${new URLSearchParams({ filename: remotePath })}`, { credentials: 'same-origin' });
  } catch {
    text.textContent = 'failed: network error';
    status.dataset.state = 'failed';
    return;
  }
  if (!res.ok || !res.body) {
    let msg = `HTTP ${res.status}`;
    try {
      const b = (await res.json()) as { data?: unknown };
      if (typeof b.data === 'string') msg = b.data;
    } catch {
      // keep the status
    }
    text.textContent = `failed: ${msg}`;
    status.dataset.state = 'failed';
    return;
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  bar.max = total || 1;
  const chunks: Uint8Array[] = [];
  let got = 0;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
      got += r.value.length;
      bar.value = total ? got : 0;
      text.textContent = `${formatBytes(got)}${total ? ` of ${formatBytes(total)}` : ''}`;
    }
  } catch {
    // The hub breaks the response off when the agent's checksum does not match or the agent is gone.
  }
  if (total && got !== total) {
    text.textContent = `failed: broken off after ${formatBytes(got)} of ${formatBytes(total)} (checksum mismatch or connection lost)`;
    status.dataset.state = 'failed';
    return;
  }
  const blob = new Blob(chunks as BlobPart[], { type: 'application/octet-stream' });
  const name = filenameOf(res, remotePath);
  const stated = statedSha256(res.headers);
  const mine = await sha256Hex(blob);
  if (stated !== undefined && mine !== undefined && stated !== mine) {
    text.textContent = `CHECKSUM MISMATCH: agent says ${stated}, got ${mine}`;
    status.dataset.state = 'failed';
    return;
  }
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  bar.value = bar.max;
  // Without a stated digest the hub has checked it: it holds the last byte back until the agent's
  // SHA-256 matched, so a complete response is a verified one.
  const check = stated !== undefined && mine !== undefined ? 'verified here' : 'checked by the hub';
  text.textContent = `${formatBytes(got)} saved as ${name}${mine !== undefined ? `, sha256 ${mine}` : ''} (${check})`;
  status.dataset.state = 'done';
}

/** A pane with a download-by-path field and an upload (file chooser or drop, destination path). */
export function filesPane(agentId: string, host: PaneHost): HTMLElement {
  const dl = el('input', { name: 'remote', 'aria-label': 'path to download', placeholder: 'path on the agent to download' });
  const dlBtn = el('button', { type: 'submit' }, 'Download');
  const pick = el('input', { type: 'file', name: 'file', 'aria-label': 'file to upload', multiple: true });
  const dest = el('input', { name: 'dest', 'aria-label': 'upload destination directory', placeholder: 'destination directory', value: '/tmp' });
  const upBtn = el('button', { type: 'submit' }, 'Upload');
  const log = el('div', { class: 'out', 'aria-live': 'polite' });
  const closeBtn = el('button', { type: 'button' }, 'Close');
  const dlForm = el('form', { class: 'files-form' }, dl, dlBtn);
  const upForm = el('form', { class: 'files-form' }, pick, 'to', dest, upBtn);
  const root = el('section', { class: 'pane files', 'data-agent': agentId, 'aria-label': `files on ${agentId}` }, el('div', { class: 'bar' }, el('span', { class: 'title' }, `files: ${agentId}`), closeBtn), dlForm, upForm, log);
  const line = () => {
    const s = el('div', { class: 'status', role: 'status' });
    log.append(s);
    return s;
  };
  closeBtn.addEventListener('click', () => host.remove(root));
  dlForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (dl.value) void downloadFile(agentId, dl.value, line());
  });
  const send = (files: File[]) => {
    for (const f of files) void uploadFile(agentId, f, `${dest.value.replace(/\/+$/, '') || '.'}/${f.name}`, line());
  };
  upForm.addEventListener('submit', (e) => {
    e.preventDefault();
    send(Array.from(pick.files ?? []));
  });
  root.addEventListener('dragover', (e) => {
    if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
  });
  root.addEventListener('drop', (e) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    send(Array.from(e.dataTransfer.files));
  });
  return root;
}

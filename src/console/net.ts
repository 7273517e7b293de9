/**
 * The console's only way to the hub: its public HTTP API (JSON wrapped as
 * `{"status":"success"|"error","data":...}`) and WebSockets. Authentication is the HttpOnly
 * SameSite=Strict cookie the login sets: the page never sees the token, keeps none in storage, and
 * the browser sends the cookie with every same-origin request and WebSocket.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when a request finds the session gone (401 without a valid cookie). */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(fn: () => void): void {
  onUnauthorized = fn;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { ...init.headers, 'content-type': 'application/json' };
  }
  const res = await fetch(path, init);
  let parsed: { status?: string; data?: unknown } = {};
  try {
    parsed = (await res.json()) as typeof parsed;
  } catch {
    // not JSON: reported by status below
  }
  if (!res.ok || parsed.status !== 'success') {
    const message = typeof parsed.data === 'string' ? parsed.data : `${res.status} ${res.statusText}`;
    if (res.status === 401 && message !== 'Unauthorized' && !path.startsWith('/api/auth/')) onUnauthorized();
    throw new ApiError(res.status, message);
  }
  return parsed.data as T;
}

export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;
}

export type Message = { binary: true; data: Uint8Array } | { binary: false; data: string };

/**
 * A WebSocket read by pulling: `read()` takes the next message, and while nobody calls it the
 * browser stops reading the socket (WebSocketStream), so TCP backpressure reaches the hub, which
 * pauses the agent. Where the browser has no WebSocketStream, messages queue in memory (the
 * browser's WebSocket cannot be paused); `backpressure` says which.
 */
export interface PullSocket {
  readonly backpressure: boolean;
  read(): Promise<Message | null>;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Resolves once closed, with the close code (1006: dropped). */
  readonly closed: Promise<{ code: number; reason: string }>;
}

interface WebSocketStreamLike {
  readonly opened: Promise<{ readable: ReadableStream<ArrayBuffer | Uint8Array | string>; writable: WritableStream<string | Uint8Array> }>;
  readonly closed: Promise<{ closeCode?: number; reason?: string }>;
  close(info?: { closeCode?: number; reason?: string }): void;
}
type WebSocketStreamCtor = new (url: string) => WebSocketStreamLike;

const toBytes = (d: ArrayBuffer | Uint8Array): Uint8Array => (d instanceof Uint8Array ? d : new Uint8Array(d));

/** Opens `path` (`/api/...`) as a WebSocket; rejects when it cannot be opened (refused, unreachable). */
export async function openSocket(path: string, timeoutMs = 15_000): Promise<PullSocket> {
  const url = wsUrl(path);
  const Ctor = (globalThis as { WebSocketStream?: WebSocketStreamCtor }).WebSocketStream;
  if (Ctor) {
    const wss = new Ctor(url);
    const timer = setTimeout(() => wss.close(), timeoutMs);
    let opened: Awaited<WebSocketStreamLike['opened']>;
    try {
      opened = await wss.opened;
    } finally {
      clearTimeout(timer);
    }
    const reader = opened.readable.getReader();
    const writer = opened.writable.getWriter();
    const closed = wss.closed.then(
      (c) => ({ code: c.closeCode ?? 1005, reason: c.reason ?? '' }),
      () => ({ code: 1006, reason: '' }),
    );
    return {
      backpressure: true,
      async read() {
        try {
          const r = await reader.read();
          if (r.done) return null;
          return typeof r.value === 'string' ? { binary: false, data: r.value } : { binary: true, data: toBytes(r.value) };
        } catch {
          return null;
        }
      },
      send(data) {
        writer.write(data).catch(() => {});
      },
      close(code = 1000, reason = '') {
        try {
          wss.close({ closeCode: code, reason });
        } catch {
          // already closing
        }
      },
      closed,
    };
  }
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error('timed out'));
    }, timeoutMs);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve();
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error('could not connect'));
    };
  });
  const queue: (Message | null)[] = [];
  let waiter: ((m: Message | null) => void) | undefined;
  const push = (m: Message | null) => {
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(m);
    } else queue.push(m);
  };
  ws.onmessage = (e) => push(typeof e.data === 'string' ? { binary: false, data: e.data } : { binary: true, data: toBytes(e.data as ArrayBuffer) });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => {
      push(null);
      resolve({ code: e.code, reason: e.reason });
    };
  });
  return {
    backpressure: false,
    read() {
      if (queue.length > 0) return Promise.resolve(queue.shift()!);
      if (ws.readyState === WebSocket.CLOSED) return Promise.resolve(null);
      return new Promise((resolve) => (waiter = resolve));
    },
    send(data) {
      if (ws.readyState === WebSocket.OPEN) ws.send(data);
    },
    close(code = 1000, reason = '') {
      ws.close(code, reason);
    },
    closed,
  };
}

/** A session's control message from the hub: `{"type":"exit",...}` or `{"type":"error",...}`. */
export interface SessionEnd {
  type: 'exit' | 'error';
  code?: number | string | null;
  signal?: string | null;
  message?: string;
}

export function parseControl(text: string): SessionEnd | { type: string } | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string') return v as { type: string };
  } catch {
    // not JSON
  }
  return undefined;
}

export function describeEnd(end: SessionEnd | undefined, close: { code: number; reason: string }): string {
  if (end?.type === 'exit') {
    if (end.signal) return `session ended: killed by ${String(end.signal)}`;
    return `session ended: exit code ${end.code === undefined || end.code === null ? '?' : String(end.code)}`;
  }
  if (end?.type === 'error') return `session failed: ${end.message ?? String(end.code ?? 'error')}`;
  if (close.code === 1000) return 'session ended';
  return `connection lost (${close.code}${close.reason ? `: ${close.reason}` : ''})`;
}

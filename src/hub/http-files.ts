/**
 * File download and upload through the hub's HTTP API (`GET`/`POST /api/agents/{id}/file`), in
 * Overlord's shape, over the agent's download and upload sessions. Both stream: the hub holds at
 * most a few chunks of a file, never the file. The agent's SHA-256 is checked by the hub on a
 * download (a mismatch destroys the response, so the client sees a failed download, never a
 * wrong file) and sent with the data on an upload (the agent checks it before renaming the file
 * into place). Formats: docs/hub.md, "HTTP and WebSocket API".
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { AgentConnection } from '../agent/connection.js';
import type { TransferResult } from '../agent/sessions/files.js';
import { writeWithBackpressure } from '../agent/sessions/frames.js';
import { TransferReceiver } from '../agent/transfer.js';
import { MalformedFrameError } from '../codecs/errors.js';
import { isErrorCode, TimeoutError, WirekitError } from '../errors.js';
import { RemoteCommandError } from '../protocols/control/errors.js';
import { HttpError } from './errors.js';
import { ok, type HubHttpApi } from './http-api.js';
import { hubAgentClient } from './session-client.js';
import { terminalFor } from './terminal-sids.js';
import { closingLength, multipartBoundary, MultipartReader, splitParams, type MultipartEvent } from './multipart.js';

const REPLY_TIMEOUT_MS = 10_000;

/** Adds `GET` and `POST /api/agents/{id}/file`. */
export function registerFileRoutes(api: HubHttpApi, options: { transferIdleMs: number }): void {
  const idleMs = options.transferIdleMs;
  api.route('GET', /^\/api\/agents\/([^/]+)\/file$/, async ({ req, res, url, user, agent }) => {
    const u = user();
    const a = agent(u);
    const filename = url.searchParams.get('filename');
    if (!filename) throw new HttpError(400, 'filename required');
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const client = hubAgentClient(api.hub, u, a.id, { signal: gone.signal });
    const conn = await client.connect();
    let opened: { reply: unknown; stream: Duplex };
    try {
      opened = await conn.open('download', { path: filename }, [], { timeout: REPLY_TIMEOUT_MS, signal: gone.signal });
    } catch (err) {
      conn.close();
      throw agentRefusal(err);
    }
    const size = (opened.reply as { size?: unknown } | null)?.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      opened.stream.destroy();
      throw new WirekitError('WK_PROTOCOL', 'the agent sent a download reply without a valid size', { origin: 'remote' });
    }
    await streamDownload(req, res, opened.stream, filename, size, idleMs, (m) => api.hub.logger.warn(`hub http: download ${JSON.stringify(filename)} from ${a.id}: ${m}`));
  });

  api.route('POST', /^\/api\/agents\/([^/]+)\/file$/, async ({ req, res, url, user, agent }) => {
    const u = user();
    const a = agent(u);
    const dest = url.searchParams.get('dest') || undefined;
    const mode = parsePerm(url.searchParams.get('perm'));
    // Overlord's terminal_sid: a relative (or no) dest is taken from that terminal shell's current directory.
    const sid = url.searchParams.get('terminal_sid') || undefined;
    const terminal = sid === undefined ? undefined : terminalFor(api.hub, a.id, u.username, sid);
    let boundary: string | undefined;
    try {
      boundary = multipartBoundary(req.headers['content-type']);
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || !/^\d{1,16}$/.test(lengthHeader)) throw new HttpError(411, 'Content-Length required');
    const total = Number(lengthHeader);
    const body = boundary ? await multipartBody(req, boundary, total, idleMs) : rawBody(req, total, url.searchParams.get('filename') ?? undefined, idleMs);
    try {
      const name = body.name === undefined ? undefined : safeName(body.name);
      let target: string;
      if (dest === undefined || dest.endsWith('/')) {
        if (name === undefined) throw new HttpError(400, dest === undefined ? 'dest or a file name required' : 'a file name is required when dest is a directory');
        target = (dest ?? '') + name;
      } else target = dest;
      const gone = new AbortController();
      res.once('close', () => gone.abort());
      const client = hubAgentClient(api.hub, u, a.id, { signal: gone.signal });
      const begin = async (p: string) => {
        const conn = await client.connect();
        try {
          await conn.call('upload', { path: p, size: body.size, mode, ...(terminal === undefined ? {} : { terminal }) }, { timeout: REPLY_TIMEOUT_MS, signal: gone.signal });
          return conn;
        } catch (err) {
          conn.close();
          throw err;
        }
      };
      let conn: AgentConnection;
      try {
        conn = await begin(target);
      } catch (err) {
        // Overlord's rule: an existing directory as dest receives the file under its own name.
        if (err instanceof RemoteCommandError && err.remoteCode === 'WK_IS_DIR' && name !== undefined) {
          try {
            conn = await begin(path.posix.join(target, name));
          } catch (err2) {
            throw agentRefusal(err2);
          }
        } else throw agentRefusal(err);
      }
      const result = await sendUpload(conn, body.size, body.data, idleMs);
      ok(res, { path: result.path, size: result.size, sha256: result.sha256 });
    } finally {
      await body.dispose();
    }
  });
}

/** An error reply from the agent as the HTTP error it becomes (Overlord: 400 with the message). */
function agentRefusal(err: unknown): unknown {
  if (err instanceof RemoteCommandError) return new HttpError(400, err.serverMessage, err.remoteCode !== undefined && isErrorCode(err.remoteCode) ? err.remoteCode : err.code);
  return err;
}

/** `perm` as octal digits (`0644`); default 0644; `0` leaves the agent's default (0600). */
export function parsePerm(text: string | null): number | undefined {
  if (text === null || text === '') return 0o644;
  if (!/^[0-7]{1,4}$/.test(text)) throw new HttpError(400, 'perm must be octal digits, e.g. 0644');
  const n = parseInt(text, 8);
  return n === 0 ? undefined : n;
}

/** Control characters (C0 and DEL), which no file name sent to an agent or a client may hold. */
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** The last component of a client's file name, refused when nothing usable is left. */
export function safeName(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  if (base === '' || base === '.' || base === '..' || hasControl(base)) throw new HttpError(400, `invalid file name ${JSON.stringify(name.slice(0, 256))}`);
  return base;
}

/**
 * `Content-Disposition` for a download of `file`: the basename with double quotes stripped (as
 * Overlord does), non-ASCII and control characters replaced by `_`, and the exact UTF-8 name as
 * `filename*` when it differs.
 */
export function contentDisposition(file: string): string {
  const base = path.posix.basename(file).replace(/"/g, '');
  const ascii = base.replace(/[^\x20-\x7e]/g, '_').replace(/\\/g, '_');
  let v = `attachment; filename="${ascii}"`;
  if (ascii !== base && !hasControl(base)) v += `; filename*=UTF-8''${encodeURIComponent(base).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())}`;
  return v;
}

/**
 * Streams a download to `res`. The last byte of the file is held back until the agent's digest
 * arrived and matched: on a mismatch (or a short stream, or an idle agent) the response is
 * destroyed before it is complete. With `TE: trailers` in the request the response is chunked
 * and carries the digest as the trailer `X-Checksum-Sha256`; otherwise it has `Content-Length`
 * (HTTP/1.1 allows trailers only on chunked responses).
 */
function streamDownload(req: http.IncomingMessage, res: http.ServerResponse, stream: Duplex, file: string, size: number, idleMs: number, warn: (m: string) => void): Promise<void> {
  const trailers = /(^|,)\s*trailers\s*(;|,|$)/i.test(String(req.headers.te ?? ''));
  const headers: http.OutgoingHttpHeaders = {
    'content-type': 'application/octet-stream',
    'content-disposition': contentDisposition(file),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
  if (trailers) headers.trailer = 'X-Checksum-Sha256';
  else headers['content-length'] = size;
  res.writeHead(200, headers);
  const rx = new TransferReceiver(size, createHash('sha256'));
  return new Promise<void>((resolve) => {
    let held: Uint8Array | undefined;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => fail(new TimeoutError('the agent sending the file', idleMs)), idleMs);
      timer.unref();
    };
    const settle = () => {
      settled = true;
      if (timer) clearTimeout(timer);
      stream.destroy();
      resolve();
    };
    const fail = (err: Error) => {
      if (settled) return;
      warn(err.message);
      res.destroy();
      settle();
    };
    const finish = () => {
      if (settled) return;
      if (held) res.write(held);
      if (trailers) res.addTrailers({ 'X-Checksum-Sha256': rx.sha256! });
      res.end();
      settle();
    };
    stream.on('data', (chunk: Uint8Array) => {
      if (settled) return;
      arm();
      let step;
      try {
        step = rx.push(chunk);
      } catch (err) {
        return fail(err as Error);
      }
      let d = step.data;
      if (d && rx.received === size && !step.done) {
        // The file is complete but its digest is not here yet: keep its last byte until it is.
        held = d.subarray(d.length - 1);
        d = d.subarray(0, d.length - 1);
      }
      if (d && d.length > 0 && !res.write(d)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
      if (step.done) finish();
    });
    stream.once('end', () => {
      try {
        rx.end();
      } catch (err) {
        fail(err as Error);
      }
    });
    stream.once('close', () => fail(new WirekitError('WK_CONNECTION_CLOSED', 'the agent closed the download early', { origin: 'remote' })));
    stream.once('error', (err) => fail(err));
    res.once('close', () => {
      if (!settled) settle(); // the client went away
    });
    arm();
  });
}

/**
 * Sends `size` bytes of `data` and their SHA-256 on an accepted upload, then waits for the agent's
 * result. Any failure closes the connection, so the agent removes its temporary file.
 */
async function sendUpload(conn: AgentConnection, size: number, data: AsyncIterable<Uint8Array>, idleMs: number): Promise<TransferResult> {
  const sock = conn.socket;
  const replyP = conn.expectReply('upload');
  replyP.catch(() => {});
  try {
    const hash = createHash('sha256');
    let sent = 0;
    try {
      for await (const d of data) {
        if (d.length === 0) continue;
        if (sent + d.length > size) throw new HttpError(400, `request body holds more than the ${size} bytes declared`);
        hash.update(d);
        sent += d.length;
        await writeWithBackpressure(sock, d);
        if (sock.destroyed) break;
      }
      if (sent !== size && !sock.destroyed) throw new HttpError(400, `request body ended after ${sent} of ${size} bytes`);
      if (!sock.destroyed) sock.write(hash.digest());
    } catch (err) {
      // The agent's own complaint (disk full, say) explains more than a broken pipe.
      const remote = await Promise.race([replyP.then(() => undefined, (e: unknown) => e), new Promise((r) => setTimeout(r, 200))]);
      throw remote instanceof RemoteCommandError ? agentRefusal(remote) : err;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError('the agent confirming the upload', idleMs)), idleMs);
    });
    try {
      return (await Promise.race([replyP, timeout]).catch((err: unknown) => {
        throw agentRefusal(err);
      })) as TransferResult;
    } finally {
      clearTimeout(timer);
    }
  } finally {
    conn.close();
  }
}

/** The request's chunks, failing when none arrives for `idleMs`. */
async function* guarded(req: http.IncomingMessage, idleMs: number): AsyncGenerator<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => req.destroy(new TimeoutError('the request body', idleMs)), idleMs);
    timer.unref();
  };
  arm();
  try {
    // Not destroyed when the reader stops early: an error reply must still reach the client.
    for await (const chunk of req.iterator({ destroyOnReturn: false })) {
      arm();
      yield chunk as Uint8Array;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A request body on its way to the agent: its size, the client's file name, its data. */
interface UploadBody {
  size: number;
  name: string | undefined;
  data: AsyncIterable<Uint8Array>;
  /** Stops reading the request (its idle timer too), whether or not the data was read. */
  dispose(): Promise<void>;
}

/** A raw request body (`Content-Length` bytes of file). */
function rawBody(req: http.IncomingMessage, size: number, name: string | undefined, idleMs: number): UploadBody {
  const chunks = guarded(req, idleMs);
  return { size, name, data: chunks, dispose: async () => void (await chunks.return(undefined)) };
}

/**
 * Reads a multipart/form-data body up to its one part's headers (field `file`) and returns the
 * part's name, its size (from `Content-Length`, the headers read and the close delimiter with its
 * CRLF) and its data as it arrives. The data iterator throws when the body breaks the format,
 * holds a second part, or does not end exactly as the size assumed.
 */
async function multipartBody(req: http.IncomingMessage, boundary: string, total: number, idleMs: number): Promise<UploadBody> {
  const reader = new MultipartReader(boundary, { maxParts: 1 });
  const chunks = guarded(req, idleMs);
  const dispose = async () => void (await chunks.return(undefined));
  const bad = (err: unknown) => (err instanceof MalformedFrameError ? new HttpError(400, err.message) : err);
  const push = (chunk: Uint8Array) => {
    try {
      return reader.push(chunk);
    } catch (err) {
      throw bad(err);
    }
  };
  const early: Uint8Array[] = [];
  let ended = false;
  const take = (events: readonly MultipartEvent[]) => {
    for (const e of events) {
      if (e.type === 'data') early.push(e.data);
      else if (e.type === 'partEnd') {
        if (!e.last) throw new HttpError(400, 'one multipart part only');
        ended = true;
      }
    }
  };
  let size: number;
  let name: string | undefined;
  try {
    let part: { headers: ReadonlyMap<string, string>; offset: number } | undefined;
    while (!part) {
      const next = await chunks.next();
      if (next.done) throw new HttpError(400, 'multipart body without a file part');
      const events = push(next.value);
      const i = events.findIndex((e) => e.type === 'part');
      if (i >= 0) {
        part = events[i] as { headers: ReadonlyMap<string, string>; offset: number };
        take(events.slice(i + 1));
      }
    }
    const disposition = splitParams(part.headers.get('content-disposition') ?? '');
    if (disposition.value.toLowerCase() !== 'form-data' || disposition.params.get('name') !== 'file') throw new HttpError(400, "the multipart part must be the form field 'file'");
    size = total - part.offset - closingLength(boundary);
    if (size < 0) throw new HttpError(400, 'multipart body shorter than its Content-Length');
    name = disposition.params.get('filename') || undefined;
  } catch (err) {
    await dispose();
    throw err;
  }
  const declared = size;
  async function* data(): AsyncGenerator<Uint8Array> {
    let got = 0;
    const check = (d: Uint8Array) => {
      got += d.length;
      if (got > declared) throw new HttpError(400, 'multipart body does not end with its close delimiter and CRLF');
      return d;
    };
    try {
      for (const d of early.splice(0)) yield check(d);
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        take(push(next.value));
        for (const d of early.splice(0)) yield check(d);
      }
      try {
        reader.end();
      } catch (err) {
        throw bad(err);
      }
      if (!ended || got !== declared) throw new HttpError(400, 'multipart body does not end with its close delimiter and CRLF');
    } finally {
      await dispose();
    }
  }
  return { name, size, data: data(), dispose };
}

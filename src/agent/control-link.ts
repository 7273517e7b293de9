/**
 * A minimal control-protocol link (seed 003 wire format: one JSON object per line) over the core
 * NDJSON codec and a Node channel, used by the agent until it adopts `protocols/control`.
 *
 * - daemon greeting: `{"version": "wirekit-agent/1", "auth": "none" | "token"}`
 * - request: `{"cmd": name, "opts": {...}}`
 * - progress: `{"status": true, "progress": ...}` (zero or more)
 * - reply: `{"status": true, "response": ...}` or `{"status": false, "message": text, "code": "WK_..."}`
 *
 * After the reply to a session command both sides switch the same connection to the session's
 * data protocol; bytes already buffered behind the request or reply go to the session first.
 */
import type { Duplex } from 'node:stream';
import { ndjson } from '../codecs/lines.js';
import type { LinesCodec } from '../codecs/lines.js';
import { channel, type NodeFrameChannel } from '../channels/node-channel.js';
import type { WaitOptions } from '../channels/frame-channel.js';
import { ConnectionClosedError, WirekitError } from '../errors.js';
import { RemoteCommandError, SessionProtocolError } from './errors.js';

/** Protocol version sent in the greeting. */
export const AGENT_PROTOCOL_VERSION = 'wirekit-agent/1';

/** A request as the daemon receives it. */
export interface AgentRequest {
  cmd: string;
  opts: Record<string, unknown>;
}

/** The daemon's first message. */
export interface Greeting {
  version: string;
  auth: 'none' | 'token';
}

/** Daemon side of a control connection. */
export class ControlServerLink {
  readonly ch: NodeFrameChannel<unknown, unknown>;

  constructor(
    readonly socket: Duplex,
    maxLineLength: number,
  ) {
    this.ch = channel(socket, ndjson({ maxLineLength }) as LinesCodec<unknown>);
  }

  greet(g: Greeting): Promise<void> {
    return this.ch.write(g);
  }

  /**
   * The next request; `null` at end of stream. Malformed lines raise a `CodecError` (the line is
   * consumed); shapes other than `{cmd: string, opts?: object}` raise `SessionProtocolError`.
   */
  async next(options: WaitOptions = {}): Promise<AgentRequest | null> {
    const v = await this.ch.read(options);
    if (v === null) return null;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new SessionProtocolError('invalid request, expected {"cmd": <name>, "opts": {...}}');
    const o = v as Record<string, unknown>;
    if (typeof o.cmd !== 'string') throw new SessionProtocolError('invalid request, "cmd" must be a string');
    const opts = o.opts ?? {};
    if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw new SessionProtocolError('invalid request, "opts" must be an object');
    return { cmd: o.cmd, opts: opts as Record<string, unknown> };
  }

  progress(p: unknown): Promise<void> {
    return this.ch.write({ status: true, progress: p });
  }

  ok(response: unknown = null): Promise<void> {
    return this.ch.write({ status: true, response });
  }

  fail(err: unknown): Promise<void> {
    const code = err instanceof WirekitError ? err.code : 'WK_INTERNAL';
    const message = err instanceof Error ? err.message : String(err);
    return this.ch.write({ status: false, message, code });
  }
}

/** Client side: reads the greeting, sends requests, collects progress and the reply. */
export class ControlClientLink {
  readonly ch: NodeFrameChannel<unknown, unknown>;
  greeting: Greeting | undefined;

  constructor(readonly socket: Duplex, maxLineLength = 16 * 1024 * 1024) {
    this.ch = channel(socket, ndjson({ maxLineLength }) as LinesCodec<unknown>);
  }

  async readGreeting(options: WaitOptions = {}): Promise<Greeting> {
    const v = (await this.ch.read(options)) as Record<string, unknown> | null;
    if (v === null) throw new ConnectionClosedError('daemon closed the connection before its greeting');
    if (typeof v !== 'object' || typeof v.version !== 'string') throw new SessionProtocolError(`unexpected greeting ${JSON.stringify(v)}`);
    this.greeting = { version: v.version, auth: v.auth === 'token' ? 'token' : 'none' };
    return this.greeting;
  }

  /** Encodes a request line (to be written together with typed-ahead bytes). */
  encodeRequest(cmd: string, opts: Record<string, unknown> = {}): Uint8Array {
    return ndjson().encode({ cmd, opts });
  }

  send(cmd: string, opts: Record<string, unknown> = {}): Promise<void> {
    return this.ch.write({ cmd, opts });
  }

  /** Waits for the reply, passing progress messages to `onProgress`. */
  async reply(options: WaitOptions & { onProgress?: (p: unknown) => void } = {}): Promise<unknown> {
    for (;;) {
      const v = (await this.ch.read(options)) as Record<string, unknown> | null;
      if (v === null) throw new ConnectionClosedError('daemon closed the connection before replying');
      if (typeof v !== 'object' || Array.isArray(v)) throw new SessionProtocolError(`unexpected message ${JSON.stringify(v)}`);
      if (v.status === true && 'progress' in v && !('response' in v)) {
        options.onProgress?.(v.progress);
        continue;
      }
      if (v.status === true) return v.response ?? null;
      if (v.status === false) {
        throw new RemoteCommandError(typeof v.message === 'string' ? v.message : 'command failed', typeof v.code === 'string' ? v.code : undefined);
      }
      throw new SessionProtocolError(`unexpected message ${JSON.stringify(v)}`);
    }
  }

  /** Sends a request and waits for its reply. */
  async call(cmd: string, opts: Record<string, unknown> = {}, options: WaitOptions & { onProgress?: (p: unknown) => void } = {}): Promise<unknown> {
    await this.send(cmd, opts);
    return this.reply(options);
  }
}

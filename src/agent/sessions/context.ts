/**
 * What a session kind is and what it is given. A session's daemon half takes the request's
 * options, the raw byte stream after the reply, and a `SessionContext`; it knows nothing of how
 * the connection came (accepted by a listener, dialed out to a hub, relayed by a hub).
 */
import type { Duplex } from 'node:stream';
import type { CollectGarbage } from '../file-pump.js';
import type { FrameStream } from '../frame-stream.js';
import type { Logger } from '../log.js';
import type { AgentConnection } from '../connection.js';
import type { SessionCodec } from '../session-frames.js';

/** The daemon's settings as the sessions see them. */
export interface SessionContext {
  readonly log: Logger;
  /** File paths (upload, download, working directories) are confined to this directory. */
  readonly root: string | undefined;
  /** Timeout for connecting to a forward target, in ms. */
  readonly connectTimeoutMs: number;
  /** Flush uploaded files to stable storage before renaming them into place. */
  readonly fsync: boolean;
  /** Run during uploads to release spent socket buffers (see `ReceiveFileOptions.collectGarbage`). */
  readonly collectGarbage: CollectGarbage | undefined;
  /** Session frames (with keepalive) over the raw stream `io`. */
  frames(io: Duplex): FrameStream;
  /** A file transfer that moves no byte for this long is ended (its slot and temp file freed). */
  readonly transferTimeoutMs?: number;
  /** Records the temporary files of uploads, for the sweep at the next start (see `TempJournal`). */
  readonly tempFiles?: { add(tempPath: string): Promise<() => void> };
  /**
   * Who is on the session's connection, for the terminals an upload may name
   * (terminal-registry.ts): `hub user NAME` for a session a hub relayed, unset for a direct client.
   */
  readonly scope?: string;
}

/**
 * The daemon half of one session kind, in the order the daemon runs it: `parse` (validate the
 * options, confine paths), then the session limit is taken, `prepare` (what must succeed before
 * the reply: start the program, connect the target, create the temporary file), `reply`, the
 * connection is handed over as a raw stream, and `run` drives the session until it ends. `parse`
 * and `prepare` throw to refuse the request (an error reply).
 */
export interface SessionKind<O, S> {
  /** The control command that opens the session. */
  readonly cmd: string;
  parse(opts: Record<string, unknown>, ctx: SessionContext): O | Promise<O>;
  prepare(options: O, ctx: SessionContext): S | Promise<S>;
  reply(prepared: S): unknown;
  run(prepared: S, io: Duplex, ctx: SessionContext): Promise<void>;
}

/** A session kind of any option and state types (the daemon's registry holds these). */
export type AnySessionKind = SessionKind<any, any>;

/** What the client half of a session kind is given by `AgentClient`. */
export interface ClientContext {
  /** Timeout of the connect and of each reply, in ms. */
  readonly timeoutMs: number;
  /** The session frame format (frame limit) used for typed-ahead frames. */
  readonly codec: SessionCodec;
  /** A fresh, authenticated control connection. */
  connect(): Promise<AgentConnection>;
  /**
   * Sends a session command on a fresh connection (`typedAhead` bytes right behind it) and
   * resolves with the reply and the raw stream after it.
   */
  open(cmd: string, opts: Record<string, unknown>, typedAhead?: Uint8Array[]): Promise<{ reply: unknown; stream: Duplex }>;
  /** Session frames (with keepalive) over the raw stream `io`. */
  frames(io: Duplex): FrameStream;
}

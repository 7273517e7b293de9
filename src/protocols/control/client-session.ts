/**
 * Sans-I/O client side of the control protocol: calls in, request bytes out, server bytes in,
 * per-call events out. Calls are answered in order, so replies are matched first in, first out.
 *
 * A call has a mode:
 * - `call`: progress updates, then one final reply.
 * - `hijack`: like `call`, but after a success reply the session stops decoding (`switched`) and
 *   `takeRemaining()` returns the bytes that followed the reply; no call may be made after it.
 * - `stream`: after a success reply, every further `{"status": true, "response": ...}` line is an
 *   event of this call until the connection ends; no call may be made after it.
 *
 * With `pipeline: false` a request is handed to `dataToSend()` only once every earlier call got
 * its final reply (the original osctld answers nothing when two requests arrive in one read).
 */
import { ByteQueue } from '../../bytes/byte-queue.js';
import { utf8Decode, utf8Encode } from '../../bytes/text.js';
import { LINE_TOO_LONG, LineReader, isBlankLine } from './line-reader.js';
import { ControlProtocolError, ControlStateError } from './errors.js';
import { classifyServerMessage, requestLine, type ExtraFields } from './messages.js';

export type CallMode = 'call' | 'hijack' | 'stream';

/** What the server said, attributed to a call. */
export type ClientEvent =
  /** `extra`: the greeting's members besides `version`, present only when it has some. */
  | { type: 'greeting'; version: string; extra?: ExtraFields }
  | { type: 'progress'; id: number; message: unknown }
  | { type: 'response'; id: number; value: unknown }
  /** `extra`: the reply's members besides `status` and `message` (e.g. a `code`), present only when it has some. */
  | { type: 'error'; id: number; message: string; extra?: ExtraFields }
  | { type: 'event'; id: number; value: unknown }
  /** A hijack call succeeded (its `response` came just before): decoding stopped. */
  | { type: 'switched'; id: number };

export interface ClientSessionOptions {
  /** Longest server line accepted, in bytes (default 64 MiB). A longer line is a protocol error. */
  maxLineLength?: number;
  /**
   * Send requests while earlier ones are unanswered (default true). `false`: one request at a
   * time, each after the previous call's final reply (an `expect` call counts as one).
   */
  pipeline?: boolean;
}

interface Pending {
  id: number;
  cmd: string;
  mode: CallMode;
  /** The request line (`undefined` for `expect`), until it is queued for sending. */
  line: string | undefined;
  /** Queued for sending (or, for `expect`, in flight). */
  sent: boolean;
}

export const DEFAULT_CLIENT_MAX_LINE_LENGTH = 64 * 1024 * 1024;

export class ClientSession {
  private readonly queue = new ByteQueue();
  private readonly reader: LineReader;
  /** Calls awaiting a reply, oldest first, from index `head` (a queue without O(n) shifts). */
  private pending: Pending[] = [];
  private head = 0;
  private out: string[] = [];
  private nextId = 1;
  private sawFirstLine = false;
  private streaming: Pending | undefined;
  private switchedFlag = false;
  private pendingSwitch: number | undefined;
  /** A hijack or stream call was made: no further calls are allowed. */
  private lastCall: Pending | undefined;
  private failed: ControlProtocolError | undefined;
  /** The server's version, once its greeting was read. */
  version: string | undefined;
  /** Requests are sent while earlier ones are unanswered. */
  readonly pipeline: boolean;

  constructor(options: ClientSessionOptions = {}) {
    this.reader = new LineReader(options.maxLineLength ?? DEFAULT_CLIENT_MAX_LINE_LENGTH);
    this.pipeline = options.pipeline ?? true;
  }

  /** Number of calls sent and not yet answered. */
  get pendingCalls(): number {
    return this.pending.length - this.head;
  }

  /** True once a hijack call succeeded. */
  get switched(): boolean {
    return this.switchedFlag;
  }

  /** True once a line was read (so a greeting, if any, has been seen). */
  get greeted(): boolean {
    return this.sawFirstLine;
  }

  /** Queues a request and returns its call id. */
  call(cmd: string, opts: unknown, mode: CallMode = 'call'): number {
    this.checkCall(cmd);
    const line = requestLine(cmd, opts);
    return this.register(cmd, mode, line);
  }

  /**
   * Waits for one more reply that no request of this session asks for: the server sends it on
   * its own terms (progress, then a response or an error), e.g. the final result of a transfer
   * that the reply to an earlier command started. Nothing is queued for sending. The reply is
   * matched in order with the other calls; returns its call id.
   */
  expect(cmd: string, mode: CallMode = 'call'): number {
    this.checkCall(cmd);
    return this.register(cmd, mode, undefined);
  }

  private checkCall(cmd: string): void {
    if (this.failed) throw this.failed;
    if (this.lastCall) {
      throw new ControlStateError(`cannot call '${cmd}': '${this.lastCall.cmd}' (${this.lastCall.mode}) takes over the connection`);
    }
  }

  private register(cmd: string, mode: CallMode, line: string | undefined): number {
    const p: Pending = { id: this.nextId++, cmd, mode, line, sent: false };
    this.pending.push(p);
    if (mode !== 'call') this.lastCall = p;
    if (this.pipeline) this.release(p);
    else this.releaseHead();
    return p.id;
  }

  private release(p: Pending): void {
    p.sent = true;
    if (p.line !== undefined) this.out.push(p.line);
    p.line = undefined;
  }

  /** One request at a time: queues the oldest unanswered call's request if not yet sent. */
  private releaseHead(): void {
    const head = this.pending[this.head];
    if (head !== undefined && !head.sent) this.release(head);
  }

  /** Requests made and not yet handed to `dataToSend()` (only with `pipeline: false`). */
  get heldCalls(): number {
    let n = 0;
    for (let i = this.head; i < this.pending.length; i++) if (this.pending[i]!.line !== undefined) n++;
    return n;
  }

  /** Feeds bytes from the server. */
  receive(chunk: Uint8Array): void {
    if (chunk.length > 0) this.queue.push(chunk);
  }

  /**
   * The next event, or `undefined` when more bytes are needed (or after `switched`).
   * Throws `ControlProtocolError` (and stays failed) on invalid JSON, an unknown shape, an
   * oversize line or a reply with no call waiting for it.
   */
  nextEvent(): ClientEvent | undefined {
    if (this.failed) throw this.failed;
    if (this.pendingSwitch !== undefined) {
      const id = this.pendingSwitch;
      this.pendingSwitch = undefined;
      this.switchedFlag = true;
      return { type: 'switched', id };
    }
    if (this.switchedFlag) return undefined;
    let line = this.reader.next(this.queue);
    while (line !== undefined && line !== LINE_TOO_LONG && isBlankLine(line)) line = this.reader.next(this.queue);
    if (line === LINE_TOO_LONG) throw this.fail(`server line too long, over ${this.reader.maxLineLength} bytes`);
    if (line === undefined) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(utf8Decode(line));
    } catch (err) {
      throw this.fail('server sent invalid JSON', err);
    }
    const msg = classifyServerMessage(value);
    const first = !this.sawFirstLine;
    this.sawFirstLine = true;
    if (msg === undefined) throw this.fail(`unexpected message from server: ${utf8Decode(line, 0, Math.min(line.length, 200))}`);
    if (msg.kind === 'version') {
      if (!first) throw this.fail('version greeting after the first line');
      this.version = msg.version;
      return msg.extra ? { type: 'greeting', version: msg.version, extra: msg.extra } : { type: 'greeting', version: msg.version };
    }
    if (this.streaming) {
      if (msg.kind === 'response') return { type: 'event', id: this.streaming.id, value: msg.value };
      if (msg.kind === 'progress') return { type: 'progress', id: this.streaming.id, message: msg.message };
      throw this.fail(`error during event stream: ${msg.message}`);
    }
    const head = this.pending[this.head];
    if (head === undefined) throw this.fail(`reply with no call waiting for it (${msg.kind})`);
    if (msg.kind === 'progress') return { type: 'progress', id: head.id, message: msg.message };
    this.shiftPending();
    if (msg.kind === 'error') {
      // A failed hijack or stream call leaves the connection usable for more calls.
      if (this.lastCall === head) this.lastCall = undefined;
      return msg.extra ? { type: 'error', id: head.id, message: msg.message, extra: msg.extra } : { type: 'error', id: head.id, message: msg.message };
    }
    if (head.mode === 'hijack') this.pendingSwitch = head.id;
    else if (head.mode === 'stream') this.streaming = head;
    return { type: 'response', id: head.id, value: msg.value };
  }

  /** After `switched`: removes and returns the bytes that followed the hijack call's reply. */
  takeRemaining(): Uint8Array[] {
    if (!this.switchedFlag) throw new ControlStateError('takeRemaining() before the connection was switched');
    return this.queue.drainChunks();
  }

  /** Calls that will never be answered because the connection ended; clears them. */
  abandonAll(): number[] {
    const ids = this.pending.slice(this.head).map((p) => p.id);
    this.pending = [];
    this.head = 0;
    return ids;
  }

  private shiftPending(): void {
    this.pending[this.head] = undefined as unknown as Pending;
    this.head++;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.pending.length) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    if (!this.pipeline) this.releaseHead();
  }

  /** Bytes received and not yet decoded. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  /** True when requests are queued and not yet taken by `dataToSend()`. */
  get hasDataToSend(): boolean {
    return this.out.length > 0;
  }

  /** Takes every queued request line as one byte array. */
  dataToSend(): Uint8Array {
    if (this.out.length === 0) return new Uint8Array(0);
    const text = this.out.length === 1 ? this.out[0]! + '\n' : this.out.join('\n') + '\n';
    this.out = [];
    return utf8Encode(text);
  }

  private fail(message: string, cause?: unknown): ControlProtocolError {
    this.failed = new ControlProtocolError(message, { cause, origin: 'remote' });
    return this.failed;
  }
}

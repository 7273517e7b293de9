/**
 * Sans-I/O server side of the control protocol: bytes in, commands out, reply bytes out.
 *
 * The session decodes one request at a time and only when the previous command has finished,
 * so bytes sent after a command stay undecoded and can be handed over on a hijack.
 *
 * States and the actions allowed in each (anything else throws `ControlStateError`):
 *
 * | state      | nextEvent        | progress | respond / fail | event | finish | hijack |
 * |------------|------------------|----------|----------------|-------|--------|--------|
 * | `idle`     | command -> busy  |          |                |       |        |        |
 * | `busy`     | (paused)         | yes      | -> replied     |       |        | yes    |
 * | `replied`  | (paused)         |          |                | yes   | -> idle| yes    |
 * | `switched` | (paused)         |          |                |       |        |        |
 * | `closed`   | (nothing)        |          |                |       |        |        |
 */
import { ByteQueue } from '../../bytes/byte-queue.js';
import { utf8Decode, utf8Encode } from '../../bytes/text.js';
import { DEFAULT_MAX_LINE_LENGTH } from '../../codecs/lines.js';
import { LINE_TOO_LONG, LineReader, isBlankLine } from './line-reader.js';
import { ControlStateError } from './errors.js';
import { SYNTAX_ERROR_MESSAGE, checkRequest, errorLine, progressLine, responseLine, versionLine, type ExtraFields } from './messages.js';

export type ServerState = 'idle' | 'busy' | 'replied' | 'switched' | 'closed';

/** Why a line was refused without reaching a command. */
export type RejectReason = 'syntax' | 'too-large' | 'invalid';

/** What the session asks its driver to do next. */
export type ServerEvent =
  /** A command to run; the session is now `busy`. */
  | { type: 'command'; cmd: string; opts: unknown }
  /** A bad line was answered with an error reply (already queued); decoding goes on. */
  | { type: 'rejected'; reason: RejectReason; message: string }
  /**
   * The client finished sending and every request was served, an unterminated last line included.
   * `truncated` is always 0 (kept for compatibility: it counted the bytes of that last line).
   */
  | { type: 'eof'; truncated: number };

type Action = 'progress' | 'respond' | 'event' | 'finish' | 'hijack';

const ALLOWED: Record<Action, readonly ServerState[]> = {
  progress: ['busy'],
  respond: ['busy'],
  event: ['replied'],
  finish: ['replied'],
  hijack: ['busy', 'replied'],
};

export interface ServerSessionOptions {
  /** Sent as `{"version": ...}` first thing, if given. */
  version?: string;
  /** Longest request line accepted, in bytes (default 1 MiB). Longer lines get an error reply and are skipped. */
  maxLineLength?: number;
  /**
   * More members of the greeting, after `version` (e.g. `{ auth: 'token' }` gives
   * `{"version":"1.0","auth":"token"}`). Only sent with a `version`.
   */
  greeting?: ExtraFields;
  /**
   * More members of the error replies the session sends on its own for bad lines, after `message`
   * (e.g. a machine-readable `code`). Not called for replies sent with `fail`.
   */
  rejectFields?: (reason: RejectReason, message: string) => ExtraFields | undefined;
}

export class ServerSession {
  private readonly queue = new ByteQueue();
  private reader: LineReader;
  private out: string[] = [];
  private outChars = 0;
  private eofReceived = false;
  private _state: ServerState = 'idle';
  private readonly rejectFields: ServerSessionOptions['rejectFields'];
  /** The command being served, for error messages and logs. */
  current: string | undefined;
  maxLineLength: number;

  constructor(options: ServerSessionOptions = {}) {
    this.maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    this.reader = new LineReader(this.maxLineLength);
    this.rejectFields = options.rejectFields;
    if (options.version !== undefined) this.queueLine(versionLine(options.version, options.greeting));
  }

  get state(): ServerState {
    return this._state;
  }

  /** Bytes received and not yet decoded. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  /** Feeds bytes from the client. Ignored once the session is switched or closed. */
  receive(chunk: Uint8Array): void {
    if (this._state === 'switched' || this._state === 'closed') return;
    if (this.eofReceived) throw new ControlStateError('data received after end of input');
    if (chunk.length > 0) this.queue.push(chunk);
  }

  /** Marks the end of the client's input. */
  receiveEof(): void {
    this.eofReceived = true;
  }

  /** True once the client's end of input was received. */
  get eof(): boolean {
    return this.eofReceived;
  }

  /**
   * The next thing to do, or `undefined` when more bytes are needed or a command is in progress.
   * Bad lines are answered here (the reply is queued) and reported as `rejected`.
   */
  nextEvent(): ServerEvent | undefined {
    if (this._state !== 'idle') return undefined;
    let line = this.reader.next(this.queue);
    while (line !== undefined && line !== LINE_TOO_LONG && isBlankLine(line)) line = this.reader.next(this.queue);
    if (line === LINE_TOO_LONG) {
      return this.reject('too-large', `request line too long, over ${this.maxLineLength} bytes`);
    }
    if (line === undefined) {
      if (!this.eofReceived) return undefined;
      // A last request without its newline is still a request (osctld answers it).
      const last = this.reader.last(this.queue);
      if (last === LINE_TOO_LONG) return this.reject('too-large', `request line too long, over ${this.maxLineLength} bytes`);
      if (last === undefined || isBlankLine(last)) {
        this.queue.clear();
        this._state = 'closed';
        return { type: 'eof', truncated: 0 };
      }
      line = last;
    }
    let value: unknown;
    try {
      value = JSON.parse(utf8Decode(line));
    } catch {
      return this.reject('syntax', SYNTAX_ERROR_MESSAGE);
    }
    const check = checkRequest(value);
    if (!check.ok) return this.reject('invalid', check.message);
    this._state = 'busy';
    this.current = check.request.cmd;
    return { type: 'command', cmd: check.request.cmd, opts: check.request.opts };
  }

  private reject(reason: RejectReason, message: string): ServerEvent {
    this.queueLine(errorLine(message, this.rejectFields?.(reason, message)));
    return { type: 'rejected', reason, message };
  }

  /** Queues a progress update for the running command. */
  progress(message: unknown): void {
    this.check('progress');
    this.queueLine(progressLine(message));
  }

  /** Queues the final success reply of the running command. */
  respond(value: unknown): void {
    this.check('respond');
    this.queueLine(responseLine(value));
    this._state = 'replied';
  }

  /**
   * Queues the final error reply of the running command. `extra` members follow `message`
   * (e.g. `{ code: 'WK_AUTH' }`).
   */
  fail(message: string, extra?: ExtraFields): void {
    this.check('respond');
    this.queueLine(errorLine(message, extra));
    this._state = 'replied';
  }

  /** Queues one more `{"status": true, "response": ...}` line after the reply (an event stream). */
  event(value: unknown): void {
    this.check('event');
    this.queueLine(responseLine(value));
  }

  /** Ends the current command; the next request may be decoded. */
  finish(): void {
    this.check('finish');
    this._state = 'idle';
    this.current = undefined;
  }

  /**
   * Switches to another protocol: returns the bytes received after the command line (call
   * `dataToSend()` first to flush queued replies). The session is unusable afterwards.
   */
  hijack(): Uint8Array[] {
    this.check('hijack');
    this._state = 'switched';
    return this.queue.drainChunks();
  }

  /**
   * Changes the longest request line accepted from the next line on (e.g. a small limit before
   * authentication, the full one after). Call between lines (after a command was decoded).
   */
  setMaxLineLength(maxLineLength: number): void {
    if (maxLineLength === this.maxLineLength) return;
    this.maxLineLength = maxLineLength;
    this.reader = new LineReader(maxLineLength);
  }

  /** Refuses the connection: queues an error reply (not tied to a request), then closes the session. */
  refuse(message: string, extra?: ExtraFields): void {
    if (this._state === 'closed' || this._state === 'switched') return;
    this.queueLine(errorLine(message, extra));
    this.close();
  }

  /** Marks the connection as gone; every later action is refused, incoming bytes are dropped. */
  close(): void {
    this._state = 'closed';
    this.queue.clear();
  }

  /** True when replies are queued and not yet taken by `dataToSend()`. */
  get hasDataToSend(): boolean {
    return this.out.length > 0;
  }

  /** Approximate size of the queued outgoing lines (UTF-16 code units). */
  get pendingOutput(): number {
    return this.outChars;
  }

  private queueLine(line: string): void {
    this.out.push(line);
    this.outChars += line.length + 1;
  }

  /** Takes every queued outgoing line as one byte array (empty when nothing is queued). */
  dataToSend(): Uint8Array {
    if (this.out.length === 0) return EMPTY;
    const text = this.out.length === 1 ? this.out[0]! + '\n' : this.out.join('\n') + '\n';
    this.out = [];
    this.outChars = 0;
    return utf8Encode(text);
  }

  private check(action: Action): void {
    if (!ALLOWED[action].includes(this._state)) {
      throw new ControlStateError(`cannot ${action} in state ${this._state}${this.current ? ` (command '${this.current}')` : ''}`);
    }
  }
}

const EMPTY = new Uint8Array(0);

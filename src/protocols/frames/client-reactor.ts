import { utf8Decode } from '../../bytes/text.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FLAG_BYTES_RESPONSE_CONTINUATION,
  FLAG_BYTES_RESPONSE_EOS,
  FLAG_ERROR_RESPONSE_APPLICATION,
  FLAG_ERROR_RESPONSE_PROTOCOL,
  FRAME_TYPE_BYTES_RESPONSE,
  FRAME_TYPE_ERROR_RESPONSE,
  frameTypeName,
} from './constants.js';
import { FrameCommandError, FrameProtocolError } from './errors.js';
import type { Frame } from './frame.js';
import { commandFrames, type BytesLike, type CommandArgs } from './requests.js';

/**
 * What a received frame means for the client, discriminated by `type` (the names of the mux-frames
 * client reactor for the same events):
 * - `responseData`: a piece of the body of request `id`; `eos` on the last piece.
 * - `error`: request `id` was answered with an error-response frame.
 * - `protocolError`: the server broke the protocol; the reactor is errored and every request in
 *   `pending` must fail.
 */
export type ClientEvent =
  | { type: 'responseData'; id: number; chunk: Uint8Array; eos: boolean }
  | { type: 'error'; id: number; error: FrameCommandError }
  | { type: 'protocolError'; error: FrameProtocolError; pending: number[] };

/** Options of `ClientReactor`. */
export interface ClientReactorOptions {
  /** Largest payload of a request frame. Default 32768. */
  maxFrameSize?: number;
}

/**
 * The client side of Mercurial's frame protocol, sans-I/O. Requests are answered in the order
 * they were sent (Mercurial's framing has no request ids), so the reactor keeps a queue of pending
 * request ids and attributes each response frame to the oldest one.
 */
export class ClientReactor {
  private readonly maxFrameSize: number;
  private readonly pendingIds: number[] = [];
  private nextId = 1;
  private failure: FrameProtocolError | undefined;

  constructor(options: ClientReactorOptions = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  }

  /** Ids of the requests sent and not yet fully answered, oldest first. */
  get pending(): readonly number[] {
    return this.pendingIds;
  }

  /** The protocol error that stopped this reactor, if any. */
  get error(): FrameProtocolError | undefined {
    return this.failure;
  }

  /** Registers a request and returns its id and the frames to send. */
  callCommand(name: BytesLike, args?: CommandArgs, data?: Uint8Array): { id: number; frames: Frame[] } {
    const frames = [...commandFrames(name, args, data, { maxFrameSize: this.maxFrameSize })];
    return { id: this.beginRequest(), frames };
  }

  /** Registers a request whose frames the caller sends itself (e.g. with `commandFramesFrom`). */
  beginRequest(): number {
    if (this.failure) throw this.failure;
    const id = this.nextId++;
    this.pendingIds.push(id);
    return id;
  }

  /** @deprecated use `onFrame`. */
  onFrameRecv(f: Frame): ClientEvent {
    return this.onFrame(f);
  }

  /** Processes a frame received from the server. */
  onFrame(f: Frame): ClientEvent {
    if (this.failure) return { type: 'protocolError', error: this.failure, pending: [] };
    const id = this.pendingIds[0];
    if (id === undefined) return this.fail(`unexpected ${frameTypeName(f.type)} frame: no request is pending`);
    if (f.type === FRAME_TYPE_BYTES_RESPONSE) {
      const cont = (f.flags & FLAG_BYTES_RESPONSE_CONTINUATION) !== 0;
      const eos = (f.flags & FLAG_BYTES_RESPONSE_EOS) !== 0;
      if (cont === eos) return this.fail(`bytes-response frame must have exactly one of continuation and eos (flags ${f.flags})`);
      if (eos) this.pendingIds.shift();
      return { type: 'responseData', id, chunk: f.payload, eos };
    }
    if (f.type === FRAME_TYPE_ERROR_RESPONSE) {
      this.pendingIds.shift();
      const kind = f.flags & FLAG_ERROR_RESPONSE_APPLICATION ? 'application' : f.flags & FLAG_ERROR_RESPONSE_PROTOCOL ? 'protocol' : 'unknown';
      return { type: 'error', id, error: new FrameCommandError(kind, utf8Decode(f.payload), f.flags) };
    }
    return this.fail(`expected bytes-response or error-response frame; got ${f.type} (${frameTypeName(f.type)})`);
  }

  /**
   * Signals that the server closed the stream; returns the ids of the requests left unanswered
   * (they must fail).
   */
  onInputEof(): number[] {
    return this.pendingIds.splice(0);
  }

  private fail(message: string): ClientEvent {
    this.failure = new FrameProtocolError(message, { origin: 'remote' });
    return { type: 'protocolError', error: this.failure, pending: this.pendingIds.splice(0) };
  }
}

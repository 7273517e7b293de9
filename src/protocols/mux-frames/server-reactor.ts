/**
 * Sans-I/O server reactor of the multiplexed frame profile. Feed it each received frame with
 * `onFrame`; it answers with an action: wait for more frames, run a command, send frames, or a
 * protocol error. Responses are written through a `ResponseWriter` (response-writer.ts) per request, object by object,
 * so several requests can stream their responses interleaved on one connection.
 *
 * State machine (one per connection):
 *
 * | state                         | frame                                  | next                      |
 * |-------------------------------|----------------------------------------|---------------------------|
 * | initial                       | sender-protocol-settings               | protocol-settings-receiving |
 * | initial                       | command-request                        | as idle                   |
 * | protocol-settings-receiving   | sender-protocol-settings (continuation)| same                      |
 * | protocol-settings-receiving   | sender-protocol-settings (eos)         | idle                      |
 * | idle                          | command-request new                    | command-receiving or idle (runCommand) |
 * | command-receiving             | command-request new / continuation, command-data | command-receiving or idle |
 * | any                           | anything else                          | errored                   |
 * | errored                       | any frame                              | errored (error again)     |
 */
import { concatBytes, utf8Decode } from '../../bytes/text.js';
import type { CborLimits, CborObject, CborValue } from './cbor.js';
import { CborDecoder, decodeCborAll, mapGet } from './cbor.js';
import { availableEncodings, type EncodingOptions } from './encodings.js';
import { CborError, MuxProtocolError } from './errors.js';
import {
  CommandDataFlag,
  CommandRequestFlag,
  DEFAULT_MAX_FRAME_SIZE,
  FrameType,
  ProtocolSettingsFlag,
  StreamFlag,
} from './frame.js';
import type { MuxFrame } from './frame.js';
import { ResponseWriter } from './response-writer.js';
import { InputStream, OutputStream } from './streams.js';

/** Server reactor states. */
export type ServerState = 'initial' | 'protocol-settings-receiving' | 'idle' | 'command-receiving' | 'errored';

/** What the caller should do after an event. */
export type ServerAction =
  | { type: 'wantFrame'; state: ServerState }
  | {
      type: 'runCommand';
      requestId: number;
      /** Command name (the request's `name` byte string, as UTF-8). */
      command: string;
      /** Decoded `args` map (an empty object when absent). */
      args: CborObject | Map<CborValue, CborValue>;
      redirect: CborValue | null;
      /** Command data (command-data frames), or null when none was announced. */
      data: Uint8Array | null;
    }
  | { type: 'sendFrames'; frames: Uint8Array[] }
  | { type: 'error'; message: string; error: MuxProtocolError }
  | { type: 'noop' };

/**
 * Options of `ServerReactor`. `deflateRaw` (from `EncodingOptions`) lets the server compress
 * with zlib: the Node entry's `nodeDeflateRaw`, or any raw DEFLATE with sync flush. Without it the
 * server answers in identity streams only.
 */
export interface ServerReactorOptions extends EncodingOptions {
  /**
   * Buffer all output until `onInputEof()` (for half-duplex transports such as an HTTP request
   * body, where the client cannot read until it has sent everything). Default false.
   */
  deferOutput?: boolean;
  /** Largest payload per outgoing frame. Default 32768 (as Mercurial). */
  maxFrameSize?: number;
  /** Content encodings this server may use, most preferred first. Default `availableEncodings(options)`. */
  encodings?: string[];
  /** Most requests being received at once. Default 64. */
  maxReceivingRequests?: number;
  /** Largest CBOR command request (all its frames). Default 1 MiB. */
  maxRequestSize?: number;
  /** Largest command data per request. Default 64 MiB. */
  maxDataSize?: number;
  /**
   * Largest total of request and data bytes buffered for all the requests being received at once
   * (their frames interleave): without it, 64 requests of 64 MiB could hold 4 GiB per connection.
   * Default 64 MiB (one request of the largest data fits).
   */
  maxBufferedSize?: number;
  /** Largest sender-protocol-settings payload. Default 64 KiB. */
  maxSettingsSize?: number;
  /** Limits for the CBOR of requests and settings. */
  cbor?: CborLimits;
}

interface Receiving {
  parts: Uint8Array[];
  size: number;
  data: Uint8Array[] | null;
  dataSize: number;
  requestDone: boolean;
  expectingData: boolean;
}

const DEFAULT_ENCODINGS = ['identity'];

/** Server side of the multiplexed frame protocol; see the module comment. */
export class ServerReactor {
  private stateValue: ServerState = 'initial';
  private readonly deferOutput: boolean;
  private readonly maxFrameSize: number;
  private readonly serverEncodings: string[];
  private readonly maxReceiving: number;
  private readonly maxRequestSize: number;
  private readonly maxDataSize: number;
  private readonly maxBufferedSize: number;
  /** Request and data bytes held for the requests being received. */
  private bufferedSize = 0;
  private readonly maxSettingsSize: number;
  private readonly cborLimits: CborLimits;
  private readonly encodingOptions: EncodingOptions;
  private nextStreamId = 2;
  private readonly deferred: Uint8Array[] = [];
  private readonly incoming = new Map<number, InputStream>();
  private readonly receiving = new Map<number, Receiving>();
  private readonly activeRequests = new Set<number>();
  private settingsDecoder: CborDecoder | undefined;
  private settingsSize = 0;
  private clientEncodings: CborValue[] = DEFAULT_ENCODINGS;
  private errorValue: MuxProtocolError | undefined;

  constructor(options: ServerReactorOptions = {}) {
    this.deferOutput = options.deferOutput ?? false;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.serverEncodings = options.encodings ?? availableEncodings(options);
    this.encodingOptions = { deflateRaw: options.deflateRaw };
    this.maxReceiving = options.maxReceivingRequests ?? 64;
    this.maxRequestSize = options.maxRequestSize ?? 1024 * 1024;
    this.maxDataSize = options.maxDataSize ?? 64 * 1024 * 1024;
    this.maxBufferedSize = options.maxBufferedSize ?? 64 * 1024 * 1024;
    this.maxSettingsSize = options.maxSettingsSize ?? 64 * 1024;
    this.cborLimits = options.cbor ?? {};
  }

  get state(): ServerState {
    return this.stateValue;
  }

  /** The protocol error that moved the reactor to `errored`, if any. */
  get error(): MuxProtocolError | undefined {
    return this.errorValue;
  }

  /** Content encodings the client advertised (default `['identity']`). */
  get clientContentEncodings(): string[] {
    return this.clientEncodings.map((e) => (e instanceof Uint8Array ? utf8Decode(e) : String(e)));
  }

  /** Request ids dispatched whose response has not ended yet. */
  get activeRequestIds(): number[] {
    return [...this.activeRequests];
  }

  /** Request ids partly received (more request or data frames expected). */
  get receivingRequestIds(): number[] {
    return [...this.receiving.keys()];
  }

  /** Processes one frame received from the client. */
  onFrame(frame: MuxFrame): ServerAction {
    if (this.stateValue === 'errored') return this.errorResult('server already errored', false);
    if (frame.streamId % 2 === 0) return this.fail(`received frame with even numbered stream ID: ${frame.streamId}`);
    if (!this.incoming.has(frame.streamId)) {
      if (!(frame.streamFlags & StreamFlag.BEGIN)) {
        return this.fail('received frame on unknown inactive stream without beginning of stream flag set');
      }
      this.incoming.set(frame.streamId, new InputStream(frame.streamId));
    }
    if (frame.streamFlags & StreamFlag.ENCODED) {
      // Clients have no way to announce an encoding to the server (stream-settings frames are refused below).
      return this.fail('received an encoded frame; content encoding of client streams is not supported');
    }
    if (frame.streamFlags & StreamFlag.END) this.incoming.delete(frame.streamId);
    switch (this.stateValue) {
      case 'initial':
        if (frame.type === FrameType.SENDER_PROTOCOL_SETTINGS) {
          this.stateValue = 'protocol-settings-receiving';
          this.settingsDecoder = new CborDecoder(this.cborLimits);
          this.settingsSize = 0;
          return this.onProtocolSettings(frame);
        }
        if (frame.type === FrameType.COMMAND_REQUEST) {
          this.stateValue = 'idle';
          return this.onIdle(frame);
        }
        return this.fail(`expected sender protocol settings or command request frame; got ${frame.type}`);
      case 'protocol-settings-receiving':
        return this.onProtocolSettings(frame);
      case 'idle':
        return this.onIdle(frame);
      case 'command-receiving':
        return this.onCommandReceiving(frame);
    }
  }

  /**
   * End of input. With deferred output, returns every buffered frame; otherwise a noop. Requests
   * still partly received are left as they are (see `receivingRequestIds`).
   */
  onInputEof(): ServerAction {
    if (!this.deferOutput || this.deferred.length === 0) return { type: 'noop' };
    const frames = this.deferred.splice(0);
    return { type: 'sendFrames', frames };
  }

  /**
   * A new stream for responses (even ids 2, 4, ...), encoded with the first of the server's
   * encodings that the client advertised.
   */
  makeOutputStream(): OutputStream {
    const id = this.nextStreamId;
    if (id > 0xfe) throw new MuxProtocolError('out of server stream ids', { origin: 'local' });
    this.nextStreamId += 2;
    const s = new OutputStream(id, this.encodingOptions);
    const client = new Set(this.clientContentEncodings);
    const name = this.serverEncodings.find((e) => client.has(e));
    if (name) s.setEncoder(name);
    return s;
  }

  /** Starts the response to a dispatched request; write objects to it, then `end()` it. */
  startResponse(stream: OutputStream, requestId: number): ResponseWriter {
    if (stream.streamId % 2 !== 0) throw new MuxProtocolError(`server should only write to even numbered streams; ${stream.streamId} is not even`, { origin: 'local' });
    if (!this.activeRequests.has(requestId)) throw new MuxProtocolError(`request ${requestId} is not active`, { origin: 'local' });
    return new ResponseWriter(this, stream, requestId, this.maxFrameSize);
  }

  /**
   * Sends a whole response: every object of `objects` as CBOR, then end of response. An exception
   * thrown while iterating becomes a server error frame after what was already sent (as Mercurial).
   */
  respond(stream: OutputStream, requestId: number, objects: Iterable<CborValue>): ServerAction {
    const w = this.startResponse(stream, requestId);
    const frames: Uint8Array[] = [];
    const take = (a: ServerAction): void => {
      if (a.type === 'sendFrames') frames.push(...a.frames);
    };
    try {
      for (const o of objects) take(w.write(o));
    } catch (err) {
      take(w.fail(err instanceof Error ? err.message : String(err)));
      return this.output(frames, true);
    }
    take(w.end());
    return this.output(frames, true);
  }

  /** A command error reported before any output: a response with status `error`. */
  commandError(stream: OutputStream, requestId: number, message: string, args?: CborValue[]): ServerAction {
    return this.startResponse(stream, requestId).commandError(message, args);
  }

  /** A server-side failure for a request: an error-response frame of type `server`. */
  serverError(stream: OutputStream, requestId: number, message: string): ServerAction {
    return this.startResponse(stream, requestId).fail(message);
  }

  /** @internal Called by response writers. */
  output(frames: Uint8Array[], already = false): ServerAction {
    if (already) {
      // `respond` collected frames from its writer, which already applied deferral.
      return frames.length === 0 || this.deferOutput ? { type: 'noop' } : { type: 'sendFrames', frames };
    }
    if (this.deferOutput) {
      this.deferred.push(...frames);
      return { type: 'noop' };
    }
    return frames.length === 0 ? { type: 'noop' } : { type: 'sendFrames', frames };
  }

  /** @internal Called when a response ends. */
  release(requestId: number): void {
    this.activeRequests.delete(requestId);
  }

  private fail(message: string): ServerAction {
    this.stateValue = 'errored';
    // Errored is final: what the requests being received held is of no use any more.
    this.receiving.clear();
    this.bufferedSize = 0;
    return this.errorResult(message, true);
  }

  private errorResult(message: string, record: boolean): ServerAction {
    const error = new MuxProtocolError(message, { origin: 'remote' });
    if (record) this.errorValue = error;
    return { type: 'error', message, error };
  }

  private onProtocolSettings(frame: MuxFrame): ServerAction {
    if (frame.type !== FrameType.SENDER_PROTOCOL_SETTINGS) return this.fail(`expected sender protocol settings frame; got ${frame.type}`);
    const more = frame.flags & ProtocolSettingsFlag.CONTINUATION;
    const eos = frame.flags & ProtocolSettingsFlag.EOS;
    if (more && eos) return this.fail('sender protocol settings frame cannot have both continuation and end of stream flags set');
    if (!more && !eos) return this.fail('sender protocol settings frame must have continuation or end of stream flag set');
    this.settingsSize += frame.payload.length;
    if (this.settingsSize > this.maxSettingsSize) return this.fail(`sender protocol settings over the limit of ${this.maxSettingsSize} bytes`);
    let values: CborValue[];
    const decoder = this.settingsDecoder!;
    try {
      values = decoder.push(frame.payload);
      if (eos) decoder.end();
    } catch (err) {
      return this.fail(`error decoding CBOR from sender protocol settings frame: ${(err as Error).message}`);
    }
    this.settingsValues.push(...values);
    if (more) return { type: 'wantFrame', state: this.stateValue };
    const decoded = this.settingsValues.splice(0);
    this.settingsDecoder = undefined;
    if (decoded.length === 0) return this.fail('sender protocol settings frame did not contain CBOR data');
    if (decoded.length > 1) return this.fail('sender protocol settings frame contained multiple CBOR values');
    const d = decoded[0]!;
    const encodings = mapGet(d, 'contentencodings');
    if (encodings !== undefined) {
      if (!Array.isArray(encodings)) return this.fail('contentencodings in sender protocol settings is not a list');
      this.clientEncodings = encodings;
    }
    this.stateValue = 'idle';
    return { type: 'wantFrame', state: this.stateValue };
  }

  private readonly settingsValues: CborValue[] = [];

  private validateRequestFlags(frame: MuxFrame): ServerAction | undefined {
    const isNew = frame.flags & CommandRequestFlag.NEW;
    const cont = frame.flags & CommandRequestFlag.CONTINUATION;
    if (isNew && cont) return this.fail('received command request frame with both new and continuation flags set');
    if (!isNew && !cont) return this.fail('received command request frame with neither new nor continuation flags set');
    return undefined;
  }

  private onIdle(frame: MuxFrame): ServerAction {
    if (frame.type !== FrameType.COMMAND_REQUEST) return this.fail(`expected command request frame; got ${frame.type}`);
    const bad = this.validateRequestFlags(frame);
    if (bad) return bad;
    if (this.receiving.has(frame.requestId)) return this.fail(`request with ID ${frame.requestId} already received`);
    if (this.activeRequests.has(frame.requestId)) return this.fail(`request with ID ${frame.requestId} is already active`);
    if (!(frame.flags & CommandRequestFlag.NEW)) return this.fail('received command request frame without new flag set');
    if (this.receiving.size >= this.maxReceiving) return this.fail(`more than ${this.maxReceiving} requests being received at once`);
    if (frame.payload.length > this.maxRequestSize) return this.fail(`command request over the limit of ${this.maxRequestSize} bytes`);
    if (!this.buffer(frame.payload.length)) return this.overBuffered();
    const more = (frame.flags & CommandRequestFlag.MORE_FRAMES) !== 0;
    const expectingData = (frame.flags & CommandRequestFlag.EXPECT_DATA) !== 0;
    this.receiving.set(frame.requestId, {
      parts: [frame.payload],
      size: frame.payload.length,
      data: null,
      dataSize: 0,
      requestDone: !more,
      expectingData,
    });
    if (!more && !expectingData) return this.dispatch(frame.requestId);
    this.stateValue = 'command-receiving';
    return { type: 'wantFrame', state: this.stateValue };
  }

  private onCommandReceiving(frame: MuxFrame): ServerAction {
    if (frame.type === FrameType.COMMAND_REQUEST) {
      if (frame.flags & CommandRequestFlag.NEW) return this.onIdle(frame);
      const bad = this.validateRequestFlags(frame);
      if (bad) return bad;
    }
    if (this.activeRequests.has(frame.requestId)) return this.fail(`received frame for request that is still active: ${frame.requestId}`);
    const entry = this.receiving.get(frame.requestId);
    if (!entry) return this.fail(`received frame for request that is not receiving: ${frame.requestId}`);
    if (frame.type === FrameType.COMMAND_REQUEST) {
      const more = (frame.flags & CommandRequestFlag.MORE_FRAMES) !== 0;
      const expectingData = (frame.flags & CommandRequestFlag.EXPECT_DATA) !== 0;
      if (entry.requestDone) return this.fail('received command request frame when request frames were supposedly done');
      if (expectingData !== entry.expectingData) return this.fail('mismatch between expect data flag and previous frame');
      entry.size += frame.payload.length;
      if (entry.size > this.maxRequestSize) return this.fail(`command request over the limit of ${this.maxRequestSize} bytes`);
      if (!this.buffer(frame.payload.length)) return this.overBuffered();
      entry.parts.push(frame.payload);
      if (!more) entry.requestDone = true;
      if (!more && !expectingData) return this.dispatch(frame.requestId);
      return { type: 'wantFrame', state: this.stateValue };
    }
    if (frame.type === FrameType.COMMAND_DATA) {
      if (!entry.expectingData) return this.fail(`received command data frame for request that is not expecting data: ${frame.requestId}`);
      entry.data ??= [];
      entry.dataSize += frame.payload.length;
      if (entry.dataSize > this.maxDataSize) return this.fail(`command data over the limit of ${this.maxDataSize} bytes`);
      if (!this.buffer(frame.payload.length)) return this.overBuffered();
      entry.data.push(frame.payload);
      if (frame.flags & CommandDataFlag.CONTINUATION) return { type: 'wantFrame', state: this.stateValue };
      if (frame.flags & CommandDataFlag.EOS) {
        if (!entry.requestDone) return this.fail('received end of command data before the command request frames were done');
        return this.dispatch(frame.requestId);
      }
      return this.fail('command data frame without flags');
    }
    return this.fail(`received unexpected frame type: ${frame.type}`);
  }

  /** Counts `n` more buffered bytes; false when that would pass `maxBufferedSize`. */
  private buffer(n: number): boolean {
    if (this.bufferedSize + n > this.maxBufferedSize) return false;
    this.bufferedSize += n;
    return true;
  }

  private overBuffered(): ServerAction {
    return this.fail(`requests being received hold over the limit of ${this.maxBufferedSize} bytes`);
  }

  private dispatch(requestId: number): ServerAction {
    const entry = this.receiving.get(requestId)!;
    this.receiving.delete(requestId);
    this.bufferedSize -= entry.size + entry.dataSize;
    this.stateValue = this.receiving.size > 0 ? 'command-receiving' : 'idle';
    let request: CborValue;
    try {
      const values = decodeCborAll(concatBytes(entry.parts), this.cborLimits);
      if (values.length === 0) throw new CborError('no CBOR value', { origin: 'remote' });
      request = values[0]!;
    } catch (err) {
      return this.fail(`error decoding CBOR from command request: ${(err as Error).message}`);
    }
    const name = mapGet(request, 'name');
    if (name === undefined) return this.fail('command request missing "name" field');
    if (!(name instanceof Uint8Array)) return this.fail('command request "name" is not a byte string');
    const args = mapGet(request, 'args') ?? {};
    if (typeof args !== 'object' || args === null || Array.isArray(args) || args instanceof Uint8Array || args instanceof Set) {
      return this.fail('command request "args" is not a map');
    }
    this.activeRequests.add(requestId);
    return {
      type: 'runCommand',
      requestId,
      command: utf8Decode(name),
      args: args as CborObject | Map<CborValue, CborValue>,
      redirect: mapGet(request, 'redirect') ?? null,
      data: entry.data ? concatBytes(entry.data) : null,
    };
  }
}

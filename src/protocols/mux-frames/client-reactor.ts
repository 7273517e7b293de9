/**
 * Sans-I/O client reactor of the multiplexed frame profile: issues command requests (several may
 * be in flight, each with its own request id) and turns the server's frames into per-request
 * events: response data (decoded CBOR objects), errors, progress and text output.
 */
import { utf8Decode } from '../../bytes/text.js';
import type { CborLimits, CborObject, CborValue } from './cbor.js';
import { CborDecoder, decodeCborAll, encodeCbor, mapGet } from './cbor.js';
import type { EncodingOptions } from './encodings.js';
import { MuxProtocolError, StreamEncodingError } from './errors.js';
import { CommandDataFlag, CommandRequestFlag, CommandResponseFlag, DEFAULT_MAX_FRAME_SIZE, FrameType, ProtocolSettingsFlag, StreamFlag, StreamSettingsFlag } from './frame.js';
import type { MuxFrame } from './frame.js';
import { InputStream, OutputStream } from './streams.js';

/** One command issued by the client. */
export interface CommandRequest {
  readonly requestId: number;
  readonly name: string;
  readonly args: CborObject | Map<CborValue, CborValue> | undefined;
  readonly data: Uint8Array | undefined;
  readonly redirect: CborValue | undefined;
  state: 'pending' | 'sending' | 'sent' | 'receiving' | 'received' | 'errored';
  /** The response's leading status map, once received. */
  status: CborObject | Map<CborValue, CborValue> | undefined;
}

/** One atom of a text-output frame or error message. */
export interface TextAtom {
  msg: string;
  args: string[];
  labels: string[];
}

/**
 * What the caller should do after an event, discriminated by `type` (the frames client reactor
 * uses the same names for the same events):
 * - `responseData`: a piece of the response to `request`;
 * - `error`: `request` was answered with an error-response frame;
 * - `protocolError`: the server broke the protocol; the reactor is errored;
 * - `progress`, `textOutput`: side output of `request`.
 */
export type ClientAction =
  | { type: 'noop' }
  | { type: 'sendFrames'; frames: Uint8Array[] }
  | {
      type: 'responseData';
      request: CommandRequest;
      /** Decoded (content-decoded) bytes of this frame. */
      data: Uint8Array;
      /** Response objects completed by this frame (the leading status map is not among them). */
      objects: CborValue[];
      expectMore: boolean;
      eos: boolean;
    }
  | {
      type: 'error';
      message: string;
      /** The request the error-response frame belongs to. */
      request: CommandRequest;
      /** The error type the server gave: `server`, `command`, `protocol`, ... */
      errorType: string;
      atoms: TextAtom[];
      error: MuxProtocolError;
    }
  | { type: 'protocolError'; message: string; error: MuxProtocolError }
  | { type: 'progress'; request: CommandRequest; topic: string; pos: number; total: number; label?: string; item?: string }
  | { type: 'textOutput'; request: CommandRequest; atoms: TextAtom[]; text: string };

/** Options of `ClientReactor` (`createInflater` replaces the built-in zlib decompressor). */
export interface ClientReactorOptions extends Omit<EncodingOptions, 'deflateRaw'> {
  /** The transport allows sending more than once (full duplex). Default false. */
  hasMultipleSend?: boolean;
  /** Queue commands until `flushCommands()`. Default true. */
  bufferSends?: boolean;
  /** Content encodings to advertise in a sender-protocol-settings frame; none advertised when absent. */
  contentEncodings?: string[];
  /** Largest payload per outgoing frame. Default 32768. */
  maxFrameSize?: number;
  /** Limits for the response CBOR. */
  cbor?: CborLimits;
}

interface Active {
  request: CommandRequest;
  decoder: CborDecoder;
  sawStatus: boolean;
}

/** Formats text atoms: `%s` takes the next argument, `%%` is `%`. */
export function formatAtoms(atoms: TextAtom[]): string {
  let out = '';
  for (const a of atoms) {
    let i = 0;
    out += a.msg.replace(/%(.)/gs, (m, c: string) => (c === 's' ? (a.args[i++] ?? '') : c === '%' ? '%' : m));
  }
  return out;
}

function text(v: CborValue | undefined): string {
  if (v instanceof Uint8Array) return utf8Decode(v);
  if (typeof v === 'string') return v;
  return v === undefined || v === null ? '' : String(v);
}

function parseAtoms(v: CborValue | undefined): TextAtom[] {
  if (!Array.isArray(v)) throw new MuxProtocolError('expected a list of atoms', { origin: 'remote' });
  return v.map((a) => {
    const args = mapGet(a, 'args');
    const labels = mapGet(a, 'labels');
    return {
      msg: text(mapGet(a, 'msg')),
      args: Array.isArray(args) ? args.map((x) => text(x)) : [],
      labels: Array.isArray(labels) ? labels.map((x) => text(x)) : [],
    };
  });
}

/** Client side of the multiplexed frame protocol; see the module comment. */
export class ClientReactor {
  private readonly hasMultipleSend: boolean;
  private readonly bufferSends: boolean;
  private readonly encodings: string[] | undefined;
  private readonly maxFrameSize: number;
  private readonly cborLimits: CborLimits;
  private readonly encodingOptions: EncodingOptions;
  private canIssue = true;
  private canSend = true;
  private settingsSent = false;
  private nextRequestId = 1;
  private readonly out = new OutputStream(1);
  private readonly pending: CommandRequest[] = [];
  private readonly active = new Map<number, Active>();
  private readonly incoming = new Map<number, InputStream>();
  private readonly settingsDecoders = new Map<number, { decoder: CborDecoder; values: CborValue[] }>();
  private errorValue: MuxProtocolError | undefined;

  constructor(options: ClientReactorOptions = {}) {
    this.hasMultipleSend = options.hasMultipleSend ?? false;
    this.bufferSends = options.bufferSends ?? true;
    this.encodings = options.contentEncodings;
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.cborLimits = options.cbor ?? {};
    this.encodingOptions = { createInflater: options.createInflater, inflaterLimits: options.inflaterLimits };
  }

  /** The protocol error that ended this connection, if any. */
  get error(): MuxProtocolError | undefined {
    return this.errorValue;
  }

  /** Requests issued whose response has not ended. */
  get activeRequests(): CommandRequest[] {
    return [...this.active.values()].map((a) => a.request);
  }

  /**
   * Issues a command. With `bufferSends` (the default) it is queued until `flushCommands()`;
   * otherwise its frames are returned at once. Request ids are odd, increase by 2, wrap around,
   * and skip ids still in use.
   */
  callCommand(
    name: string,
    args?: CborObject | Map<CborValue, CborValue>,
    options: { data?: Uint8Array; redirect?: CborValue } = {},
  ): { request: CommandRequest; action: ClientAction } {
    if (!this.canIssue) throw new MuxProtocolError('cannot issue new commands', { origin: 'local' });
    const requestId = this.allocateId();
    const request: CommandRequest = {
      requestId,
      name,
      args,
      data: options.data,
      redirect: options.redirect,
      state: 'pending',
      status: undefined,
    };
    this.active.set(requestId, { request, decoder: new CborDecoder(this.cborLimits), sawStatus: false });
    if (this.bufferSends) {
      this.pending.push(request);
      return { request, action: { type: 'noop' } };
    }
    if (!this.canSend) throw new MuxProtocolError('sends cannot be performed on this instance', { origin: 'local' });
    if (!this.hasMultipleSend) {
      this.canSend = false;
      this.canIssue = false;
    }
    return { request, action: { type: 'sendFrames', frames: this.commandFrames(request) } };
  }

  /** Sends every queued command. Without `hasMultipleSend`, no command can be issued afterwards. */
  flushCommands(): ClientAction {
    if (this.pending.length === 0) return { type: 'noop' };
    if (!this.canSend) throw new MuxProtocolError('sends cannot be performed on this instance', { origin: 'local' });
    if (!this.hasMultipleSend) {
      this.canIssue = false;
      this.canSend = false;
    }
    const frames: Uint8Array[] = [];
    for (const r of this.pending.splice(0)) frames.push(...this.commandFrames(r));
    return { type: 'sendFrames', frames };
  }

  private allocateId(): number {
    for (let tries = 0; tries < 0x8000; tries++) {
      const id = this.nextRequestId;
      this.nextRequestId = id + 2 > 0xffff ? 1 : id + 2;
      if (!this.active.has(id)) return id;
    }
    throw new MuxProtocolError('all request ids are in use', { origin: 'local' });
  }

  private commandFrames(request: CommandRequest): Uint8Array[] {
    const frames: Uint8Array[] = [];
    request.state = 'sending';
    if (!this.settingsSent && this.encodings && this.encodings.length > 0) {
      this.settingsSent = true;
      frames.push(
        this.out.makeFrame(request.requestId, FrameType.SENDER_PROTOCOL_SETTINGS, ProtocolSettingsFlag.EOS, encodeCbor({ contentencodings: this.encodings })),
      );
    }
    const body: CborObject = { name: request.name };
    if (request.args && (request.args instanceof Map ? request.args.size > 0 : Object.keys(request.args).length > 0)) {
      body.args = request.args;
    }
    if (request.redirect !== undefined && request.redirect !== null) body.redirect = request.redirect;
    const cbor = encodeCbor(body);
    const max = this.maxFrameSize;
    const haveData = request.data !== undefined;
    let offset = 0;
    for (;;) {
      let flags = offset === 0 ? CommandRequestFlag.NEW : CommandRequestFlag.CONTINUATION;
      if (haveData) flags |= CommandRequestFlag.EXPECT_DATA;
      const payload = cbor.subarray(offset, offset + max);
      offset += payload.length;
      if (payload.length === max && offset < cbor.length) flags |= CommandRequestFlag.MORE_FRAMES;
      frames.push(this.out.makeFrame(request.requestId, FrameType.COMMAND_REQUEST, flags, payload));
      if (!(flags & CommandRequestFlag.MORE_FRAMES)) break;
    }
    if (haveData) {
      const data = request.data!;
      let off = 0;
      for (;;) {
        const chunk = data.subarray(off, off + DEFAULT_MAX_FRAME_SIZE);
        off += chunk.length;
        // As Mercurial: a full-size chunk is a continuation, so data of an exact multiple of the
        // frame size ends with an empty end-of-data frame.
        const full = chunk.length === DEFAULT_MAX_FRAME_SIZE;
        frames.push(this.out.makeFrame(request.requestId, FrameType.COMMAND_DATA, full ? CommandDataFlag.CONTINUATION : CommandDataFlag.EOS, chunk));
        if (!full) break;
      }
    }
    request.state = 'sent';
    return frames;
  }

  /** Processes one frame received from the server. */
  onFrame(frame: MuxFrame): ClientAction {
    if (this.errorValue) return this.protocolError('client already errored', false);
    if (frame.streamId % 2 === 1) return this.protocolError(`received frame with odd numbered stream ID: ${frame.streamId}`);
    let stream = this.incoming.get(frame.streamId);
    if (!stream) {
      if (!(frame.streamFlags & StreamFlag.BEGIN)) return this.protocolError('received frame on unknown stream without beginning of stream flag set');
      stream = new InputStream(frame.streamId, this.encodingOptions);
      this.incoming.set(frame.streamId, stream);
    }
    let payload = frame.payload;
    if (frame.streamFlags & StreamFlag.ENCODED) {
      try {
        payload = stream.decode(payload);
      } catch (err) {
        return this.protocolError(`error decoding ${stream.encoding} stream ${frame.streamId}: ${(err as Error).message}`);
      }
    }
    if (frame.streamFlags & StreamFlag.END) this.incoming.delete(frame.streamId);
    if (frame.type === FrameType.STREAM_SETTINGS) return this.onStreamSettings(frame, payload, stream);
    const entry = this.active.get(frame.requestId);
    if (!entry) return this.protocolError(`received frame for inactive request ID: ${frame.requestId}`);
    const request = entry.request;
    request.state = 'receiving';
    switch (frame.type) {
      case FrameType.COMMAND_RESPONSE:
        return this.onResponse(entry, frame, payload);
      case FrameType.ERROR_RESPONSE: {
        request.state = 'errored';
        this.active.delete(request.requestId);
        let type: string;
        let atoms: TextAtom[];
        try {
          const m = decodeCborAll(payload, this.cborLimits)[0];
          type = text(mapGet(m, 'type'));
          atoms = parseAtoms(mapGet(m, 'message'));
        } catch (err) {
          return this.protocolError(`invalid error-response frame: ${(err as Error).message}`);
        }
        const message = formatAtoms(atoms);
        return { type: 'error', message, request, errorType: type, atoms, error: new MuxProtocolError(`${type} error: ${message}`, { origin: 'remote' }) };
      }
      case FrameType.PROGRESS: {
        try {
          const m = decodeCborAll(payload, this.cborLimits)[0];
          const pos = mapGet(m, 'pos');
          const total = mapGet(m, 'total');
          const label = mapGet(m, 'label');
          const item = mapGet(m, 'item');
          return {
            type: 'progress',
            request,
            topic: text(mapGet(m, 'topic')),
            pos: typeof pos === 'number' ? pos : Number(pos ?? 0),
            total: typeof total === 'number' ? total : Number(total ?? 0),
            ...(label !== undefined ? { label: text(label) } : {}),
            ...(item !== undefined ? { item: text(item) } : {}),
          };
        } catch (err) {
          return this.protocolError(`invalid progress frame: ${(err as Error).message}`);
        }
      }
      case FrameType.TEXT_OUTPUT: {
        try {
          const atoms = parseAtoms(decodeCborAll(payload, this.cborLimits)[0]);
          return { type: 'textOutput', request, atoms, text: formatAtoms(atoms) };
        } catch (err) {
          return this.protocolError(`invalid text-output frame: ${(err as Error).message}`);
        }
      }
      default:
        return this.protocolError(`unhandled frame type: ${frame.type}`);
    }
  }

  private onResponse(entry: Active, frame: MuxFrame, payload: Uint8Array): ClientAction {
    const request = entry.request;
    const eos = (frame.flags & CommandResponseFlag.EOS) !== 0;
    const expectMore = (frame.flags & CommandResponseFlag.CONTINUATION) !== 0;
    let objects: CborValue[];
    try {
      objects = entry.decoder.push(payload);
      if (eos) entry.decoder.end();
    } catch (err) {
      this.active.delete(request.requestId);
      request.state = 'errored';
      return this.protocolError(`invalid CBOR in response to request ${request.requestId}: ${(err as Error).message}`);
    }
    if (!entry.sawStatus && objects.length > 0) {
      entry.sawStatus = true;
      const status = objects.shift()!;
      if (typeof status === 'object' && status !== null && !(status instanceof Uint8Array) && !Array.isArray(status) && !(status instanceof Set)) {
        request.status = status;
      }
    }
    if (eos) {
      request.state = 'received';
      this.active.delete(request.requestId);
    }
    return { type: 'responseData', request, data: payload, objects, expectMore, eos };
  }

  private onStreamSettings(frame: MuxFrame, payload: Uint8Array, stream: InputStream): ClientAction {
    const more = frame.flags & StreamSettingsFlag.CONTINUATION;
    const eos = frame.flags & StreamSettingsFlag.EOS;
    if (more && eos) return this.protocolError('stream encoding settings frame cannot have both continuation and end of stream flags set');
    if (!more && !eos) return this.protocolError('stream encoding settings frame must have continuation or end of stream flag set');
    let state = this.settingsDecoders.get(frame.streamId);
    if (!state) {
      state = { decoder: new CborDecoder({ ...this.cborLimits, maxValueSize: 64 * 1024 }), values: [] };
      this.settingsDecoders.set(frame.streamId, state);
    }
    try {
      state.values.push(...state.decoder.push(payload));
      if (eos) state.decoder.end();
    } catch (err) {
      return this.protocolError(`error decoding CBOR from stream encoding settings frame: ${(err as Error).message}`);
    }
    if (more) return { type: 'noop' };
    this.settingsDecoders.delete(frame.streamId);
    if (state.values.length === 0) return this.protocolError('stream encoding settings frame did not contain CBOR data');
    const [name, ...extra] = state.values;
    try {
      if (!(name instanceof Uint8Array)) throw new StreamEncodingError('profile name is not a byte string', { origin: 'remote' });
      stream.setDecoder(utf8Decode(name), extra);
    } catch (err) {
      return this.protocolError(`error setting stream decoder: ${(err as Error).message}`);
    }
    return { type: 'noop' };
  }

  private protocolError(message: string, record = true): ClientAction {
    const error = new MuxProtocolError(message, { origin: 'remote' });
    if (record) this.errorValue = error;
    return { type: 'protocolError', message, error };
  }
}

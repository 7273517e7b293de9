/**
 * The response writer of the multiplexed frame profile's server: one per request, turning CBOR
 * objects, progress and text output into frames on an output stream. Created by
 * `ServerReactor.startResponse`; its frames go through the reactor (which defers them when the
 * transport is half duplex).
 */
import { concatBytes } from '../../bytes/text.js';
import type { CborObject, CborValue } from './cbor.js';
import { encodeCbor, encodeCborChunks, encodeIndefiniteBytesChunks } from './cbor.js';
import { MuxProtocolError } from './errors.js';
import { CommandResponseFlag, FrameType } from './frame.js';
import type { ServerAction } from './server-reactor.js';
import type { OutputStream } from './streams.js';

/** What a `ResponseWriter` needs from its reactor: output (deferred or not) and the end of a request. */
export interface ResponseSink {
  output(frames: Uint8Array[]): ServerAction;
  release(requestId: number): void;
}

/**
 * Writes the response of one request: CBOR objects coalesced into command-response frames of up
 * to `maxFrameSize` bytes, on one output stream, with the stream settings and the `status: ok`
 * map first. Every method returns the frames to send now (or a noop when output is deferred).
 */
export class ResponseWriter {
  private emitted = false;
  private done = false;
  private buffered: Uint8Array[] = [];
  private bufferedSize = 0;

  constructor(
    private readonly reactor: ResponseSink,
    readonly stream: OutputStream,
    readonly requestId: number,
    private readonly maxFrameSize: number,
  ) {}

  /** Whether the response has ended (by `end`, `fail` or `commandError`). */
  get ended(): boolean {
    return this.done;
  }

  /** Sends one object, CBOR-encoded. */
  write(value: CborValue): ServerAction {
    return this.writeChunks(encodeCborChunks(value));
  }

  /** Sends bytes that already hold CBOR (Mercurial's `encodedresponse`). */
  writeEncoded(cbor: Uint8Array): ServerAction {
    return this.writeChunks([cbor]);
  }

  /** Sends an indefinite-length byte string made of `parts` (Mercurial's `indefinitebytestringresponse`). */
  writeIndefiniteBytes(parts: Iterable<Uint8Array>): ServerAction {
    return this.writeChunks(encodeIndefiniteBytesChunks(parts));
  }

  /** A progress frame for this request (not encoded, outside the response data). */
  progress(topic: string, pos: number, total: number, extra: { label?: string; item?: string } = {}): ServerAction {
    this.check();
    const m: CborObject = { topic, pos, total };
    if (extra.label !== undefined) m.label = extra.label;
    if (extra.item !== undefined) m.item = extra.item;
    return this.reactor.output([this.stream.makeFrame(this.requestId, FrameType.PROGRESS, 0, encodeCbor(m))]);
  }

  /**
   * A text-output frame: atoms of (format string, args, labels), to be formatted by the client
   * (`%s` takes the next argument, `%%` is a literal `%`).
   */
  text(atoms: { msg: string | Uint8Array; args?: (string | Uint8Array)[]; labels?: string[] }[]): ServerAction {
    this.check();
    const list: CborValue[] = atoms.map((a) => {
      const m: CborObject = { msg: a.msg };
      if (a.args && a.args.length > 0) m.args = a.args;
      if (a.labels && a.labels.length > 0) m.labels = a.labels;
      return m;
    });
    const payload = encodeCbor(list);
    if (payload.length > this.maxFrameSize) throw new MuxProtocolError('text output does not fit in a single frame', { origin: 'local' });
    return this.reactor.output([this.stream.makeFrame(this.requestId, FrameType.TEXT_OUTPUT, 0, payload)]);
  }

  /** Ends the response: flushes buffered data and sends the end-of-stream command-response frame(s). */
  end(): ServerAction {
    this.check();
    const frames: Uint8Array[] = [];
    // Unlike Mercurial (which sends nothing for an empty response), an empty response still
    // carries its status and end of stream, so the client is never left waiting.
    if (!this.emitted) this.begin(frames);
    this.flushBuffered(frames);
    const payload = this.stream.flush();
    let offset = 0;
    for (;;) {
      const chunk = payload.subarray(offset, offset + this.maxFrameSize);
      offset += chunk.length;
      const last = offset >= payload.length;
      frames.push(
        this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, last ? CommandResponseFlag.EOS : CommandResponseFlag.CONTINUATION, chunk, payload.length > 0),
      );
      if (last) break;
    }
    this.finish();
    return this.reactor.output(frames);
  }

  /**
   * Fails the request with an error-response frame (type `server`), after whatever output was
   * already sent. The response ends.
   */
  fail(message: string, type: 'server' | 'command' | 'protocol' = 'server'): ServerAction {
    this.check();
    const frames: Uint8Array[] = [];
    this.flushBuffered(frames);
    const payload = encodeCbor({ type, message: [{ msg: message }] });
    frames.push(this.stream.makeFrame(this.requestId, FrameType.ERROR_RESPONSE, 0, payload));
    this.finish();
    return this.reactor.output(frames);
  }

  /** A command error before any output: one command-response frame with status `error`. */
  commandError(message: string, args?: CborValue[]): ServerAction {
    this.check();
    if (this.emitted) throw new MuxProtocolError('command error after output was sent; use fail()', { origin: 'local' });
    const error: CborObject = { message };
    if (args && args.length > 0) error.args = args;
    const payload = encodeCbor({ status: 'error', error });
    const frame = this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, CommandResponseFlag.EOS, payload);
    this.finish();
    return this.reactor.output([frame]);
  }

  private check(): void {
    if (this.done) throw new MuxProtocolError(`response to request ${this.requestId} already ended`, { origin: 'local' });
  }

  private finish(): void {
    this.done = true;
    this.reactor.release(this.requestId);
  }

  private begin(frames: Uint8Array[]): void {
    this.emitted = true;
    const settings = this.stream.makeStreamSettingsFrame(this.requestId);
    if (settings) frames.push(settings);
    let overall = encodeCbor({ status: 'ok' });
    let encoded = false;
    if (this.stream.streamSettingsSent) {
      overall = this.stream.encode(overall);
      encoded = true;
      if (overall.length === 0) return;
    }
    frames.push(this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, CommandResponseFlag.CONTINUATION, overall, encoded));
  }

  private writeChunks(chunks: Uint8Array[]): ServerAction {
    this.check();
    const frames: Uint8Array[] = [];
    if (!this.emitted) this.begin(frames);
    for (const raw of chunks) this.emitChunk(this.stream.encode(raw), frames);
    const enc = this.stream.encoding;
    if (enc !== undefined && enc !== 'identity') {
      // A compressing stream is one byte sequence shared by every request written to it, so each
      // write leaves nothing pending: its bytes are flushed and framed under this request id now,
      // in stream order, before another request's writer can add to the stream.
      this.flushBuffered(frames);
      const tail = this.stream.flush();
      for (let off = 0; off < tail.length; off += this.maxFrameSize) {
        frames.push(this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, CommandResponseFlag.CONTINUATION, tail.subarray(off, off + this.maxFrameSize), true));
      }
    }
    return this.reactor.output(frames);
  }

  /** Coalesces encoded chunks into frames the way Mercurial's buffering emitter does. */
  private emitChunk(data: Uint8Array, frames: Uint8Array[]): void {
    if (data.length === 0) return;
    const max = this.maxFrameSize;
    if (data.length > max) {
      this.flushBuffered(frames);
      for (let off = 0; off < data.length; off += max) {
        frames.push(this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, CommandResponseFlag.CONTINUATION, data.subarray(off, off + max), this.stream.streamSettingsSent));
      }
      return;
    }
    if (data.length + this.bufferedSize < max) {
      this.buffered.push(data);
      this.bufferedSize += data.length;
      return;
    }
    this.flushBuffered(frames);
    this.buffered.push(data);
    this.bufferedSize = data.length;
  }

  private flushBuffered(frames: Uint8Array[]): void {
    if (this.bufferedSize === 0) {
      this.buffered = [];
      return;
    }
    const payload = concatBytes(this.buffered);
    this.buffered = [];
    this.bufferedSize = 0;
    frames.push(this.stream.makeFrame(this.requestId, FrameType.COMMAND_RESPONSE, CommandResponseFlag.CONTINUATION, payload, this.stream.streamSettingsSent));
  }
}

import { encodeCbor } from './cbor.js';
import type { EncodingOptions, StreamDecoder, StreamEncoder } from './encodings.js';
import { createStreamDecoder, createStreamEncoder } from './encodings.js';
import { MuxProtocolError } from './errors.js';
import { FrameType, StreamFlag, StreamSettingsFlag, encodeFrame } from './frame.js';

/**
 * The sending side of one stream: numbers its frames, sets stream-begin on the first one, and
 * holds the stream's content encoder. Clients use odd stream ids, servers even ones.
 */
export class OutputStream {
  private active = false;
  private encoder: StreamEncoder | undefined;
  /** Whether the stream-settings frame naming the encoder has been sent (encoded frames need it). */
  streamSettingsSent = false;

  constructor(
    readonly streamId: number,
    private readonly options: EncodingOptions = {},
  ) {
    if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xff) throw new MuxProtocolError(`stream id ${streamId} is outside 0..255`, { origin: 'local' });
  }

  /** Name of the content encoding, or undefined when none was set. */
  get encoding(): string | undefined {
    return this.encoder?.name;
  }

  /** Sets the content encoding (`identity`, `zlib`); throws `StreamEncodingError` when unavailable. */
  setEncoder(name: string): void {
    this.encoder = createStreamEncoder(name, this.options);
  }

  encode(data: Uint8Array): Uint8Array {
    return this.encoder ? this.encoder.encode(data) : data;
  }

  flush(): Uint8Array {
    return this.encoder ? this.encoder.flush() : new Uint8Array(0);
  }

  finish(): Uint8Array {
    return this.encoder ? this.encoder.finish() : new Uint8Array(0);
  }

  /** Serializes one frame on this stream. `encoded` marks the payload as content-encoded. */
  makeFrame(requestId: number, type: number, flags: number, payload: Uint8Array, encoded = false, endStream = false): Uint8Array {
    let streamFlags = 0;
    if (!this.active) {
      streamFlags |= StreamFlag.BEGIN;
      this.active = true;
    }
    if (encoded) {
      if (!this.streamSettingsSent) throw new MuxProtocolError('an encoded frame needs the stream settings sent first', { origin: 'local' });
      streamFlags |= StreamFlag.ENCODED;
    }
    if (endStream) {
      streamFlags |= StreamFlag.END;
      this.active = false;
    }
    if (type === FrameType.STREAM_SETTINGS && flags & StreamSettingsFlag.EOS) this.streamSettingsSent = true;
    return encodeFrame({ requestId, streamId: this.streamId, streamFlags, type, flags, payload });
  }

  /** The stream-settings frame naming this stream's encoder, or undefined if none is needed (yet). */
  makeStreamSettingsFrame(requestId: number): Uint8Array | undefined {
    if (!this.encoder || this.streamSettingsSent) return undefined;
    return this.makeFrame(requestId, FrameType.STREAM_SETTINGS, StreamSettingsFlag.EOS, encodeCbor(this.encoder.name));
  }
}

/** The receiving side of one stream: its content decoder, identity until stream settings say otherwise. */
export class InputStream {
  private decoder: StreamDecoder | undefined;
  constructor(
    readonly streamId: number,
    private readonly options: EncodingOptions = {},
  ) {}

  get encoding(): string {
    return this.decoder?.name ?? 'identity';
  }

  setDecoder(name: string, extra: readonly unknown[]): void {
    this.decoder = createStreamDecoder(name, extra, this.options);
  }

  decode(data: Uint8Array): Uint8Array {
    return this.decoder ? this.decoder.decode(data) : data;
  }
}

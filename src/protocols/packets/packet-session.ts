/**
 * The sans-I/O core of Armchair's packet protocol: header encoding, command ids, the window of
 * in-flight packets, `ready` acknowledgements, the error state and the file-transfer stream. It
 * takes bytes in (through its decoder) and gives bytes out; no sockets, timers or promises.
 */
import type { ByteQueue } from '../../bytes/byte-queue.js';
import type { Decoder, Encoder } from '../../codecs/codec.js';
import { FrameTooLargeError, TruncatedFrameError } from '../../codecs/errors.js';
import { DEFAULT_MAX_FRAME_LENGTH, packetFrame, type LengthFieldCodec } from '../../codecs/length-field.js';
import { PacketErrorStateError, PacketPayloadError, PacketProtocolError, PacketUsageError, UnknownPacketIdError, UnknownPacketTypeError, UnsafeFileNameError } from './errors.js';
import { decodeAck, decodeFileNames, encodeAck, encodeFileNames, jsonSerializer, type PayloadSerializer } from './serializers.js';
import { PacketTypes } from './types.js';

/** Size of the packet header: length (8, big-endian), type (1), command id (8, big-endian). */
export const PACKET_HEADER_SIZE = 17;

/** Armchair's file end marker (the `'compat'` file mode). */
export const ARMCHAIR_FILE_END_MARKER: Uint8Array = new TextEncoder().encode('AFKJldkjvaJKDvJDFDFGHowCouldYouEverHaveThisInAFile');

/** @deprecated use `ARMCHAIR_FILE_END_MARKER` */
export const SEED_FILE_END_MARKER = ARMCHAIR_FILE_END_MARKER;

/** A received packet. */
export interface Packet {
  /** Type name from the registry. */
  type: string;
  /** Type byte on the wire. */
  typeByte: number;
  /** Command id from the header. */
  id: number;
  /** Decoded payload; `undefined` for a zero-length payload. */
  payload: unknown;
  /** True for urgent ("ghost") types. */
  urgent: boolean;
}

/** What the decoder yields. */
export type PacketEvent =
  | { kind: 'packet'; packet: Packet }
  /** A `ready` acknowledged in-flight packet `acked` (already removed from the window). */
  | { kind: 'ack'; acked: number; packet: Packet }
  /** An `error` packet: the session is now in the error state. */
  | { kind: 'error'; packet: Packet }
  /** A `sending_files` packet: the file stream follows (file-start, file-data..., file-end per file, then files-end). */
  | { kind: 'files'; packet: Packet; names: string[] }
  | { kind: 'file-start'; name: string; index: number }
  | { kind: 'file-data'; data: Uint8Array }
  | { kind: 'file-end'; name: string; index: number; size: number }
  | { kind: 'files-end'; packet: Packet };

/** How file bytes travel after a `sending_files` packet. */
export type FileMode = 'chunked' | 'compat';

export interface PacketSessionOptions {
  /** Type registry. Default: Armchair's table and urgent types. */
  types?: PacketTypes;
  /** Maximum number of non-urgent, non-`ready` packets in flight. Default 4 (Armchair's buffsize). */
  window?: number;
  /** Payload serializer. Default JSON. */
  serializer?: PayloadSerializer;
  /** Maximum payload size accepted, checked on the header before buffering. Default 8 MiB. */
  maxPayload?: number;
  /**
   * `'chunked'` (default): each file is a series of chunks with a 4-byte big-endian length, ended by
   * an empty chunk. `'compat'`: Armchair's raw bytes followed by the end marker.
   */
  fileMode?: FileMode;
  /** Maximum file chunk length accepted in chunked mode. Default 16 MiB. */
  maxFileChunk?: number;
  /** End marker for compat mode. Default: Armchair's (`ARMCHAIR_FILE_END_MARKER`). */
  endMarker?: Uint8Array;
}

/** An encoded outgoing packet. */
export interface OutgoingPacket {
  id: number;
  type: string;
  /** Header and payload (the payload is not copied into the header). */
  bytes: Uint8Array[];
}

/** Largest file-data event handed out at once. */
const MAX_DATA_EVENT = 1024 * 1024;

/** Writes the 17-byte header. */
export function encodePacketHeader(payloadLength: number, typeByte: number, id: number): Uint8Array {
  const h = new Uint8Array(PACKET_HEADER_SIZE);
  const v = new DataView(h.buffer);
  v.setBigUint64(0, BigInt(payloadLength));
  h[8] = typeByte;
  v.setBigUint64(9, BigInt(id));
  return h;
}

/**
 * Checks a received file name: it must be a non-empty string, a base name (no `/`, `\` or NUL)
 * and not `.` or `..`. Returns the reason for refusing it, or `undefined`.
 */
export function fileNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'not a string';
  if (name.length === 0) return 'empty';
  if (/[/\\\0]/.test(name)) return 'contains a path separator or NUL';
  if (name === '.' || name === '..') return 'is a relative path component';
  return undefined;
}

interface FileState {
  packet: Packet;
  names: string[];
  index: number;
  started: boolean;
  remaining: number;
  size: number;
  discard: boolean;
}

/**
 * State of one end of a packet connection.
 *
 * Sending: `canSend(type)` says whether the window has room; `encode(type, payload)` assigns the
 * id (the counter increases before every non-urgent packet, `ready` included; urgent packets carry
 * the current id) and records non-urgent, non-`ready` packets as in flight. Receiving: `decoder`
 * is a `Decoder<PacketEvent>` over a `ByteQueue`; a `ready` removes its id from the window.
 */
export class PacketSession {
  readonly types: PacketTypes;
  readonly window: number;
  readonly serializer: PayloadSerializer;
  readonly fileMode: FileMode;
  readonly endMarker: Uint8Array;
  readonly maxFileChunk: number;
  /** The current command id (the last one assigned). */
  id = 0;
  private readonly inFlightIds = new Set<number>();
  /** Ids dropped from the window by `resetError`; a late `ready` for one is ignored. */
  private readonly forgotten = new Set<number>();
  private errorState: { payload: unknown } | undefined;
  private readonly header: LengthFieldCodec<'type' | 'id'>;
  private files: FileState | undefined;
  private fatal: unknown;
  /** Decoder and pass-through encoder for a frame channel. */
  readonly decoder: Decoder<PacketEvent> & Encoder<Uint8Array>;

  constructor(options: PacketSessionOptions = {}) {
    this.types = options.types ?? new PacketTypes();
    this.window = options.window ?? 4;
    if (!Number.isInteger(this.window) || this.window < 1) throw new PacketUsageError('WK_PACKET_WINDOW', `window must be a positive integer, got ${this.window}`);
    this.serializer = options.serializer ?? jsonSerializer();
    this.fileMode = options.fileMode ?? 'chunked';
    this.endMarker = options.endMarker ?? ARMCHAIR_FILE_END_MARKER;
    if (this.endMarker.length === 0) throw new PacketUsageError('WK_PACKET_MARKER', 'end marker must not be empty');
    this.maxFileChunk = options.maxFileChunk ?? 16 * 1024 * 1024;
    this.header = packetFrame({ maxFrameLength: options.maxPayload ?? DEFAULT_MAX_FRAME_LENGTH });
    this.decoder = {
      name: 'packet',
      decode: (queue) => this.decode(queue),
      decodeEof: (queue) => this.decodeEof(queue),
      encode: (bytes, out) => out.append(bytes),
    };
  }

  /** Ids sent and not yet acknowledged, oldest first. */
  get inFlight(): number[] {
    return [...this.inFlightIds];
  }

  /** True while an `error` packet's state is set. */
  get inError(): boolean {
    return this.errorState !== undefined;
  }

  /** The payload of the `error` packet that set the error state. */
  get errorPayload(): unknown {
    return this.errorState?.payload;
  }

  /** True once the input can no longer be followed (oversized chunk, undelimitable file list). */
  get broken(): boolean {
    return this.fatal !== undefined;
  }

  /** True while the decoder is inside a file stream. */
  get receivingFiles(): boolean {
    return this.files !== undefined;
  }

  /** Throws `PacketErrorStateError` in the error state. */
  checkState(): void {
    if (this.errorState) throw new PacketErrorStateError(this.errorState.payload);
  }

  /** True when a packet of `type` can be sent now (urgent and `ready` always can). */
  canSend(type: string): boolean {
    return this.occupiesWindow(type) ? this.inFlightIds.size < this.window : true;
  }

  /** True for the packets the window counts: not urgent, not `ready`. */
  occupiesWindow(type: string): boolean {
    return type !== 'ready' && !this.types.isUrgent(type);
  }

  /**
   * Encodes a packet and updates the window. Throws `PacketErrorStateError` in the error state and
   * `PacketUsageError` (`WK_PACKET_WINDOW_FULL`) when the window has no room (check `canSend`).
   */
  encode(type: string, payload?: unknown): OutgoingPacket {
    return this.encodeRaw(type, payload === undefined ? undefined : this.serializer.encode(payload));
  }

  /** Encodes a `ready` acknowledging `id`. */
  encodeAck(id: number): OutgoingPacket {
    return this.encodeRaw('ready', encodeAck(this.serializer, id));
  }

  /** Encodes a `sending_files` packet for these base names. */
  encodeFileNames(names: string[]): OutgoingPacket {
    return this.encodeRaw('sending_files', this.fileNamesBody(names));
  }

  /** Checks base names and serializes a `sending_files` payload (to pass to `encodeRaw` later). */
  fileNamesBody(names: string[]): Uint8Array {
    for (const n of names) {
      const problem = fileNameProblem(n);
      if (problem) throw new PacketUsageError('WK_PACKET_FILE_NAME', `file name ${JSON.stringify(n)} ${problem}`);
    }
    return encodeFileNames(this.serializer, names);
  }

  /** Encodes a packet with an already serialized payload. */
  encodeRaw(type: string, body: Uint8Array | undefined): OutgoingPacket {
    this.checkState();
    const typeByte = this.types.byteOf(type);
    if (!this.canSend(type)) throw new PacketUsageError('WK_PACKET_WINDOW_FULL', `window of ${this.window} packets is full`);
    if (!this.types.isUrgent(type)) this.id++;
    const id = this.id;
    if (this.occupiesWindow(type)) this.inFlightIds.add(id);
    const header = encodePacketHeader(body?.length ?? 0, typeByte, id);
    return { id, type, bytes: body && body.length > 0 ? [header, body] : [header] };
  }

  /** Chunked file mode: the header of a data chunk of `length` bytes (0 ends the file). */
  fileChunkHeader(length: number): Uint8Array {
    const h = new Uint8Array(4);
    new DataView(h.buffer).setUint32(0, length);
    return h;
  }

  /** Leaves the error state and clears the window without waiting for `ready`s. */
  resetError(): void {
    this.errorState = undefined;
    for (const id of this.inFlightIds) this.forgotten.add(id);
    this.inFlightIds.clear();
  }

  private decodeEof(queue: ByteQueue): PacketEvent | undefined {
    if (this.files) throw new TruncatedFrameError(`file ${JSON.stringify(this.files.names[this.files.index] ?? '')}`, queue.length, ' (input ended inside a file transfer)');
    if (queue.length > 0) throw new TruncatedFrameError('packet', queue.length);
    return undefined;
  }

  private decode(queue: ByteQueue): PacketEvent | undefined {
    if (this.fatal !== undefined) throw this.fatal;
    for (;;) {
      if (this.files) {
        const ev = this.fileMode === 'chunked' ? this.decodeChunked(queue, this.files) : this.decodeCompat(queue, this.files);
        if (ev === null) continue; // discarded data
        return ev;
      }
      const frame = this.header.decode(queue);
      if (frame === undefined) return undefined;
      return this.onFrame(frame.fields.type as number, frame.fields.id as number, frame.payload);
    }
  }

  private onFrame(typeByte: number, id: number, body: Uint8Array): PacketEvent {
    const type = this.types.nameOf(typeByte);
    if (type === undefined) throw new UnknownPacketTypeError(typeByte, id);
    const packet: Packet = { type, typeByte, id, payload: undefined, urgent: this.types.isUrgent(type) };
    if (type === 'ready') {
      let acked: unknown;
      try {
        acked = body.length > 0 ? decodeAck(this.serializer, body) : undefined;
      } catch (err) {
        throw new PacketPayloadError(type, id, err);
      }
      packet.payload = acked;
      if (typeof acked === 'number' && this.inFlightIds.delete(acked)) return { kind: 'ack', acked, packet };
      if (typeof acked === 'number' && this.forgotten.delete(acked)) return { kind: 'ack', acked, packet };
      throw new UnknownPacketIdError(acked);
    }
    if (type === 'sending_files') {
      let names: unknown;
      try {
        names = body.length > 0 ? decodeFileNames(this.serializer, body) : undefined;
      } catch (err) {
        throw this.setFatal(new PacketPayloadError(type, id, err));
      }
      // Without a list of names the file stream that follows cannot be delimited.
      if (!Array.isArray(names)) throw this.setFatal(new PacketProtocolError('WK_PACKET_FILES', `sending_files packet ${id} carries no list of file names`, { origin: 'remote' }));
      packet.payload = names;
      const bad = names.map((n) => [n, fileNameProblem(n)] as const).find(([, p]) => p !== undefined);
      this.files = { packet, names: names as string[], index: 0, started: false, remaining: 0, size: 0, discard: bad !== undefined };
      if (bad) {
        const err = new UnsafeFileNameError(bad[0], bad[1]!);
        (err as { id?: number }).id = id;
        throw err;
      }
      if (names.length === 0) this.files = undefined;
      return { kind: 'files', packet, names: names as string[] };
    }
    try {
      packet.payload = body.length > 0 ? this.serializer.decode(body) : undefined;
    } catch (err) {
      throw new PacketPayloadError(type, id, err);
    }
    if (type === 'error') {
      this.errorState = { payload: packet.payload };
      return { kind: 'error', packet };
    }
    return { kind: 'packet', packet };
  }

  private setFatal(err: unknown): unknown {
    this.fatal = err;
    return err;
  }

  /** Advances to the next file; returns the file-end event (or null when discarding). */
  private endFile(f: FileState): PacketEvent | null {
    const ev: PacketEvent = { kind: 'file-end', name: f.names[f.index]!, index: f.index, size: f.size };
    f.index++;
    f.started = false;
    f.size = 0;
    return f.discard ? null : ev;
  }

  /** Shared start/finish logic; returns an event, null (discarded, go on) or undefined (nothing yet). */
  private fileStep(f: FileState): PacketEvent | null | undefined {
    if (f.index >= f.names.length) {
      this.files = undefined;
      return f.discard ? null : { kind: 'files-end', packet: f.packet };
    }
    if (!f.started) {
      f.started = true;
      return f.discard ? null : { kind: 'file-start', name: f.names[f.index]!, index: f.index };
    }
    return undefined;
  }

  private data(f: FileState, queue: ByteQueue, n: number): PacketEvent | null {
    const data = queue.read(n)!;
    f.size += n;
    return f.discard ? null : { kind: 'file-data', data };
  }

  private decodeChunked(queue: ByteQueue, f: FileState): PacketEvent | null | undefined {
    const step = this.fileStep(f);
    if (step !== undefined) return step;
    if (f.remaining > 0) {
      const n = Math.min(f.remaining, queue.length, MAX_DATA_EVENT);
      if (n === 0) return undefined;
      f.remaining -= n;
      return this.data(f, queue, n);
    }
    const h = queue.peek(4);
    if (h === undefined) return undefined;
    const len = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
    if (len > this.maxFileChunk) throw this.setFatal(new FrameTooLargeError('file chunk', len, this.maxFileChunk, true));
    queue.skip(4);
    if (len === 0) return this.endFile(f);
    f.remaining = len;
    return null;
  }

  private decodeCompat(queue: ByteQueue, f: FileState): PacketEvent | null | undefined {
    const step = this.fileStep(f);
    if (step !== undefined) return step;
    const marker = this.endMarker;
    const at = queue.indexOf(marker);
    if (at > 0) return this.data(f, queue, Math.min(at, MAX_DATA_EVENT));
    if (at === 0) {
      queue.skip(marker.length);
      return this.endFile(f);
    }
    const safe = Math.min(queue.length - (marker.length - 1), MAX_DATA_EVENT);
    if (safe <= 0) return undefined;
    return this.data(f, queue, safe);
  }
}

/**
 * Finds an end marker in a byte stream fed in chunks (for refusing, in compat mode, to send a file
 * that contains it). Linear: keeps only the last `marker.length - 1` bytes between chunks.
 */
export class MarkerScanner {
  private tail = new Uint8Array(0);
  /** Total bytes fed. */
  fed = 0;
  constructor(readonly marker: Uint8Array) {}

  /** Feeds a chunk; returns true once the marker has been seen. */
  push(chunk: Uint8Array): boolean {
    const m = this.marker;
    const joined = new Uint8Array(this.tail.length + Math.min(chunk.length, m.length - 1));
    joined.set(this.tail);
    joined.set(chunk.subarray(0, joined.length - this.tail.length), this.tail.length);
    this.fed += chunk.length;
    if (indexOfSeq(joined, m) >= 0 || indexOfSeq(chunk, m) >= 0) return true;
    const keep = m.length - 1;
    if (chunk.length >= keep) this.tail = chunk.slice(chunk.length - keep);
    else {
      const t = new Uint8Array(Math.min(keep, this.tail.length + chunk.length));
      const all = new Uint8Array(this.tail.length + chunk.length);
      all.set(this.tail);
      all.set(chunk, this.tail.length);
      t.set(all.subarray(all.length - t.length));
      this.tail = t;
    }
    return false;
  }
}

function indexOfSeq(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  let i = hay.indexOf(first);
  while (i >= 0 && i + needle.length <= hay.length) {
    let ok = true;
    for (let k = 1; k < needle.length; k++) {
      if (hay[i + k] !== needle[k]) {
        ok = false;
        break;
      }
    }
    if (ok) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

import { Packr } from 'msgpackr';
import { utf8DecodeStrict, utf8Encode } from '../../bytes/text.js';
import { PacketUsageError } from './errors.js';
import { asTuple, pickle, unpickle, type PickleOptions, type UnpickleOptions } from '../../formats/pickle/index.js';

/**
 * Turns packet payloads into bytes and back. A packet with no payload (`undefined`) has a
 * zero-length body and never reaches the serializer.
 *
 * The protocol's own payloads use fixed shapes, as Armchair sends them: a `ready` carries `[id]`
 * and a `sending_files` carries `[[name, ...]]`. Serializers that cannot express arrays override
 * `encodeAck`/`decodeAck` and `encodeFileNames`/`decodeFileNames`.
 */
export interface PayloadSerializer {
  readonly name: string;
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
  /** The payload of a `ready` for `id`. Default: `encode([id])`. */
  encodeAck?(id: number): Uint8Array;
  /** The acknowledged id in a `ready` payload (validated by the caller). Default: `decode(bytes)[0]`. */
  decodeAck?(bytes: Uint8Array): unknown;
  /** The payload of a `sending_files` packet. Default: `encode([names])`. */
  encodeFileNames?(names: string[]): Uint8Array;
  /** The names in a `sending_files` payload (validated by the caller). Default: `decode(bytes)[0]`. */
  decodeFileNames?(bytes: Uint8Array): unknown;
}

/** JSON in UTF-8 (the default). */
export function jsonSerializer(): PayloadSerializer {
  return {
    name: 'json',
    encode: (value) => utf8Encode(JSON.stringify(value)),
    decode: (bytes) => JSON.parse(utf8DecodeStrict(bytes)) as unknown,
  };
}

/** MessagePack through msgpackr (no records or shared structures, so any peer's MessagePack reads it). */
export function msgpackSerializer(options: { mapsAsObjects?: boolean } = {}): PayloadSerializer {
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: options.mapsAsObjects ?? true, int64AsType: 'number' });
  return {
    name: 'msgpack',
    encode: (value) => {
      const b = packr.pack(value);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    decode: (bytes) => packr.unpack(bytes) as unknown,
  };
}

/**
 * Raw bytes: payloads are `Uint8Array`s sent as they are. A `ready` carries the id as 8 bytes
 * big-endian; file names travel as JSON.
 */
export function rawSerializer(): PayloadSerializer {
  const json = jsonSerializer();
  return {
    name: 'raw',
    encode: (value) => {
      if (!(value instanceof Uint8Array)) throw new PacketUsageError('WK_PACKET_PAYLOAD_TYPE', 'raw serializer: payload must be a Uint8Array');
      return value;
    },
    decode: (bytes) => bytes,
    encodeAck: (id) => {
      const out = new Uint8Array(8);
      new DataView(out.buffer).setBigUint64(0, BigInt(id));
      return out;
    },
    decodeAck: (bytes) => (bytes.length === 8 ? Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0)) : undefined),
    encodeFileNames: (names) => json.encode([names]),
    decodeFileNames: (bytes) => (json.decode(bytes) as unknown[] | null)?.[0],
  };
}

/**
 * Python pickles of plain data, for peers that `pickle`/`dill` their payloads (see `wirekit-js/formats/pickle`:
 * nothing that imports or calls is ever read). By default a top-level array is written as a tuple,
 * since Armchair's peers send their arguments as a tuple (`send_pack(type, *args)`).
 */
export function pickleSerializer(options: { write?: PickleOptions; read?: UnpickleOptions; argsTuple?: boolean } = {}): PayloadSerializer {
  const argsTuple = options.argsTuple ?? true;
  return {
    name: 'pickle',
    encode: (value) => pickle(argsTuple && Array.isArray(value) ? asTuple([...value]) : value, options.write),
    decode: (bytes) => unpickle(bytes, options.read),
  };
}

/** Encodes a `ready` payload with `s`. */
export function encodeAck(s: PayloadSerializer, id: number): Uint8Array {
  return s.encodeAck ? s.encodeAck(id) : s.encode([id]);
}

/** Decodes the id of a `ready` payload with `s` (unvalidated). */
export function decodeAck(s: PayloadSerializer, bytes: Uint8Array): unknown {
  if (s.decodeAck) return s.decodeAck(bytes);
  const v = s.decode(bytes);
  return Array.isArray(v) ? (v[0] as unknown) : v;
}

/** Encodes a `sending_files` payload with `s`. */
export function encodeFileNames(s: PayloadSerializer, names: string[]): Uint8Array {
  return s.encodeFileNames ? s.encodeFileNames(names) : s.encode([names]);
}

/** Decodes the names of a `sending_files` payload with `s` (unvalidated). */
export function decodeFileNames(s: PayloadSerializer, bytes: Uint8Array): unknown {
  if (s.decodeFileNames) return s.decodeFileNames(bytes);
  const v = s.decode(bytes);
  return Array.isArray(v) ? (v[0] as unknown) : undefined;
}

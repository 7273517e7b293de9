/**
 * Armchair's packet protocol, sans-I/O: the packet header, the type registry, the session (ids,
 * window, `ready`, error state, file stream), payload serializers and errors. No `node:*` import is
 * reachable from here; the Node driver (`PacketConnection`, file transfer) is `./node.js`
 * (`wirekit-js/protocols/packets/node`).
 */
import * as pickleFormat from '../../formats/pickle/index.js';

export { PacketTypes, ARMCHAIR_PACKET_TYPES, ARMCHAIR_URGENT_TYPES, SEED_PACKET_TYPES, SEED_URGENT_TYPES } from './types.js';
export {
  PacketSession,
  MarkerScanner,
  encodePacketHeader,
  fileNameProblem,
  PACKET_HEADER_SIZE,
  ARMCHAIR_FILE_END_MARKER,
  SEED_FILE_END_MARKER,
} from './packet-session.js';
export type { Packet, PacketEvent, FileMode, PacketSessionOptions, OutgoingPacket } from './packet-session.js';
export { jsonSerializer, msgpackSerializer, rawSerializer, pickleSerializer } from './serializers.js';
export type { PayloadSerializer } from './serializers.js';
export {
  PacketProtocolError,
  UnknownPacketTypeError,
  UnknownPacketIdError,
  PacketPayloadError,
  UnsafeFileNameError,
  PacketErrorStateError,
  PacketUsageError,
  PickleError,
} from './errors.js';

// Python's pickle format moved to `wirekit-js/formats/pickle`; these names stay importable from here.
/** @deprecated import from `wirekit-js/formats/pickle` */
export const pickle = pickleFormat.pickle;
/** @deprecated import from `wirekit-js/formats/pickle` */
export const unpickle = pickleFormat.unpickle;
/** @deprecated import from `wirekit-js/formats/pickle` */
export const tuple = pickleFormat.tuple;
/** @deprecated import from `wirekit-js/formats/pickle` */
export const asTuple = pickleFormat.asTuple;
/** @deprecated import from `wirekit-js/formats/pickle` */
export const isTuple = pickleFormat.isTuple;
/** @deprecated import from `wirekit-js/formats/pickle` */
export type PickleOptions = pickleFormat.PickleOptions;
/** @deprecated import from `wirekit-js/formats/pickle` */
export type UnpickleOptions = pickleFormat.UnpickleOptions;

/** The core errors this module's calls reject with, exported here too so callers import them from the module they use. */
export { WirekitError, TimeoutError, AbortedError, ConnectionClosedError } from '../../errors.js';
export { FrameTooLargeError } from '../../codecs/errors.js';

export { PacketTypes, SEED_PACKET_TYPES, SEED_URGENT_TYPES } from './types.js';
export {
  PacketSession,
  MarkerScanner,
  encodePacketHeader,
  fileNameProblem,
  PACKET_HEADER_SIZE,
  SEED_FILE_END_MARKER,
} from './session.js';
export type { Packet, PacketEvent, FileMode, PacketSessionOptions, OutgoingPacket } from './session.js';
export { PacketConnection } from './connection.js';
export type { PacketConnectionOptions, ReceiveFirstOptions, ReceivedFile, ReceiveFilesOptions, SendFilesOptions } from './connection.js';
export { jsonSerializer, msgpackSerializer, rawSerializer, pickleSerializer } from './serializers.js';
export type { PayloadSerializer } from './serializers.js';
export { pickle, unpickle, tuple, asTuple, isTuple } from './pickle.js';
export type { PickleOptions, UnpickleOptions } from './pickle.js';
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

import { WirekitError, type ErrorCode } from '../../errors.js';
import { PickleError as FormatsPickleError } from '../../formats/pickle/errors.js';

/**
 * The peer broke the packet protocol (unknown type byte, `ready` for an id not in flight, bad
 * payload, unsafe file name). The offending packet has been consumed: the connection goes on and
 * the next receive continues with the following packet.
 */
export class PacketProtocolError extends WirekitError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; origin: 'local' | 'remote' }) {
    super(code, message, options);
  }
}

/** A packet header carries a type byte that is not in the registry. */
export class UnknownPacketTypeError extends PacketProtocolError {
  readonly typeByte: number;
  readonly id: number | bigint;
  constructor(typeByte: number, id: number | bigint) {
    super('WK_PACKET_UNKNOWN_TYPE', `packet ${id}: unknown packet type byte 0x${typeByte.toString(16).padStart(2, '0')}`, { origin: 'remote' });
    this.typeByte = typeByte;
    this.id = id;
  }
}

/** A `ready` packet acknowledges an id that is not in flight. */
export class UnknownPacketIdError extends PacketProtocolError {
  readonly ackedId: unknown;
  constructor(ackedId: unknown) {
    super('WK_PACKET_UNKNOWN_ID', `ready for id ${String(ackedId)}, which is not in flight`, { origin: 'remote' });
    this.ackedId = ackedId;
  }
}

/** A payload could not be decoded by the configured serializer. */
export class PacketPayloadError extends PacketProtocolError {
  constructor(type: string, id: number, cause: unknown) {
    super('WK_PACKET_PAYLOAD', `packet ${id} (${type}): payload could not be decoded: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, origin: 'remote' });
  }
}

/** A file name in a `sending_files` packet is not a plain base name. */
export class UnsafeFileNameError extends PacketProtocolError {
  readonly fileName: unknown;
  constructor(name: unknown, reason: string) {
    super('WK_PACKET_FILE_NAME', `refused file name ${JSON.stringify(name)}: ${reason}`, { origin: 'remote' });
    this.fileName = name;
  }
}

/**
 * The connection is in the error state: an `error` packet arrived. Every send and receive fails
 * with this error until `resetError()`; `payload` is the error packet's payload.
 */
export class PacketErrorStateError extends WirekitError {
  readonly payload: unknown;
  constructor(payload: unknown) {
    super('WK_PACKET_ERROR_STATE', 'packet connection is in the error state (an error packet was received); call resetError() first', { origin: 'remote' });
    this.payload = payload;
  }
}

/**
 * The caller misused the packet API (window full in the sans-I/O core, unknown type name, bad
 * file, too many received packets left unread while waiting for `ready`).
 */
export class PacketUsageError extends WirekitError {
  constructor(code: ErrorCode, message: string) {
    super(code, message, { origin: 'local' });
  }
}

/** @deprecated moved to `wirekit-js/formats/pickle` */
export const PickleError = FormatsPickleError;
/** @deprecated moved to `wirekit-js/formats/pickle` */
export type PickleError = FormatsPickleError;

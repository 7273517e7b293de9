/**
 * Frame types and flags of Mercurial's first unified frame protocol.
 *
 * A frame is a 4-byte header (24-bit little-endian payload length, then one byte holding the
 * frame type in its high nibble and the flags in its low nibble) followed by the payload.
 */

/** Size of a frame header in bytes. */
export const FRAME_HEADER_SIZE = 4;
/** Payload size at which senders split data, as Mercurial's `DEFAULT_MAX_FRAME_SIZE`. */
export const DEFAULT_MAX_FRAME_SIZE = 32768;
/** Largest payload the 24-bit length field can describe. */
export const MAX_PAYLOAD_LENGTH = 0xffffff;

export const FRAME_TYPE_COMMAND_NAME = 0x01;
export const FRAME_TYPE_COMMAND_ARGUMENT = 0x02;
export const FRAME_TYPE_COMMAND_DATA = 0x03;
export const FRAME_TYPE_BYTES_RESPONSE = 0x04;
export const FRAME_TYPE_ERROR_RESPONSE = 0x05;

/** Frame type names, as used in the human-readable notation. */
export const FRAME_TYPES: Readonly<Record<string, number>> = Object.freeze({
  'command-name': FRAME_TYPE_COMMAND_NAME,
  'command-argument': FRAME_TYPE_COMMAND_ARGUMENT,
  'command-data': FRAME_TYPE_COMMAND_DATA,
  'bytes-response': FRAME_TYPE_BYTES_RESPONSE,
  'error-response': FRAME_TYPE_ERROR_RESPONSE,
});

export const FLAG_COMMAND_NAME_EOS = 0x01;
export const FLAG_COMMAND_NAME_HAVE_ARGS = 0x02;
export const FLAG_COMMAND_NAME_HAVE_DATA = 0x04;

export const FLAG_COMMAND_ARGUMENT_CONTINUATION = 0x01;
export const FLAG_COMMAND_ARGUMENT_EOA = 0x02;

export const FLAG_COMMAND_DATA_CONTINUATION = 0x01;
export const FLAG_COMMAND_DATA_EOS = 0x02;

export const FLAG_BYTES_RESPONSE_CONTINUATION = 0x01;
export const FLAG_BYTES_RESPONSE_EOS = 0x02;

export const FLAG_ERROR_RESPONSE_PROTOCOL = 0x01;
export const FLAG_ERROR_RESPONSE_APPLICATION = 0x02;

/** Flag names per frame type, as used in the human-readable notation. */
export const FRAME_TYPE_FLAGS: Readonly<Record<number, Readonly<Record<string, number>>>> = Object.freeze({
  [FRAME_TYPE_COMMAND_NAME]: Object.freeze({ eos: FLAG_COMMAND_NAME_EOS, 'have-args': FLAG_COMMAND_NAME_HAVE_ARGS, 'have-data': FLAG_COMMAND_NAME_HAVE_DATA }),
  [FRAME_TYPE_COMMAND_ARGUMENT]: Object.freeze({ continuation: FLAG_COMMAND_ARGUMENT_CONTINUATION, eoa: FLAG_COMMAND_ARGUMENT_EOA }),
  [FRAME_TYPE_COMMAND_DATA]: Object.freeze({ continuation: FLAG_COMMAND_DATA_CONTINUATION, eos: FLAG_COMMAND_DATA_EOS }),
  [FRAME_TYPE_BYTES_RESPONSE]: Object.freeze({ continuation: FLAG_BYTES_RESPONSE_CONTINUATION, eos: FLAG_BYTES_RESPONSE_EOS }),
  [FRAME_TYPE_ERROR_RESPONSE]: Object.freeze({ protocol: FLAG_ERROR_RESPONSE_PROTOCOL, application: FLAG_ERROR_RESPONSE_APPLICATION }),
});

/** The name of a frame type, or its number as a string when unknown. */
export function frameTypeName(type: number): string {
  for (const [name, value] of Object.entries(FRAME_TYPES)) if (value === type) return name;
  return String(type);
}

/** Media type of a request or response body made of Mercurial's frames (HTTP transport). */
export const FRAMES_MEDIA_TYPE = 'application/mercurial-exp-framing-0001';

export { FrameReader, decodeEofDefault, encodeToBytes, encodeParts } from './codec.js';
export type { Decoder, Encoder, Codec } from './codec.js';
export { CodecError, FrameTooLargeError, TruncatedFrameError, MalformedFrameError, EncodeError, CodecUsageError, isFatal, isRecoverable } from './errors.js';
export { WirekitError } from '../errors.js';
export type { CodecErrorOptions } from './errors.js';
export { LinesCodec, lines, textLines, ndjson, DEFAULT_MAX_LINE_LENGTH } from './lines.js';
export type { LinesOptions, NdjsonOptions } from './lines.js';
export { DelimitedCodec, percentDollar, base64Body, base64TextBody, DEFAULT_MAX_BODY_LENGTH } from './delimited.js';
export type { DelimitedOptions, BodyTransform, PercentDollarOptions } from './delimited.js';
export {
  LengthFieldCodec,
  LengthPrefixCodec,
  u32be,
  varint,
  typedFrame,
  packetFrame,
  FRAME_HEADER_LAYOUT,
  PACKET_HEADER_LAYOUT,
  DEFAULT_MAX_FRAME_LENGTH,
  varintSize,
  writeVarint,
} from './length-field.js';
export type { LengthFieldLayout, HeaderField, HeaderFrame } from './length-field.js';

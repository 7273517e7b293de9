/**
 * Mercurial's first unified frame protocol, sans-I/O: wire format, codec, text
 * notation, server and client reactors, errors. Nothing here imports `node:*`; the socket and
 * HTTP drivers are in `./node.js` (`wirekit-js/protocols/frames/node`).
 */
export * from './constants.js';
export {
  ApplicationError,
  CommandError,
  FrameCommandError,
  FrameEncodingError,
  FrameHttpError,
  FrameProtocolError,
  ResponseTooLargeError,
  StreamConsumedError,
} from './errors.js';
export { frame, encodeFrame, encodeFrames, encodeHeader, parseFrame, parseHeader, FrameCodec, frameCodec } from './frame.js';
export type { Frame, FrameCodecOptions } from './frame.js';
export { parseFrameNotation, formatFrameNotation, formatFrame, escapePayload, unescapePayload } from './notation.js';
export {
  ARGUMENT_HEADER_SIZE,
  argumentFrames,
  commandFrames,
  commandFramesFrom,
  compareBytes,
  encodeArgumentPayload,
  normalizeArgs,
  toBytes,
} from './requests.js';
export type { BytesLike, CommandArgs, DataSource, RequestOptions } from './requests.js';
export { bytesResponseFrames, responseChunkFrames, errorFrame } from './responses.js';
export { argumentKey, argumentNameBytes } from './argument-names.js';
export { ServerReactor } from './server-reactor.js';
export type { CommandRequest, ServerAction, ServerReactorOptions, ServerState } from './server-reactor.js';
export { ClientReactor } from './client-reactor.js';
export type { ClientEvent, ClientReactorOptions } from './client-reactor.js';

/** The core errors this module's calls reject with, exported here too so callers import them from the module they use. */
export { WirekitError, TimeoutError, AbortedError, ConnectionClosedError } from '../../errors.js';
export { ConnectError } from '../../channels/errors.js';

export * from './constants.js';
export { FrameProtocolError, FrameEncodingError, CommandError, FrameHttpError } from './errors.js';
export { frame, encodeFrame, encodeFrames, encodeHeader, parseHeader, FrameCodec, frameCodec } from './frame.js';
export type { Frame, FrameCodecOptions } from './frame.js';
export { parseFrame, formatFrame, escapePayload, unescapePayload } from './notation.js';
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
export { ServerReactor } from './server-reactor.js';
export type { CommandRequest, ServerAction, ServerReactorOptions, ServerState } from './server-reactor.js';
export { ClientReactor } from './client-reactor.js';
export type { ClientEvent, ClientReactorOptions } from './client-reactor.js';
export { ChunkStream } from './chunk-stream.js';
export { ApplicationError, CommandRunner } from './command-runner.js';
export type { CommandHandler, CommandResult, FrameServerOptions, IncomingCommand } from './command-runner.js';
export { serveConnection, FrameSocketServer } from './socket-server.js';
export type { ServedConnection, SocketServeOptions } from './socket-server.js';
export { FrameClient, ResponseTooLargeError } from './socket-client.js';
export type { CallOptions, FrameClientOptions, FrameResponse } from './socket-client.js';
export { frameHttpListener, FrameHttpServer } from './http-server.js';
export type { HttpServeOptions } from './http-server.js';
export { FrameHttpClient } from './http-client.js';
export type { FrameHttpClientOptions, HttpCommand, HttpCommandResult } from './http-client.js';

/**
 * The multiplexed frame profile for Node: everything of the sans-I/O entry (`./index.js`) plus
 * node:zlib's compressor for zlib streams (`nodeDeflateRaw`, `nodeEncodings`) and the socket
 * server and client (TCP and Unix sockets).
 */
export * from './index.js';
export { nodeDeflateRaw, nodeEncodings, runtimeHasZstd } from './node-encodings.js';
export { serveMuxConnection, MuxFrameServer } from './node-server.js';
export type { MuxCommand, MuxCommandHandler, MuxCommandResult, MuxServeOptions, MuxServedConnection } from './node-server.js';
export { MuxFrameClient } from './node-client.js';
export type { MuxCallOptions, MuxFrameClientOptions } from './node-client.js';

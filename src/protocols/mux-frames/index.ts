/**
 * The second frame profile: Mercurial's later multiplexed framing ("hgrpc"): 8-byte headers with
 * request and stream ids, CBOR payloads, per-stream content encodings, and sans-I/O server and
 * client reactors. Nothing here imports `node:*`: zlib compression takes a `deflateRaw` option
 * (`nodeDeflateRaw` in `./node.js`, `wirekit-js/protocols/mux-frames/node`, with the socket drivers).
 */
export * from './errors.js';
export * from './cbor.js';
export * from './frame.js';
export * from './notation.js';
export { ZlibInflater, adler32 } from './inflate.js';
export type { InflaterLimits } from './inflate.js';
export * from './encodings.js';
export { OutputStream, InputStream } from './streams.js';
export { ServerReactor } from './server-reactor.js';
export type { ServerAction, ServerReactorOptions, ServerState } from './server-reactor.js';
export { ResponseWriter } from './response-writer.js';
export type { ResponseSink } from './response-writer.js';
export { ClientReactor, formatAtoms } from './client-reactor.js';
export type { ClientAction, ClientReactorOptions, CommandRequest, TextAtom } from './client-reactor.js';

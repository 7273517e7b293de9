/**
 * The second frame profile: Mercurial's later multiplexed framing ("hgrpc"): 8-byte headers with
 * request and stream ids, CBOR payloads, per-stream content encodings, and sans-I/O server and
 * client reactors.
 */
export * from './errors.js';
export * from './cbor.js';
export * from './frame.js';
export * from './notation.js';
export { ZlibInflater, adler32 } from './inflate.js';
export type { InflaterLimits } from './inflate.js';
export * from './encodings.js';
export { OutputStream, InputStream } from './streams.js';
export { ServerReactor, ResponseWriter, mapGet } from './server.js';
export type { ServerAction, ServerReactorOptions, ServerState } from './server.js';
export { ClientReactor, formatAtoms } from './client.js';
export type { ClientAction, ClientReactorOptions, CommandRequest, TextAtom } from './client.js';

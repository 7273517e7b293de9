/**
 * Mercurial's frame protocol for Node: everything of the sans-I/O entry (`./index.js`) plus the drivers:
 * the socket server and client (TCP and Unix sockets), the half-duplex HTTP server and client,
 * and the glue they share (`CommandRunner`, `ChunkStream`).
 */
export * from './index.js';
export { ChunkStream } from './chunk-stream.js';
export { CommandRunner } from './command-runner.js';
export type { CommandHandler, CommandResult, FrameServerOptions, IncomingCommand } from './command-runner.js';
export { serveConnection, listenOn, FrameSocketServer } from './node-server.js';
export type { ServedConnection, SocketServeOptions } from './node-server.js';
export { FrameClient } from './node-client.js';
export type { CallOptions, FrameClientOptions, FrameResponse } from './node-client.js';
export { frameHttpListener, FrameHttpServer } from './http-server.js';
export type { HttpServeOptions } from './http-server.js';
export { FrameHttpClient } from './http-client.js';
export type { FrameHttpClientOptions, HttpCommand, HttpCommandResult } from './http-client.js';

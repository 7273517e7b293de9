/**
 * Seed 002: `%base64$` messages over a Unix socket with a READY/OK handshake, a private (0600)
 * socket, and a parent/child launcher.
 */
export { Handshake } from './handshake.js';
export type { HandshakeRole, HandshakeState, HandshakeAction, HandshakeWords } from './handshake.js';
export { HandshakeError, SocketPathError, ChildExitedError, ConnectError } from './errors.js';
export { DelimitedConnection, handshake, DEFAULT_HANDSHAKE_TIMEOUT } from './connection.js';
export type { DelimitedMessage, MessageOptions, HandshakeOptions } from './connection.js';
export { DelimitedServer, ServerClosedError, listen, DEFAULT_ACCEPT_TIMEOUT } from './server.js';
export type { ListenOptions, AcceptOptions } from './server.js';
export { connect, DEFAULT_CONNECT_TIMEOUT } from './client.js';
export type { ConnectOptions } from './client.js';
export { launchChild, ChildSession } from './launcher.js';
export type { LaunchOptions, ChildExit, QuitOptions } from './launcher.js';
export { listenPrivate, probeSocket, clearStaleSocket } from './private-socket.js';
export type { PrivateListenOptions, PrivateListener, ProbeResult } from './private-socket.js';
export { messageCodec } from './codec.js';
export type { MessageCodec, MessageCodecOptions } from './codec.js';

/**
 * The `%base64$` delimited protocol for Node: everything of the sans-I/O entry (`./index.js`)
 * plus the drivers: the connection over a Unix socket, server, client, child-process launcher and
 * private (0600) socket.
 */
import { ConnectError as ChannelsConnectError } from '../../channels/connect.js';

export * from './index.js';
export { ChannelsConnectError as ConnectError };
export { DelimitedConnection, handshake, DEFAULT_HANDSHAKE_TIMEOUT } from './node-connection.js';
export type { DelimitedMessage, MessageOptions, HandshakeOptions } from './node-connection.js';
export { DelimitedServer, listen, DEFAULT_ACCEPT_TIMEOUT } from './node-server.js';
export type { ListenOptions, AcceptOptions } from './node-server.js';
export { connect, DEFAULT_CONNECT_TIMEOUT } from './node-client.js';
export type { ConnectOptions } from './node-client.js';
export { launchChild, ChildSession } from './node-launcher.js';
export type { LaunchOptions, ChildExit, QuitOptions } from './node-launcher.js';
export { listenPrivate, probeSocket, clearStaleSocket } from './node-private-socket.js';
export type { PrivateListenOptions, PrivateListener, ProbeResult } from './node-private-socket.js';

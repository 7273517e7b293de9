/**
 * Control protocol for Node: everything of `wirekit-js/protocols/control` plus the socket drivers
 * (`ControlServer` and `ControlConnection`, `ControlClient`, the listeners, console streams).
 */
export * from './index.js';
export { ControlServer, ControlConnection } from './node-server.js';
export type {
  AuthenticateOptions,
  CommandContext,
  CommandHandler,
  ControlServerOptions,
  ControlLogger,
  ServeOptions,
  ListenOptions,
  ConnectionEnd,
} from './node-server.js';
export { ControlClient, DEFAULT_MAX_QUEUED } from './node-client.js';
export type { ConnectAddress, ClientOptions, ConnectOptions, CallOptions, ControlCall, EventSubscription } from './node-client.js';
export { listenSocket, probe } from './node-listen.js';
export type { ListenAddress, UnixListenAddress, TcpListenAddress, UnixSocketOptions, SocketListener } from './node-listen.js';
export { consoleClient, serveConsole } from './node-console.js';
export type { ConsoleClient, ConsoleHandlers, ConsoleServer } from './node-console.js';
export type { SocketAddress } from '../../channels/connect.js';

/**
 * Control protocol (seed 003, osctld): line-JSON commands with progress updates, errors, event
 * streams and connection hijack. See docs/control.md.
 */
export {
  CommandError,
  RemoteCommandError,
  ControlProtocolError,
  VersionMismatchError,
  AddressInUseError,
  ControlStateError,
} from './errors.js';
export {
  classifyServerMessage,
  checkRequest,
  requestLine,
  versionLine,
  progressLine,
  responseLine,
  errorLine,
  SYNTAX_ERROR_MESSAGE,
  INTERNAL_ERROR_MESSAGE,
} from './messages.js';
export type { ControlRequest, ServerMessage, RequestCheck, ExtraFields } from './messages.js';
export { ServerSession } from './server-session.js';
export type { ServerState, ServerEvent, ServerSessionOptions, RejectReason } from './server-session.js';
export { ClientSession, DEFAULT_CLIENT_MAX_LINE_LENGTH } from './client-session.js';
export type { CallMode, ClientEvent, ClientSessionOptions } from './client-session.js';
export { ControlServer, ControlConnection } from './server.js';
export type {
  CommandContext,
  CommandHandler,
  ControlServerOptions,
  ControlLogger,
  ServeOptions,
  ConnectionEnd,
} from './server.js';
export { ControlClient } from './client.js';
export type { ConnectAddress, ClientOptions, ConnectOptions, CallOptions, ControlCall, EventSubscription } from './client.js';
export { listenSocket, probe } from './listen.js';
export type { ListenAddress, UnixListenAddress, TcpListenAddress, SocketListener } from './listen.js';
export {
  encodeConsoleKeys,
  encodeConsoleResize,
  consoleInputCodec,
  consoleClient,
  serveConsole,
} from './console.js';
export type { ConsoleInput, ConsoleClient, ConsoleHandlers, ConsoleServer } from './console.js';
export { satisfiesVersion } from './version.js';

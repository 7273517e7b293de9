/**
 * Control protocol (osctld's control protocol): line-JSON commands with progress updates, errors, event
 * streams and connection hijack. See docs/control.md.
 *
 * This entry is sans-I/O (message shapes, the server and client sessions, the console codec,
 * errors) and reaches no `node:` module; the Node socket drivers (`ControlServer`,
 * `ControlClient`, listeners, console streams) are in `wirekit-js/protocols/control/node`.
 */
export {
  CommandError,
  RemoteCommandError,
  ControlProtocolError,
  VersionMismatchError,
  AddressInUseError,
  ControlStateError,
  UnknownCommandError,
  ControlAuthError,
} from './errors.js';
export {
  classifyServerMessage,
  checkRequest,
  requestLine,
  versionLine,
  progressLine,
  responseLine,
  errorLine,
  defaultErrorReply,
  SYNTAX_ERROR_MESSAGE,
  INTERNAL_ERROR_MESSAGE,
} from './messages.js';
export type { ControlRequest, ServerMessage, RequestCheck, ExtraFields, ErrorReply } from './messages.js';
export { ServerSession } from './server-session.js';
export type { ServerState, ServerEvent, ServerSessionOptions, RejectReason } from './server-session.js';
export { ClientSession, DEFAULT_CLIENT_MAX_LINE_LENGTH } from './client-session.js';
export type { CallMode, ClientEvent, ClientSessionOptions } from './client-session.js';
export { encodeConsoleKeys, encodeConsoleResize, consoleInputCodec } from './console.js';
export type { ConsoleInput } from './console.js';
export { satisfiesVersion } from './version.js';

/** The core errors this module's calls reject with, exported here too so callers import them from the module they use. */
export { WirekitError, TimeoutError, AbortedError, ConnectionClosedError } from '../../errors.js';

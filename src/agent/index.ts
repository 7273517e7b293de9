export { AgentDaemon, AGENT_VERSION, AGENT_PROTOCOL_VERSION, removeStaleSocket } from './daemon.js';
export type { AgentDaemonOptions, AgentRequest, Listener, PlainHandler } from './daemon.js';
export { AgentClient, AgentConnection, dial } from './client.js';
export type { SessionKind, SessionContext, ClientContext } from './sessions/context.js';
export { execKind, clientExec, parseExecOptions } from './sessions/exec.js';
export type { ExecOptions, ClientExecOptions } from './sessions/exec.js';
export { terminalKind, clientTerminal, parseTerminalOptions } from './sessions/terminal.js';
export type { TerminalOptions, ClientTerminalOptions } from './sessions/terminal.js';
export { forwardKind, clientForward, parseForwardOptions } from './sessions/forward.js';
export type { ForwardOptions } from './sessions/forward.js';
export { uploadKind, downloadKind, clientUpload, clientDownload } from './sessions/files.js';
export type { ClientDownloadOptions, ClientUploadOptions } from './sessions/files.js';
export type { AgentClientOptions, ExecSession, Greeting, ReplyOptions, TerminalSession, TransferProgress, TransferResult } from './client.js';
export {
  SessionCodec,
  sessionCodec,
  FrameType,
  frameTypeName,
  frame,
  encodeResize,
  decodeResize,
  encodeExit,
  decodeExit,
  encodeError,
  decodeError,
  SESSION_HEADER_SIZE,
  DEFAULT_MAX_SESSION_FRAME,
} from './session-frames.js';
export type { SessionFrame, FrameTypeValue, ExitStatus } from './session-frames.js';
export { TransferReceiver, DIGEST_SIZE } from './transfer.js';
export type { Hasher, TransferStep } from './transfer.js';
export { Keepalive } from './keepalive.js';
export type { KeepaliveOptions, KeepaliveAction } from './keepalive.js';
export { confinePath, resolveLexical, isWithin } from './paths.js';
export { parseAddress, formatAddress, defaultSocketPath, defaultStateDir, ensurePrivateDir, resolveClientAddress, ADDRESS_ENV, TOKEN_ENV } from './address.js';
export type { AgentAddress } from './address.js';
export { generateToken, tokensEqual, writeTokenFile, readTokenFile } from './auth.js';
export { createLogger, isLogLevel } from './log.js';
export type { Logger, LogLevel } from './log.js';
export { FrameStream } from './frame-stream.js';
export { AuthError, PathEscapeError, ChecksumError, LimitError, SessionProtocolError, AddressInUseError, PeerDeadError, HashWorkerError, HashStateError } from './errors.js';
/** The daemon answered a command (or a session) with an error: control's `RemoteCommandError`, `remoteCode` the daemon's code. */
export { RemoteCommandError } from '../protocols/control/errors.js';

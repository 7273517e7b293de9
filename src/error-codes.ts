/**
 * Every error code wirekit uses, with its meaning: the one list that errors, docs and tests refer
 * to. A `WirekitError` can only be made with a code from this list (the compiler checks it), and a
 * test checks that docs/errors.md lists the same codes.
 *
 * Codes name what went wrong, not where: the same condition has the same code in every protocol.
 */
export const ERROR_CODES = {
  // ---- waits and connections ----
  WK_TIMEOUT: 'a wait (connect, read, handshake, reply, acknowledgement) ran past its timeout',
  WK_ABORTED: 'a wait was cancelled through its AbortSignal',
  WK_CONNECT: 'connecting failed: no such socket, refused, unreachable, TLS handshake refused',
  WK_CONNECTION_CLOSED: 'the peer closed the connection while something was still expected from it',
  WK_PEER_DEAD: 'the peer sent nothing for longer than the keepalive timeout',
  WK_ADDRESS_IN_USE: 'someone already listens on that address or socket path',
  WK_ADDRESS_UNSUPPORTED: 'this server cannot listen on that kind of address',
  WK_PATH_NOT_SOCKET: 'a file that is not a socket is in the way of a Unix socket',
  WK_SOCKET_PATH_TOO_LONG: 'a Unix socket path is longer than the system allows',
  WK_HANDSHAKE: 'the peer answered a handshake with something else, or closed during it',
  WK_VERSION_MISMATCH: "the peer's protocol version is not one this side speaks",
  WK_SERVER_CLOSED: 'the server was closed',
  WK_CHANNEL_DETACHED: 'a channel was used after its stream was handed over (hijack, release, codec switch)',
  WK_BUSY: 'the resource is taken: a read is pending, a listener started twice, an agent id is connected',
  WK_LIMIT: 'a configured limit was reached (sessions, agents, connections, failed attempts)',
  WK_HUB_BUSY: 'the hub has too many registrations in progress to finish this one in time; retry later with backoff',
  WK_DRAINING: 'the hub is draining for maintenance: it moves its agents to other hubs and takes no new ones',
  // ---- decoding and encoding ----
  WK_FRAME_TOO_LARGE: 'a frame, line or message is over its size limit (checked before buffering)',
  WK_TRUNCATED: 'the input ended inside a frame',
  WK_MALFORMED: 'bytes that are not a valid frame (bad JSON, base64, UTF-8, header, marker)',
  WK_ENCODE: 'a value cannot be encoded in this format',
  WK_PROTOCOL: 'a message that is valid but not allowed here (wrong order, unknown type or command)',
  WK_UNKNOWN_COMMAND: 'the server has no handler for the command',
  WK_STREAM_CONSUMED: 'a one-shot stream was read twice',
  WK_USAGE: 'the API or CLI was called wrongly (bad argument, bad option, missing setting)',
  // ---- authentication and rights ----
  WK_AUTH: 'authentication failed: a missing or wrong token or password',
  WK_PERMISSION: 'authenticated, but not allowed to do this (allowlist, admin rights, file mode)',
  WK_NOT_FOUND: 'no such agent, user, group, file or session',
  // ---- commands and sessions ----
  WK_REMOTE_COMMAND_FAILED: 'the server answered a command with an error (its own code, if any, is remoteCode)',
  WK_COMMAND_FAILED: "Mercurial's framing: the server reported an application error for a command",
  WK_COMMAND_REJECTED: "Mercurial's framing: the server refused a command as a protocol error",
  WK_APPLICATION_ERROR: "Mercurial's framing: a command handler failed (sent to the client as an error)",
  WK_RESPONSE_TOO_LARGE: "a command's response is over the client's limit",
  WK_HTTP_STATUS: 'an HTTP transport answered with a non-success status',
  WK_CHILD_EXITED: 'the child process exited before the exchange finished',
  WK_SPAWN: 'a program could not be started',
  WK_NO_PROGRAM: 'the program to run does not exist (exit status 127)',
  WK_NOT_EXECUTABLE: 'the program to run is not executable (exit status 126)',
  WK_CHECKSUM: "a transferred file's size or hash does not match what was sent",
  WK_HASH_WORKER: 'the hashing worker thread failed',
  WK_HASH_UNSUPPORTED: 'the integrity hash asked for (cp --checksum) is not available on one side',
  WK_HASH_STATE: 'a hash was updated after it was finished',
  WK_IO: 'a file system or socket operation failed',
  WK_INTERNAL: 'a bug or an unexpected failure on the side that reports it',
  // ---- paths ----
  WK_PATH_ESCAPE: 'a path leads outside the directory it is confined to',
  WK_UNSAFE_PATH: 'a directory that must be private is not (owner, mode, type)',
  WK_IS_DIR: 'a file was expected, a directory was found',
  WK_NOT_DIR: 'a directory was expected',
  WK_NOT_FILE: 'a regular file was expected (a FIFO, device or socket was found)',
  // ---- control protocol (osctld) ----
  WK_CONTROL_PROTOCOL: 'osctld control protocol: a line that breaks the protocol',
  WK_CONTROL_STATE: 'osctld control protocol: an operation not allowed in the connection state',
  // ---- Mercurial's frame protocols ----
  WK_FRAME_PROTOCOL: "Mercurial's unified framing: a frame not allowed in the reactor's state",
  WK_FRAME_ENCODING: "Mercurial's unified framing: a frame or notation that cannot be encoded or parsed",
  WK_MUX_PROTOCOL: "Mercurial's later framing: a frame not allowed in the reactor's state",
  WK_MUX_ENCODING: "Mercurial's later framing: an unknown or failing stream encoding",
  WK_MUX_NOTATION: "Mercurial's later framing: text notation that cannot be parsed",
  WK_CBOR: 'CBOR that is malformed or over its limits',
  // ---- Armchair's packets ----
  WK_PACKET_TYPE: 'Armchair packets: a packet type registry or type byte that is invalid',
  WK_PACKET_UNKNOWN_TYPE: 'Armchair packets: a packet with an unknown type byte',
  WK_PACKET_UNKNOWN_ID: 'Armchair packets: an acknowledgement for a command id never sent',
  WK_PACKET_WINDOW: 'Armchair packets: an invalid window size',
  WK_PACKET_WINDOW_FULL: 'Armchair packets: the window of unacknowledged packets is full',
  WK_PACKET_INBOX_FULL: 'Armchair packets: too many received packets wait to be read',
  WK_PACKET_ERROR_STATE: 'Armchair packets: the connection is in its error state until reset',
  WK_PACKET_PAYLOAD: 'Armchair packets: a payload that could not be decoded',
  WK_PACKET_PAYLOAD_TYPE: 'Armchair packets: a payload of a type the serializer cannot carry',
  WK_PACKET_FILES: 'Armchair packets: a file-transfer packet without its file list, or none pending',
  WK_PACKET_FILES_PENDING: 'Armchair packets: a file transfer is still pending',
  WK_PACKET_FILE_NAME: 'Armchair packets: an unsafe file name (separators, . or ..)',
  WK_PACKET_MARKER: 'Armchair packets: an invalid file end marker',
  WK_PACKET_MARKER_IN_FILE: "Armchair packets: a file holds the end marker (the original's format cannot carry it)",
  // ---- Python's pickle ----
  WK_PICKLE_MALFORMED: 'pickle data that is malformed',
  WK_PICKLE_REFUSED: 'pickle data that would import or call code (refused)',
  WK_PICKLE_UNSUPPORTED: 'a pickle opcode or value outside the plain-data subset',
  WK_PICKLE_LIMIT: 'pickle data over its size or depth limits',
} as const satisfies Record<`WK_${string}`, string>;

/** A registered error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether `code` is a registered code (for codes that arrive from a peer). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

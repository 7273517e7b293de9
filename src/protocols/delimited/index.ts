/**
 * The `%base64$` delimited protocol, sans-I/O: the message codec, the READY/OK handshake state
 * machine and the errors. No `node:*` import is reachable from here; the Node drivers (Unix
 * socket server and client, connection, child-process launcher, private socket) are `./node.js`
 * (`wirekit-js/protocols/delimited/node`).
 */
export { Handshake } from './handshake-session.js';
export type { HandshakeRole, HandshakeState, HandshakeAction, HandshakeWords } from './handshake-session.js';
export { HandshakeError, SocketPathError, ChildExitedError, ServerClosedError, DelimitedUsageError } from './errors.js';
export { messageCodec } from './codec.js';
export type { MessageCodec, MessageCodecOptions } from './codec.js';

/** The core errors this module's calls reject with, exported here too so callers import them from the module they use. */
export { WirekitError, TimeoutError, AbortedError, ConnectionClosedError } from '../../errors.js';
export { FrameTooLargeError, TruncatedFrameError, MalformedFrameError } from '../../codecs/errors.js';

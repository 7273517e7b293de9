export { FrameChannelCore, ChannelDetachedError, attachWait, withWait } from './frame-channel.js';
export type { WaitOptions, ByteSource, ByteSink, ChannelCodec, ChannelOptions, DecodedBy, EncodedBy } from './frame-channel.js';
export { NodeFrameChannel, NodeStreamSource, NodeStreamSink, channel } from './node-channel.js';
export { WebFrameChannel, WebStreamSource, WebStreamSink, webChannel } from './web-channel.js';
export type { WebByteStreams } from './web-channel.js';
export {
  listenUnixSocket,
  probeUnixSocket,
  connectProbe,
  clearStaleUnixSocket,
  UnixSocketPathError,
  SocketInUseError,
  NotASocketError,
  DEFAULT_PROBE_TIMEOUT,
  DEFAULT_UNIX_BACKLOG,
} from './unix-listener.js';
export type {
  UnixListenOptions,
  UnixListener,
  UnixProbeOptions,
  UnixSocketState,
  UnixSocketPathErrorCode,
  SocketInUseReason,
} from './unix-listener.js';
export { connectSocket, ConnectError, describeAddress } from './connect.js';
export { AddressInUseError } from './errors.js';
export type { SocketAddress, ConnectSocketOptions } from './connect.js';
export { handOff } from './hand-off.js';
/** The core errors reads, writes and connects reject with. */
export { WirekitError, TimeoutError, AbortedError, ConnectionClosedError } from '../errors.js';

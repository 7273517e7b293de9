/**
 * Armchair's packet protocol for Node: everything of the sans-I/O entry (`./index.js`) plus the
 * driver over a `Duplex` (`PacketConnection`) and file transfer from and to disk.
 */
export * from './index.js';
export { PacketConnection } from './node-connection.js';
export type {
  PacketConnectionOptions,
  ReceiveFirstOptions,
  OutgoingFile,
  SendFileStreamsOptions,
  ReceiveFileStreamsOptions,
  ReceivedFileStream,
  FileSink,
} from './node-connection.js';
export { sendFiles, receiveFiles } from './node-files.js';
export type { ReceivedFile, ReceiveFilesOptions, SendFilesOptions } from './node-files.js';

/**
 * Overlord's ghost protocol for Node: everything of `wirekit-js/protocols/overlord` plus what needs
 * Node: the `/connect` handshake reply (SHA-1 of the key) and `messageStream`, a driver that reads
 * RPC messages from a socket with the line framing of the core.
 */
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { decodeMessage, type Generation, type RpcMessage } from './messages.js';
import { LineSplitter } from './lines.js';
import { OverlordLineTooLongError } from './errors.js';

export * from './index.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`. */
export function webSocketAccept(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/**
 * The reply to a ghost's `GET /connect`: a three-part status line (ghosts check the reason
 * phrase is there), `Connection: Upgrade` and the accept key (the Go ghost requires it).
 */
export function connectReply(key: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${webSocketAccept(key)}\r\n\r\n`;
}

/**
 * Calls `onMessage` for every RPC message read from `socket` (`head`: bytes already read).
 * Lines that are not messages are skipped; an over-long line calls `onError` once and is skipped.
 * Returns a function that stops reading and hands back what is buffered past the last message.
 */
export function messageStream(
  socket: Duplex,
  gen: Generation,
  onMessage: (m: RpcMessage) => void,
  options: { maxLine?: number; head?: Uint8Array; onError?: (err: Error) => void } = {},
): () => Uint8Array {
  const splitter = new LineSplitter(options.maxLine);
  const feed = (chunk: Uint8Array) => {
    splitter.push(chunk);
    for (let ev = splitter.next(); ev; ev = splitter.next()) {
      if ('tooLong' in ev) {
        options.onError?.(new OverlordLineTooLongError(splitter.maxLine));
        continue;
      }
      let m: RpcMessage;
      try {
        m = decodeMessage(gen, ev.line);
      } catch {
        continue;
      }
      onMessage(m);
    }
  };
  socket.on('data', feed);
  if (options.head && options.head.length > 0) feed(options.head);
  return () => {
    socket.off('data', feed);
    return splitter.take();
  };
}

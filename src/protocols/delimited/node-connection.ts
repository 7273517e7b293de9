/**
 * Node driver: a connected Unix socket speaking `%base64$` messages after the READY/OK handshake.
 * The framing is the sans-I/O `MessageCodec`, the handshake the sans-I/O `Handshake`;
 * this file only moves bytes and arms timeouts.
 */
import type { Socket } from 'node:net';
import { channel, withWait, type NodeFrameChannel, type WaitOptions } from '../../channels/index.js';
import { CodecError, TruncatedFrameError } from '../../codecs/index.js';
import { messageCodec } from './codec.js';
import { ConnectionClosedError } from '../../errors.js';
import { Handshake, type HandshakeRole, type HandshakeWords } from './handshake-session.js';
import { HandshakeError } from './errors.js';

/** A message: text by default, bytes with `{ binary: true }`. */
export type DelimitedMessage = string | Uint8Array;

export interface MessageOptions {
  /** Exchange `Uint8Array` messages instead of text (the handshake words stay text). Default false. */
  binary?: boolean;
  /**
   * Maximum length in bytes of one message's base64 body, enforced while scanning, before the
   * body is buffered whole. Default 16 MiB.
   */
  maxMessageLength?: number;
  /** Handshake words; default READY / OK as in the original protocol. */
  words?: HandshakeWords;
}

export interface HandshakeOptions extends MessageOptions {
  /** Handshake timeout in milliseconds (`Infinity` to wait forever). Default 10 000. */
  handshakeTimeout?: number;
  /** Cancels the handshake. */
  signal?: AbortSignal;
}

export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/** `{ timeout, signal }` with an infinite timeout left out (a timer cannot wait forever). */
export function waitOptions(timeout: number | undefined, signal: AbortSignal | undefined): WaitOptions {
  const out: WaitOptions = {};
  if (timeout !== undefined && Number.isFinite(timeout)) out.timeout = timeout;
  if (signal !== undefined) out.signal = signal;
  return out;
}

/**
 * One side of an established, handshaken connection. Messages go both ways in turns the
 * application decides (the original callers end with `QUIT`).
 *
 * A message whose body is not valid base64 (or, for text, not valid UTF-8) makes that
 * `receive()` reject with a `MalformedFrameError`; the next `receive()` continues with the
 * following message. A message over `maxMessageLength` rejects with `FrameTooLargeError` as soon as
 * the limit is passed, and is skipped.
 */
export class DelimitedConnection<T extends DelimitedMessage = string> implements AsyncIterable<T> {
  /** @internal use `connect()`, `DelimitedServer.accept()` or `launchChild()`. */
  constructor(
    private readonly ch: NodeFrameChannel<T>,
    /** The underlying socket. */
    readonly socket: Socket,
  ) {}

  /** Sends one message; resolves when the socket can take more. */
  async send(message: T, options: WaitOptions = {}): Promise<void> {
    await withWait('send', options, this.ch.write(message));
  }

  /**
   * Receives the next message. Rejects with `ConnectionClosedError` when the peer closed the
   * connection, `TruncatedFrameError` when it closed in the middle of a message, `TimeoutError` /
   * `AbortedError` when the wait ends, or a `CodecError` for an invalid message.
   */
  async receive(options: WaitOptions = {}): Promise<T> {
    const m = await this.ch.read(options);
    if (m === null) throw new ConnectionClosedError('peer closed the connection');
    return m;
  }

  /** Like `receive()`, but resolves with `null` at a clean end of stream. */
  receiveOrEnd(options: WaitOptions = {}): Promise<T | null> {
    return this.ch.read(options);
  }

  /** Iterates over incoming messages until the peer closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const m = await this.ch.read();
      if (m === null) return;
      yield m;
    }
  }

  /** Ends the outgoing direction; incoming messages can still be read. */
  async end(): Promise<void> {
    await this.ch.end();
  }

  /** Closes the connection at once. */
  close(): void {
    this.socket.destroy();
  }
}

/**
 * Runs the READY/OK handshake on a connected socket and returns the open connection. On any
 * failure (wrong word, undecodable message, peer closed, timeout, abort) the socket is destroyed
 * and the promise rejects; it never hangs past the timeout.
 */
export async function handshake<B extends boolean = false>(
  socket: Socket,
  role: HandshakeRole,
  options: HandshakeOptions & { binary?: B } = {},
): Promise<DelimitedConnection<B extends true ? Uint8Array : string>> {
  const maxMessageLength = options.maxMessageLength;
  const ch = channel(socket, messageCodec({ maxMessageLength }));
  const hs = new Handshake(role, options.words);
  const run = async (): Promise<void> => {
    for (const a of hs.start()) if (a.type === 'send') await ch.write(a.message);
    while (!hs.isOpen) {
      let m: string | null;
      try {
        m = await ch.read();
      } catch (err) {
        if (err instanceof ConnectionClosedError || err instanceof TruncatedFrameError) {
          try {
            hs.receiveEof();
          } catch (e) {
            throw new HandshakeError((e as Error).message, { cause: err, origin: 'remote' });
          }
        }
        if (err instanceof CodecError) hs.receiveError(err);
        throw err;
      }
      if (m === null) {
        hs.receiveEof();
        break;
      }
      for (const a of hs.receive(m)) if (a.type === 'send') await ch.write(a.message);
    }
  };
  try {
    await withWait('handshake', waitOptions(options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT, options.signal), run());
  } catch (err) {
    socket.destroy();
    throw err;
  }
  const open = options.binary ? ch.switchCodec(messageCodec({ maxMessageLength, binary: true })) : ch;
  return new DelimitedConnection(open as NodeFrameChannel<B extends true ? Uint8Array : string>, socket);
}

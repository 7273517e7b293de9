/**
 * Handing a connection over to the next protocol: after a command switched the connection (a
 * control protocol hijack, an agent session), the new owner gets the raw byte stream, whose first
 * bytes are those already read and not decoded (the leftover), then the live bytes.
 */
import { Duplex } from 'node:stream';
import { ConnectionClosedError } from '../errors.js';

/**
 * The raw duplex of `socket` after a protocol switch: reading yields `leftover` first, then what
 * arrives on `socket`; writes and `end()` go to `socket`; `destroy()` destroys `socket`.
 *
 * The caller must have removed its own 'data', 'end' and 'readable' listeners from `socket`.
 * While the socket's input has not ended, the leftover is pushed back into the socket (`unshift`)
 * and the socket itself is returned, paused (adding a 'data' listener or piping starts the flow).
 * Once 'end' was emitted that is no longer possible: a wrapper is returned that reads the
 * leftover then ends, writes to `socket`, ends it (waiting for its buffered writes), and destroys
 * it on `destroy()`, also after both directions ended (issue 12, item 13).
 */
export function handOff(socket: Duplex, leftover: Uint8Array | readonly Uint8Array[] = []): Duplex {
  const chunks = (leftover instanceof Uint8Array ? [leftover] : leftover).filter((c) => c.length > 0);
  if (!socket.readableEnded && !socket.destroyed) {
    for (let i = chunks.length - 1; i >= 0; i--) socket.unshift(chunks[i]!);
    socket.pause();
    // Back to the initial state, so that adding a 'data' listener starts the flow.
    (socket as { readableFlowing: boolean | null }).readableFlowing = null;
    return socket;
  }
  return new HandedOffStream(socket, chunks);
}

/** The wrapper `handOff` returns for a socket whose input already ended. */
class HandedOffStream extends Duplex {
  private readonly onSocketError = (err: Error) => this.destroy(err);
  private readonly onSocketClose = () => {
    if (!this.destroyed) this.destroy();
  };

  constructor(
    private readonly socket: Duplex,
    chunks: readonly Uint8Array[],
  ) {
    super({ allowHalfOpen: true });
    for (const c of chunks) this.push(c);
    this.push(null);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onSocketClose);
    if (socket.destroyed) queueMicrotask(this.onSocketClose);
  }

  override _read(): void {}

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (this.socket.destroyed || this.socket.writableEnded) {
      callback(new ConnectionClosedError('write after the connection closed'));
      return;
    }
    // The socket's write callback comes once the bytes left its buffer: backpressure for free.
    this.socket.write(chunk, (err) => callback(err ?? null));
  }

  override _final(callback: (err?: Error | null) => void): void {
    if (this.socket.destroyed || this.socket.writableFinished) return callback();
    this.socket.end(() => callback());
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.socket.removeListener('error', this.onSocketError);
    this.socket.removeListener('close', this.onSocketClose);
    // Keep a listener so a late error on the dead socket cannot crash the process.
    this.socket.on('error', noop);
    this.socket.destroy();
    callback(err);
  }
}

function noop(): void {}

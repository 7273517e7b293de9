/**
 * Joins two byte streams: what one side sends is written to the other, in both directions, with
 * backpressure (a side that does not read stops the other), half-closes passed on (one side's end
 * ends the other's writing), and a failure of either side destroying both. Bytes each side had
 * already sent past its handshake (`leftover`) are written first.
 */
import type { Duplex } from 'node:stream';

export interface SpliceEnds {
  readonly stream: Duplex;
  /** Bytes this side already sent that the other must get first. */
  readonly leftover?: Uint8Array;
}

/** Resolves once both streams are closed. */
export function splice(a: SpliceEnds, b: SpliceEnds): Promise<void> {
  return new Promise((resolve) => {
    let closed = 0;
    const onClose = () => {
      if (++closed === 2) resolve();
    };
    const pump = (from: Duplex, to: Duplex, leftover: Uint8Array | undefined) => {
      if (leftover && leftover.length > 0) to.write(leftover);
      from.pipe(to, { end: true });
    };
    const fail = () => {
      a.stream.destroy();
      b.stream.destroy();
    };
    for (const s of [a.stream, b.stream]) {
      s.on('error', fail);
      s.once('close', () => {
        onClose();
        const other = s === a.stream ? b.stream : a.stream;
        // A side that closed without a clean end (reset, error) takes the other down at once.
        if (!s.readableEnded) return other.destroy();
        // A clean end was passed on by pipe(). What the other side still sends has nowhere to
        // go: discard it, and close the other side once it has written everything it was given.
        other.unpipe(s);
        other.resume();
        if (other.writableFinished) other.destroy();
        else other.once('finish', () => other.destroy());
      });
    }
    pump(a.stream, b.stream, a.leftover);
    pump(b.stream, a.stream, b.leftover);
  });
}

/**
 * Two connected in-memory duplex streams (Node 20 has no `stream.duplexPair`): what one side
 * writes the other reads, with backpressure (a write waits until the other side reads), `end()`
 * passed on as the other's end of input, and `destroy()` of either destroying both.
 */
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  class Side extends Duplex {
    peer!: Side;
    waiting: (() => void) | undefined;
    constructor() {
      super({ allowHalfOpen: true });
    }
    override _read(): void {
      const w = this.peer.waiting;
      this.peer.waiting = undefined;
      w?.();
    }
    override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
      if (this.peer.destroyed) return cb();
      if (this.peer.push(chunk)) cb();
      else this.waiting = () => cb();
    }
    override _final(cb: (err?: Error | null) => void): void {
      if (!this.peer.destroyed) this.peer.push(null);
      cb();
    }
    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
      const w = this.waiting;
      this.waiting = undefined;
      w?.();
      if (!this.peer.destroyed) this.peer.destroy();
      cb(err);
    }
  }
  const a = new Side();
  const b = new Side();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

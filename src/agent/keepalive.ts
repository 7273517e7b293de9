import { UsageError } from '../errors.js';
/**
 * Keepalive (sans-I/O): tells its driver when to send a PING and when the peer counts as dead.
 * Any frame received from the peer (a PONG, data, anything) proves it alive.
 */
export interface KeepaliveOptions {
  /** Send a PING after this many ms without sending one. Default 15 000. */
  intervalMs?: number;
  /** The peer is dead after this many ms without receiving anything from it. Default 45 000. */
  timeoutMs?: number;
}

export type KeepaliveAction = 'ping' | 'dead' | undefined;

export class Keepalive {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private lastReceived: number;
  private lastPing: number;

  constructor(now: number, options: KeepaliveOptions = {}) {
    this.intervalMs = options.intervalMs ?? 15_000;
    this.timeoutMs = options.timeoutMs ?? 45_000;
    if (!(this.intervalMs > 0) || !(this.timeoutMs > 0)) throw new UsageError('keepalive interval and timeout must be positive');
    this.lastReceived = now;
    this.lastPing = now;
  }

  /** Call whenever anything arrives from the peer. */
  received(now: number): void {
    this.lastReceived = now;
  }

  /** What to do at `now`. After `'ping'` the driver sends a PING (recorded as sent). */
  poll(now: number): KeepaliveAction {
    if (now - this.lastReceived >= this.timeoutMs) return 'dead';
    if (now - this.lastPing >= this.intervalMs) {
      this.lastPing = now;
      return 'ping';
    }
    return undefined;
  }

  /** Milliseconds from `now` until `poll` may next have something to do. */
  nextDelay(now: number): number {
    const toPing = this.lastPing + this.intervalMs - now;
    const toDead = this.lastReceived + this.timeoutMs - now;
    return Math.max(0, Math.min(toPing, toDead));
  }
}

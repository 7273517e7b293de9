/**
 * Request tracking keyed by rid (sans-I/O): the caller passes the time, the tracker says which
 * requests timed out. Overlord's hub keeps one reply channel per agent, so concurrent calls can
 * swap replies; here each reply is matched to its own rid, and a reply nobody waits for is
 * reported as such (the caller logs and ignores it).
 */
import { WirekitError } from '../../errors.js';

export interface Pending<T> {
  readonly rid: string;
  readonly name: string;
  /** When it times out, ms since the epoch. */
  readonly deadline: number;
  readonly data: T;
}

export class RpcTracker<T> {
  private readonly pending = new Map<string, Pending<T>>();

  constructor(private readonly maxPending = 1024) {}

  get size(): number {
    return this.pending.size;
  }

  /**
   * Records a request sent at `now` with `timeoutS` seconds. A timeout below 0 means no reply
   * will come: nothing is recorded and false is returned. Throws when too many wait already.
   */
  track(rid: string, name: string, timeoutS: number, now: number, data: T): boolean {
    if (timeoutS < 0) return false;
    if (this.pending.size >= this.maxPending) throw new WirekitError('WK_LIMIT', `more than ${this.maxPending} requests wait for a ghost's reply`, { origin: 'local' });
    this.pending.set(rid, { rid, name, deadline: now + timeoutS * 1000, data });
    return true;
  }

  /** The request a response with `rid` answers, now settled; `undefined` for an unknown rid. */
  settle(rid: string): Pending<T> | undefined {
    const p = this.pending.get(rid);
    if (p) this.pending.delete(rid);
    return p;
  }

  /** Removes and returns every request past its deadline. */
  expire(now: number): Pending<T>[] {
    const out: Pending<T>[] = [];
    for (const p of this.pending.values()) if (now > p.deadline) out.push(p);
    for (const p of out) this.pending.delete(p.rid);
    return out;
  }

  /** The earliest deadline, or Infinity. */
  nextDeadline(): number {
    let d = Infinity;
    for (const p of this.pending.values()) d = Math.min(d, p.deadline);
    return d;
  }

  /** Removes and returns everything (the connection ended). */
  drain(): Pending<T>[] {
    const out = [...this.pending.values()];
    this.pending.clear();
    return out;
  }
}

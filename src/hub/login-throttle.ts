/**
 * Locks an address out after repeated failed logins: `maxFailures` failures within `windowMs`
 * lock it for `lockMs`; a success clears its count. Sans-I/O: the caller passes the time. The table
 * is bounded (`maxAddresses`): when full, the entry that failed longest ago is forgotten first.
 */

export interface LoginThrottleOptions {
  /** Failures that lock an address. Default 5. */
  readonly maxFailures?: number;
  /** Failures older than this are forgotten, in ms. Default 15 minutes. */
  readonly windowMs?: number;
  /** How long a locked address waits, in ms. Default 15 minutes. */
  readonly lockMs?: number;
  /** Addresses tracked at once. Default 10,000. */
  readonly maxAddresses?: number;
}

interface Entry {
  failures: number;
  first: number;
  lockedUntil: number;
}

export class LoginThrottle {
  private readonly entries = new Map<string, Entry>();
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockMs: number;
  readonly maxAddresses: number;

  constructor(options: LoginThrottleOptions = {}) {
    this.maxFailures = options.maxFailures ?? 5;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.lockMs = options.lockMs ?? 15 * 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
  }

  /** When `address` may try again (ms), or 0 if it may try now. */
  lockedUntil(address: string, now: number): number {
    const e = this.entries.get(address);
    if (!e) return 0;
    if (e.lockedUntil > now) return e.lockedUntil;
    if (e.lockedUntil !== 0 || now - e.first > this.windowMs) this.entries.delete(address);
    return 0;
  }

  fail(address: string, now: number): void {
    let e = this.entries.get(address);
    if (!e || now - e.first > this.windowMs || (e.lockedUntil !== 0 && e.lockedUntil <= now)) {
      e = { failures: 0, first: now, lockedUntil: 0 };
    }
    e.failures++;
    if (e.failures >= this.maxFailures) e.lockedUntil = now + this.lockMs;
    this.entries.delete(address); // re-insert: Map order is the eviction order
    this.entries.set(address, e);
    while (this.entries.size > this.maxAddresses) this.entries.delete(this.entries.keys().next().value!);
  }

  succeed(address: string): void {
    this.entries.delete(address);
  }
}

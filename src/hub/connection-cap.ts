/**
 * Counts connections still in their handshake, in all and per address, and refuses one past
 * either cap. Sans-I/O: `take` answers at once; the release it returns is safe to call twice.
 */
export class ConnectionCap {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    readonly max: number,
    readonly maxPerAddress: number,
  ) {}

  /** A release function, or which cap refused `address`. */
  take(address: string): { release: () => void } | { refused: 'total' | 'address' } {
    const per = this.perAddress.get(address) ?? 0;
    if (per >= this.maxPerAddress) return { refused: 'address' };
    if (this.total >= this.max) return { refused: 'total' };
    this.total++;
    this.perAddress.set(address, per + 1);
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.total--;
        const n = (this.perAddress.get(address) ?? 1) - 1;
        if (n <= 0) this.perAddress.delete(address);
        else this.perAddress.set(address, n);
      },
    };
  }
}

import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export { chunkings } from '../../helpers/chunks.js';

let counter = 0;
/** A fresh socket path in a private temporary directory; remove it with `cleanup`. */
export function tmpSocketPath(): { path: string; dir: string; cleanup(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wk-ctl-'));
  const p = path.join(dir, `c${counter++}.sock`);
  return { path: p, dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A raw client socket that collects what it receives, with line helpers. */
export class RawPeer {
  readonly socket: net.Socket;
  private buf = '';
  private bytes: Buffer[] = [];
  private waiters: Array<() => void> = [];
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.bytes.push(d);
      this.buf += d.toString('latin1');
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  static connect(options: { path: string } | { port: number; host?: string }): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ ...options, allowHalfOpen: true } as net.NetConnectOpts);
      s.once('connect', () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async until(pred: () => boolean, what: string, timeout = 5000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (!pred()) {
      if (this.ended && !pred()) throw new Error(`connection ended while waiting for ${what}; got ${JSON.stringify(this.buf.slice(0, 300))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.buf.slice(0, 300))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Next `n` JSON lines. */
  async lines(n: number): Promise<unknown[]> {
    await this.until(() => this.buf.split('\n').length - 1 >= n, `${n} lines`);
    const parts = this.buf.split('\n');
    const taken = parts.slice(0, n);
    this.buf = parts.slice(n).join('\n');
    this.resyncBytes();
    return taken.map((l) => JSON.parse(Buffer.from(l, 'latin1').toString('utf8')));
  }

  /** Next `n` raw bytes (as latin1 text). */
  async raw(n: number): Promise<string> {
    await this.until(() => this.buf.length >= n, `${n} bytes`);
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    this.resyncBytes();
    return out;
  }

  async waitEnd(): Promise<void> {
    await this.until(() => this.ended, 'end');
  }

  private resyncBytes(): void {
    this.bytes = [];
  }

  write(s: string | Uint8Array): void {
    this.socket.write(s);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A logger that records what the server logs. */
export function recordingLogger(): { errors: Array<{ message: string; err: unknown }>; error(m: string, e?: unknown): void } {
  const errors: Array<{ message: string; err: unknown }> = [];
  return {
    errors,
    error(message: string, err?: unknown) {
      errors.push({ message, err });
    },
  };
}

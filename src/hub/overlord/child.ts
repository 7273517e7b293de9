/**
 * A ghost's child connection after its register was answered: first, for file children, a few
 * RPC messages (`request_to_download`, `clear_to_upload`), then the session's raw bytes. Bytes
 * that followed the register (or a message) in the same read are kept and handed on first,
 * never discarded.
 */
import type { Duplex } from 'node:stream';
import { TimeoutError, ConnectionClosedError, UsageError } from '../../errors.js';
import { decodeMessage, encodeSuccess, type Generation, type LineSplitter, type RpcMessage, type RpcRequest } from '../../protocols/overlord/index.js';
import { OverlordProtocolError } from '../../protocols/overlord/index.js';

export class GhostChild {
  private wake: (() => void) | undefined;
  private ended = false;
  private rawTaken = false;

  constructor(
    readonly socket: Duplex,
    private readonly splitter: LineSplitter,
    readonly generation: Generation,
    readonly sid: string,
  ) {
    socket.pause();
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
  }

  private readonly onData = (chunk: Buffer) => {
    this.splitter.push(chunk);
    if (!this.wake) this.socket.pause();
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };

  private readonly onEnd = () => {
    this.ended = true;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  };

  /** The next RPC message (lines that are not messages are skipped). */
  async message(timeoutMs: number): Promise<RpcMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ev = this.splitter.next();
      if (ev && 'tooLong' in ev) throw new OverlordProtocolError('over-long line on a file session');
      if (ev) {
        try {
          return decodeMessage(this.generation, ev.line);
        } catch {
          continue;
        }
      }
      if (this.ended) throw new ConnectionClosedError('the ghost closed its file session');
      const left = deadline - Date.now();
      if (left <= 0) throw new TimeoutError(`ghost file session ${this.sid}`, timeoutMs);
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.wake = undefined;
          this.socket.pause();
          resolve();
        }, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
        this.socket.resume();
      });
    }
  }

  /** Waits for a request named `name`; answers it with success unless its timeout is below 0. */
  async expect(name: string, timeoutMs: number): Promise<RpcRequest> {
    for (;;) {
      const m = await this.message(timeoutMs);
      if (m.kind !== 'request' || m.name !== name) continue;
      if (m.timeout >= 0) this.socket.write(encodeSuccess(this.generation, m.rid));
      return m;
    }
  }

  /** Hands over the raw stream: the bytes already read past the last message, then the socket (paused). */
  raw(): { socket: Duplex; leftover: Uint8Array } {
    if (this.rawTaken) throw new UsageError('GhostChild.raw() called twice');
    this.rawTaken = true;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.pause();
    return { socket: this.socket, leftover: this.splitter.take() };
  }
}

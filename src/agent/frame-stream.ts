/**
 * Node driver for the session data channel: reads session frames from a channel and writes them
 * through it (header and payload as separate parts under one cork, the payload never copied),
 * answers PINGs and runs the keepalive timer.
 */
import type { NodeFrameChannel } from '../channels/node-channel.js';
import { withWait } from '../channels/frame-channel.js';
import { ConnectionClosedError } from '../errors.js';
import { PeerDeadError } from './errors.js';
import { Keepalive, type KeepaliveOptions } from './keepalive.js';
import { FrameType, type FrameTypeValue, type SessionCodec, type SessionFrame } from './session-frames.js';

const EMPTY = new Uint8Array(0);

export class FrameStream {
  private keepalive: Keepalive | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private dead: ((err: Error) => void) | undefined;
  private closed = false;

  constructor(
    readonly ch: NodeFrameChannel<SessionFrame, SessionFrame>,
    private readonly codec: SessionCodec,
    keepalive?: KeepaliveOptions,
  ) {
    if (keepalive) {
      this.keepalive = new Keepalive(Date.now(), keepalive);
      this.arm();
    }
  }

  /** Largest payload a frame may carry. */
  get maxPayload(): number {
    return this.codec.maxFrameLength;
  }

  /**
   * Writes one frame (header, then the payload as is). Returns false when the socket's buffer is
   * full: wait for `drained()` before sending more. Payloads over the frame limit are split.
   * A frame for a closed connection is dropped (the session is ending anyway).
   */
  send(type: FrameTypeValue, payload: Uint8Array = EMPTY): boolean {
    if (this.closed) return true;
    const max = this.codec.maxFrameLength;
    if (payload.length > max) {
      let ok = true;
      for (let i = 0; i < payload.length; i += max) ok = this.send(type, payload.subarray(i, Math.min(i + max, payload.length)));
      return ok;
    }
    try {
      return this.ch.send({ type, payload });
    } catch (err) {
      if (err instanceof ConnectionClosedError) return true;
      throw err;
    }
  }

  /** Resolves when the socket can take more (at once if it can now); rejects if it closes. */
  drained(): Promise<void> {
    return this.ch.drained().catch((err: unknown) => {
      throw err instanceof ConnectionClosedError ? new ConnectionClosedError('connection closed while sending', err) : err;
    });
  }

  /** Sends a frame and waits until the socket can take more. */
  async write(type: FrameTypeValue, payload?: Uint8Array): Promise<void> {
    if (!this.send(type, payload)) await this.drained();
  }

  /**
   * Reads frames until the peer ends the stream, handing each to `onFrame` (awaited, so a slow
   * consumer slows the peer). PING and PONG are handled here; a PONG that finds the socket full
   * stops reading until it drained. Rejects with `PeerDeadError` when keepalive gives up, or with
   * the channel's error.
   */
  async run(onFrame: (f: SessionFrame) => void | Promise<void>): Promise<void> {
    // Keepalive's verdict aborts the wait in progress. An abort signal, not a race against a
    // promise that lives as long as the session: every Promise.race on such a promise leaves a
    // reaction on it, one per frame, so a million PINGs held hundreds of MB until the end.
    const dead = new AbortController();
    this.dead = (err) => dead.abort(err);
    const verdict = (err: unknown): unknown => (dead.signal.aborted ? dead.signal.reason : err);
    try {
      for (;;) {
        let f: SessionFrame | null;
        try {
          f = await this.ch.read({ signal: dead.signal });
        } catch (err) {
          throw verdict(err);
        }
        if (f === null) {
          if (dead.signal.aborted) throw dead.signal.reason;
          return;
        }
        this.keepalive?.received(Date.now());
        if (f.type === FrameType.PING) {
          // Answered only while the writer keeps up: when the PONG fills the socket (a peer that
          // sends PINGs and does not read), reading stops until it drains, so PONGs cannot pile up.
          if (!this.send(FrameType.PONG, f.payload)) {
            try {
              await withWait('write', { signal: dead.signal }, this.drained());
            } catch (err) {
              throw verdict(err);
            }
          }
          continue;
        }
        if (f.type === FrameType.PONG) continue;
        await onFrame(f);
      }
    } finally {
      this.dead = undefined;
    }
  }

  /** Ends our direction after everything written so far. */
  end(): void {
    void this.ch.end();
  }

  /** Stops the keepalive timer and destroys the socket. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.ch.destroy();
  }

  /** Stops the keepalive timer (the socket stays open). */
  stopKeepalive(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.keepalive = undefined;
  }

  private arm(): void {
    const k = this.keepalive;
    if (!k || this.closed) return;
    this.timer = setTimeout(() => {
      const action = k.poll(Date.now());
      if (action === 'dead') {
        const err = new PeerDeadError(k.timeoutMs);
        this.dead?.(err);
        this.closed = true;
        this.ch.destroy();
        return;
      }
      if (action === 'ping') this.send(FrameType.PING);
      this.arm();
    }, Math.max(1, k.nextDelay(Date.now())));
    this.timer.unref?.();
  }
}

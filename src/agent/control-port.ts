/**
 * The daemon's control phase of one connection: the control protocol's sans-I/O `ServerSession`
 * (seed 003) fed from the socket, with the hand-over to a session's raw stream.
 */
import { Duplex, Readable } from 'node:stream';
import { concatBytes, utf8Encode } from '../bytes/text.js';
import { attachWait, type WaitOptions } from '../channels/frame-channel.js';
import { channel } from '../channels/node-channel.js';
import { lines } from '../codecs/lines.js';
import type { ServerEvent, ServerSession } from '../protocols/control/server-session.js';
import { failure } from './sessions/replies.js';

/**
 * The control phase of one connection: the control protocol's sans-I/O `ServerSession` fed from
 * the socket. A request is decoded only when `next` asks for one, and only after the previous one
 * was answered, so the bytes the client sent behind a session command stay undecoded and are
 * handed to the session by `switchOver`.
 */
export class ControlPort {
  private wake: (() => void) | undefined;
  private gone = false;
  private paused = false;
  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? utf8Encode(chunk) : chunk);
    // While a command runs nobody decodes: stop reading once a request's worth is buffered.
    if (this.wake === undefined && !this.paused && this.session.bufferedBytes >= this.highWaterMark) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  };
  private readonly onEnd = () => {
    this.session.receiveEof();
    this.notify();
  };
  private readonly onClose = () => {
    this.gone = true;
    this.notify();
  };

  constructor(
    readonly socket: Duplex,
    readonly session: ServerSession,
    private readonly highWaterMark: number,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
  }

  /**
   * Writes the replies queued so far, then returns the next request, refused line (its error
   * reply is queued) or end of input; `null` once the connection is gone. Rejects with
   * `TimeoutError` when no complete line arrives in time.
   */
  async next(options: WaitOptions): Promise<ServerEvent | null> {
    await this.flush();
    let timedOut: Error | undefined;
    const cleanup = attachWait('waiting for a request', options, (err) => {
      timedOut = err;
      this.notify();
    });
    try {
      for (;;) {
        if (this.gone) return null;
        const ev = this.session.nextEvent();
        if (ev !== undefined) return ev;
        if (timedOut) throw timedOut;
        if (this.paused) {
          this.paused = false;
          this.socket.resume();
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.wake = undefined;
      cleanup();
    }
  }

  /** Queues the success reply of the running (non-session) command. */
  ok(response: unknown): void {
    this.session.respond(response);
    this.session.finish();
  }

  /** Queues the error reply (message and `WK_*` code) of the running command. */
  fail(err: unknown): void {
    const { message, code } = failure(err);
    this.session.fail(message, { code });
    this.session.finish();
  }

  /** Writes the queued replies; resolves when the socket can take more. */
  async flush(): Promise<void> {
    const bytes = this.session.dataToSend();
    const s = this.socket;
    if (bytes.length === 0 || s.destroyed || s.writableEnded) return;
    if (!s.write(bytes)) await drained(s);
  }

  /**
   * Replies to a session command and hands the connection over: the returned stream's first
   * bytes are those the client sent after the request (even in the same read as the request),
   * then the live ones; writes go to the socket, behind the reply.
   */
  switchOver(response: unknown): Duplex {
    this.session.respond(response);
    const reply = this.session.dataToSend();
    const leftover = this.session.hijack();
    this.detach();
    const s = this.socket;
    if (this.gone) {
      // The client left while the command was being prepared: the session reads what it sent,
      // then the end, and so ends at once (a program started for it is killed).
      return Duplex.from({ readable: Readable.from(leftover, { objectMode: false }), writable: s });
    }
    if (!s.writableEnded) s.write(reply);
    return rawStream(s, leftover);
  }

  /** Stops reading requests; bytes still arriving are dropped. */
  close(): void {
    this.detach();
    this.session.close();
    this.socket.resume();
  }

  private detach(): void {
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

/**
 * The connection as a raw byte stream after the switch: `leftover` (bytes read but not decoded)
 * first, then the live bytes.
 */
function rawStream(socket: Duplex, leftover: Uint8Array[]): Duplex {
  return channel(socket, lines(), leftover.length > 0 ? { leftover: concatBytes(leftover) } : {}).hijack();
}

/** Resolves when `s` drains or closes. */
function drained(s: Duplex): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      s.off('drain', done);
      s.off('close', done);
      resolve();
    };
    s.on('drain', done);
    s.on('close', done);
  });
}

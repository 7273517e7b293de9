/**
 * The client's control phase of one connection to the daemon: the control protocol's sans-I/O
 * `ClientSession` (osctld's control protocol) over a socket, with the hand-over to a session's raw stream.
 */
import type { Duplex } from 'node:stream';
import { utf8Encode } from '../bytes/text.js';
import { attachWait, type WaitOptions } from '../channels/frame-channel.js';
import { handOff } from '../channels/hand-off.js';
import { ConnectionClosedError, WirekitError } from '../errors.js';
import { ClientSession, type ClientEvent } from '../protocols/control/client-session.js';
import { RemoteCommandError } from '../protocols/control/errors.js';

/** The daemon's greeting: `{"version": "wirekit-agent/1", "auth": "none" | "token"}`. */
export interface Greeting {
  version: string;
  auth: 'none' | 'token';
}

/** Options of a wait for a reply. */
export interface ReplyOptions extends WaitOptions {
  /** Called with each progress message before the reply. */
  onProgress?: (progress: unknown) => void;
}

/**
 * One control connection to the daemon: the control protocol's sans-I/O `ClientSession` over a
 * socket. Replies are decoded only while one is awaited, so the bytes that follow a session
 * command's reply stay undecoded and become the first bytes of the session's stream (`open`).
 */
export class AgentConnection {
  readonly session: ClientSession;
  /** The daemon's greeting, once `readGreeting` read it. */
  greeting: Greeting | undefined;
  private wake: (() => void) | undefined;
  private paused = false;
  private ended: Error | undefined;
  private readonly onData = (chunk: Uint8Array | string) => {
    this.session.receive(typeof chunk === 'string' ? utf8Encode(chunk) : chunk);
    // Nobody is waiting for a reply: stop reading once enough is buffered.
    if (this.wake === undefined && !this.paused && this.session.bufferedBytes >= 1024 * 1024) {
      this.paused = true;
      this.socket.pause();
    }
    this.notify();
  };
  private readonly onEnd = () => this.finish(new ConnectionClosedError('daemon closed the connection'));
  private readonly onClose = () => this.finish(new ConnectionClosedError('connection closed'));
  private readonly onError = (err: Error) => this.finish(new ConnectionClosedError(`connection failed: ${err.message}`, err));

  constructor(
    readonly socket: Duplex,
    options: { maxLineLength?: number } = {},
  ) {
    this.session = new ClientSession({ maxLineLength: options.maxLineLength ?? 16 * 1024 * 1024 });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Reads the daemon's first line, which must be its greeting. */
  async readGreeting(options: WaitOptions = {}): Promise<Greeting> {
    const ev = await this.nextEvent('waiting for the greeting', options).catch((err: unknown) => {
      throw err instanceof ConnectionClosedError ? new ConnectionClosedError('daemon closed the connection before its greeting', err) : err;
    });
    if (ev.type !== 'greeting') throw new WirekitError('WK_PROTOCOL', `expected the daemon's greeting, got ${ev.type}`, { origin: 'remote' });
    this.greeting = { version: ev.version, auth: ev.extra?.auth === 'token' ? 'token' : 'none' };
    return this.greeting;
  }

  /** Sends a command and waits for its reply; an error reply rejects with `RemoteCommandError`. */
  call(cmd: string, opts: Record<string, unknown> = {}, options: ReplyOptions = {}): Promise<unknown> {
    const id = this.session.call(cmd, opts);
    this.write([this.session.dataToSend()]);
    return this.reply(id, cmd, false, options);
  }

  /**
   * Sends a command after which the connection carries a session's data. `typedAhead` bytes are
   * written right behind the request, in the same write. Resolves with the reply and the raw
   * stream: its first bytes are those that followed the reply (even in the same read), then the
   * live ones; writes go to the socket. This connection is done with afterwards.
   */
  async open(cmd: string, opts: Record<string, unknown>, typedAhead: Uint8Array[] = [], options: ReplyOptions = {}): Promise<{ reply: unknown; stream: Duplex }> {
    const id = this.session.call(cmd, opts, 'hijack');
    this.write([this.session.dataToSend(), ...typedAhead]);
    const reply = await this.reply(id, cmd, true, options);
    const leftover = this.session.takeRemaining();
    this.detach();
    const stream = handOff(this.socket, leftover);
    return { reply, stream };
  }

  /**
   * Waits for one more reply that no request asks for (progress, then a response or an error),
   * e.g. the result of an upload after the data was sent.
   */
  expectReply(cmd: string, options: ReplyOptions = {}): Promise<unknown> {
    return this.reply(this.session.expect(cmd), cmd, false, options);
  }

  /** Destroys the connection. */
  close(): void {
    this.socket.destroy();
  }

  private write(parts: Uint8Array[]): void {
    const s = this.socket;
    s.cork();
    for (const p of parts) if (p.length > 0) s.write(p);
    s.uncork();
  }

  private async reply(id: number, cmd: string, switches: boolean, options: ReplyOptions): Promise<unknown> {
    let value: unknown = null;
    for (;;) {
      const ev = await this.nextEvent(`reply to '${cmd}'`, options);
      if (ev.type === 'greeting' || ev.id !== id) continue;
      if (ev.type === 'progress') options.onProgress?.(ev.message);
      else if (ev.type === 'error') throw new RemoteCommandError(cmd, ev.message, ev.extra);
      else if (ev.type === 'switched') return value;
      else if (ev.type === 'response') {
        if (!switches) return ev.value;
        value = ev.value; // the 'switched' event follows at once
      }
    }
  }

  /** The next event from the daemon, reading more bytes as needed. */
  private async nextEvent(what: string, options: WaitOptions): Promise<ClientEvent> {
    let failed: Error | undefined;
    const cleanup = attachWait(what, options, (err) => {
      failed = err;
      this.notify();
    });
    try {
      for (;;) {
        const ev = this.session.nextEvent(); // throws ControlProtocolError on a broken reply
        if (ev !== undefined) return ev;
        if (failed) throw failed;
        if (this.ended) throw this.ended;
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

  private finish(err: Error): void {
    this.ended ??= err;
    this.notify();
  }

  private detach(): void {
    const s = this.socket;
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('close', this.onClose);
    s.removeListener('error', this.onError);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}

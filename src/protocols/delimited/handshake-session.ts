/**
 * The READY/OK handshake of the `%base64$` delimited protocol as a sans-I/O state machine: messages in, actions out.
 *
 * The client sends `READY`; the server answers `OK`; then both sides are open and exchange
 * messages in turns decided by the application. Unlike the original, anything else than the
 * expected word, an undecodable message or the peer closing first fails the handshake with a
 * `HandshakeError` (the original server loops forever when the client closes before READY).
 */
import { HandshakeError } from './errors.js';

export type HandshakeRole = 'client' | 'server';

/** Where a handshake stands. */
export type HandshakeState = 'idle' | 'awaiting-ready' | 'awaiting-ok' | 'open' | 'failed';

/** What the driver must do next. */
export type HandshakeAction =
  /** Send this text message to the peer. */
  | { type: 'send'; message: string }
  /** The handshake is complete: the connection is open for application messages. */
  | { type: 'open' };

export interface HandshakeWords {
  /** The client's greeting. Default `READY`. */
  ready?: string;
  /** The server's answer. Default `OK`. */
  ok?: string;
}

type Input = 'start' | 'message';
interface Step {
  next: HandshakeState;
  /** For 'message' steps: the word the message must equal. */
  expect?: 'ready' | 'ok';
  actions: ReadonlyArray<{ type: 'send'; word: 'ready' | 'ok' } | { type: 'open' }>;
}

/** Every legal transition, by role, state and input. A missing entry is a protocol error. */
const TRANSITIONS: Record<HandshakeRole, Partial<Record<HandshakeState, Partial<Record<Input, Step>>>>> = {
  client: {
    idle: { start: { next: 'awaiting-ok', actions: [{ type: 'send', word: 'ready' }] } },
    'awaiting-ok': { message: { next: 'open', expect: 'ok', actions: [{ type: 'open' }] } },
  },
  server: {
    idle: { start: { next: 'awaiting-ready', actions: [] } },
    'awaiting-ready': {
      message: { next: 'open', expect: 'ready', actions: [{ type: 'send', word: 'ok' }, { type: 'open' }] },
    },
  },
};

const MAX_SHOWN = 40;

function show(message: string): string {
  const s = JSON.stringify(message.length > MAX_SHOWN ? message.slice(0, MAX_SHOWN) : message);
  return message.length > MAX_SHOWN ? `${s}… (${message.length} chars)` : s;
}

/**
 * One side of the READY/OK handshake.
 *
 * ```ts
 * const hs = new Handshake('client');
 * for (const a of hs.start()) if (a.type === 'send') write(encodeToBytes(codec, a.message));
 * const actions = hs.receive(await readMessage()); // [{ type: 'open' }] or throws HandshakeError
 * ```
 */
export class Handshake {
  private current: HandshakeState = 'idle';
  private readonly words: Required<HandshakeWords>;

  constructor(
    readonly role: HandshakeRole,
    words: HandshakeWords = {},
  ) {
    this.words = { ready: words.ready ?? 'READY', ok: words.ok ?? 'OK' };
  }

  get state(): HandshakeState {
    return this.current;
  }

  /** True once the handshake completed. */
  get isOpen(): boolean {
    return this.current === 'open';
  }

  /** Begins the handshake: the client gets a `send READY` action, the server none. */
  start(): HandshakeAction[] {
    return this.step('start');
  }

  /** Feeds one decoded message from the peer. Throws `HandshakeError` if it is not the expected word. */
  receive(message: string): HandshakeAction[] {
    return this.step('message', message);
  }

  /** The peer's message could not be decoded: fails the handshake. */
  receiveError(err: unknown): never {
    this.current = 'failed';
    throw new HandshakeError(`handshake failed: undecodable message from peer while ${this.waitingFor()}`, { cause: err, origin: 'remote' });
  }

  /** The peer closed the connection: fails the handshake unless it had completed. */
  receiveEof(): void {
    if (this.current === 'open') return;
    const waiting = this.waitingFor();
    this.current = 'failed';
    throw new HandshakeError(`handshake failed: peer closed the connection while ${waiting}`, { origin: 'remote' });
  }

  private waitingFor(): string {
    if (this.current === 'awaiting-ready') return `waiting for ${this.words.ready}`;
    if (this.current === 'awaiting-ok') return `waiting for ${this.words.ok}`;
    return `in state ${this.current}`;
  }

  private step(input: Input, message?: string): HandshakeAction[] {
    const step = TRANSITIONS[this.role][this.current]?.[input];
    if (!step) {
      const was = this.current;
      if (was !== 'open') this.current = 'failed';
      throw new HandshakeError(`handshake: unexpected ${input} for the ${this.role} in state ${was}`, { origin: input === 'start' ? 'local' : 'remote' });
    }
    if (step.expect !== undefined) {
      const want = this.words[step.expect];
      if (message !== want) {
        const waiting = this.waitingFor();
        this.current = 'failed';
        throw new HandshakeError(`handshake failed: got ${show(message ?? '')} while ${waiting}`, { origin: 'remote' });
      }
    }
    this.current = step.next;
    return step.actions.map((a) => (a.type === 'send' ? { type: 'send', message: this.words[a.word] } : { type: 'open' }));
  }
}

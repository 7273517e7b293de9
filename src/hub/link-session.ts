/**
 * Sans-I/O state machines for both ends of the agent↔hub control link. A driver feeds decoded
 * JSON lines (`receive`) and the clock (`tick`), writes the `send` actions as lines, and acts on the
 * others. Neither end touches a socket or a timer; `nextDeadline()` says when to call `tick`.
 *
 * Hub end: waitRegister → (register action; the driver checks the token and the registry, then
 * calls `accept` or `refuse`) → registered → closed. Agent end: registering → registered → closed.
 * Either end closes a link that stays silent past its timeout; the agent pings every
 * `keepaliveMs` and the hub answers each ping, so each side sees the other's silence.
 */
import { WirekitError } from '../errors.js';
import { HubBusyError } from './errors.js';
import { LinkProtocolError, parseLinkMessage, type LinkMessage, type RegisterMessage } from './link-messages.js';

export type LinkCloseReason = 'timeout' | 'protocol' | 'refused' | 'moved';

export type HubLinkAction =
  | { readonly type: 'send'; readonly message: LinkMessage }
  | { readonly type: 'register'; readonly message: RegisterMessage }
  | { readonly type: 'seen' }
  | { readonly type: 'dialFailed'; readonly sid: string; readonly message: string }
  | { readonly type: 'close'; readonly reason: LinkCloseReason; readonly message: string };

export interface HubLinkOptions {
  /** Time allowed from connect to register, in ms. Default 10,000. */
  readonly registerTimeoutMs?: number;
  /** Ping interval the agent is told to use, in ms. Default 10,000. */
  readonly keepaliveMs?: number;
  /** Silence after which the link is dropped, in ms. Default 3 x keepaliveMs. */
  readonly timeoutMs?: number;
  /** The hub's name, told to agents. */
  readonly hubName?: string;
}

export class HubLinkSession {
  state: 'waitRegister' | 'registering' | 'registered' | 'closed' = 'waitRegister';
  private deadline: number;
  readonly keepaliveMs: number;
  readonly timeoutMs: number;
  private readonly hubName: string;

  constructor(now: number, options: HubLinkOptions = {}) {
    this.keepaliveMs = options.keepaliveMs ?? 10_000;
    this.timeoutMs = options.timeoutMs ?? 3 * this.keepaliveMs;
    this.hubName = options.hubName ?? 'wirekit-hub';
    this.deadline = now + (options.registerTimeoutMs ?? 10_000);
  }

  /** When `tick` must next be called (ms), or Infinity once closed. */
  nextDeadline(): number {
    return this.state === 'closed' ? Infinity : this.deadline;
  }

  receive(value: unknown, now: number): HubLinkAction[] {
    if (this.state === 'closed') return [];
    let msg: LinkMessage;
    try {
      msg = parseLinkMessage(value);
    } catch (err) {
      return this.fail('protocol', err as LinkProtocolError);
    }
    if (this.state === 'waitRegister') {
      if (msg.type !== 'register') return this.fail('protocol', new LinkProtocolError(`expected register, got ${msg.type}`));
      this.state = 'registering';
      return [{ type: 'register', message: msg }];
    }
    if (this.state === 'registering') return this.fail('protocol', new LinkProtocolError(`${msg.type} before the register reply`));
    this.deadline = now + this.timeoutMs;
    switch (msg.type) {
      case 'ping':
        return [{ type: 'seen' }, { type: 'send', message: { type: 'pong', seq: msg.seq } }];
      case 'pong':
        return [{ type: 'seen' }];
      case 'dialFailed':
        return [{ type: 'seen' }, { type: 'dialFailed', sid: msg.sid, message: msg.message }];
      default:
        return this.fail('protocol', new LinkProtocolError(`an agent does not send ${msg.type}`));
    }
  }

  /** The driver accepted the registration. */
  accept(now: number, agentToken?: string): HubLinkAction[] {
    if (this.state !== 'registering') return [];
    this.state = 'registered';
    this.deadline = now + this.timeoutMs;
    return [{ type: 'send', message: { type: 'registered', keepaliveMs: this.keepaliveMs, hub: this.hubName, ...(agentToken === undefined ? {} : { agentToken }) } }];
  }

  /** The driver refused the registration (bad token, duplicate id, hub full). */
  refuse(error: WirekitError): HubLinkAction[] {
    return this.fail('refused', error);
  }

  /** Asks the agent to dial back for session `sid` (to fleet hub `hub`'s agent port, when given). */
  dial(sid: string, hub?: string): HubLinkAction[] {
    if (this.state !== 'registered') return [];
    return [{ type: 'send', message: { type: 'dial', sid, ...(hub === undefined ? {} : { hub }) } }];
  }

  /** Tells the agent to reconnect elsewhere after `delayMs` (draining), then closes. */
  move(delayMs: number): HubLinkAction[] {
    if (this.state !== 'registered') return [];
    this.state = 'closed';
    return [
      { type: 'send', message: { type: 'move', delayMs } },
      { type: 'close', reason: 'moved', message: 'hub is draining' },
    ];
  }

  tick(now: number): HubLinkAction[] {
    if (this.state === 'closed' || now < this.deadline) return [];
    // The register is in progress (its claim waits on the fleet): tell the agent to come back later.
    if (this.state === 'registering') return this.fail('refused', new HubBusyError('the hub did not finish the registration in time; retry later'));
    const what = this.state === 'registered' ? `no keepalive for ${this.timeoutMs} ms` : 'no register in time';
    this.state = 'closed';
    return [{ type: 'close', reason: 'timeout', message: what }];
  }

  private fail(reason: LinkCloseReason, err: WirekitError): HubLinkAction[] {
    this.state = 'closed';
    return [
      { type: 'send', message: { type: 'refused', code: err.code, message: err.message } },
      { type: 'close', reason, message: err.message },
    ];
  }
}

export type AgentLinkAction =
  | { readonly type: 'send'; readonly message: LinkMessage }
  | { readonly type: 'registered'; readonly agentToken?: string; readonly hub: string }
  | { readonly type: 'dial'; readonly sid: string; readonly hub?: string }
  | { readonly type: 'move'; readonly delayMs: number }
  | { readonly type: 'close'; readonly reason: LinkCloseReason; readonly code: string; readonly message: string };

export interface AgentLinkOptions {
  /** Time allowed for the hub's answer to register, in ms. Default 10,000. */
  readonly registerTimeoutMs?: number;
  /** Silence from the hub after which the link is dropped, in ms. Default 3 x the hub's keepalive. */
  readonly timeoutMs?: number;
}

export class AgentLinkSession {
  state: 'registering' | 'registered' | 'closed' = 'registering';
  private deadline: number;
  private nextPing = Infinity;
  private keepaliveMs = 10_000;
  private seq = 0;
  private lastHeard: number;

  constructor(
    private readonly register: Omit<RegisterMessage, 'type'>,
    now: number,
    private readonly options: AgentLinkOptions = {},
  ) {
    this.deadline = now + (options.registerTimeoutMs ?? 10_000);
    this.lastHeard = now;
  }

  /** The first line to send. */
  start(): AgentLinkAction[] {
    return [{ type: 'send', message: { type: 'register', ...this.register } }];
  }

  nextDeadline(): number {
    return this.state === 'closed' ? Infinity : Math.min(this.deadline, this.nextPing);
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 3 * this.keepaliveMs;
  }

  receive(value: unknown, now: number): AgentLinkAction[] {
    if (this.state === 'closed') return [];
    let msg: LinkMessage;
    try {
      msg = parseLinkMessage(value);
    } catch (err) {
      return this.close('protocol', err as LinkProtocolError);
    }
    this.lastHeard = now;
    if (this.state === 'registering') {
      if (msg.type === 'refused') return this.close('refused', msg);
      if (msg.type !== 'registered') return this.close('protocol', new LinkProtocolError(`expected registered, got ${msg.type}`));
      this.state = 'registered';
      this.keepaliveMs = Math.max(100, msg.keepaliveMs);
      this.nextPing = now + this.keepaliveMs;
      this.deadline = now + this.timeoutMs;
      return [{ type: 'registered', hub: msg.hub, ...(msg.agentToken === undefined ? {} : { agentToken: msg.agentToken }) }];
    }
    this.deadline = now + this.timeoutMs;
    switch (msg.type) {
      case 'pong':
        return [];
      case 'ping':
        return [{ type: 'send', message: { type: 'pong', seq: msg.seq } }];
      case 'dial':
        return [{ type: 'dial', sid: msg.sid, ...(msg.hub === undefined ? {} : { hub: msg.hub }) }];
      case 'move':
        this.state = 'closed';
        return [{ type: 'move', delayMs: msg.delayMs }];
      case 'refused':
        return this.close('refused', msg);
      default:
        return this.close('protocol', new LinkProtocolError(`a hub does not send ${msg.type}`));
    }
  }

  tick(now: number): AgentLinkAction[] {
    if (this.state === 'closed') return [];
    if (now >= this.deadline) {
      const what = this.state === 'registering' ? 'the hub did not answer register in time' : `no word from the hub for ${now - this.lastHeard} ms`;
      this.state = 'closed';
      return [{ type: 'close', reason: 'timeout', code: 'WK_TIMEOUT', message: what }];
    }
    if (now >= this.nextPing) {
      this.nextPing = now + this.keepaliveMs;
      return [{ type: 'send', message: { type: 'ping', seq: ++this.seq } }];
    }
    return [];
  }

  /** The dial-back failed: tell the hub so the waiting user gets an answer at once. */
  dialFailed(sid: string, message: string): AgentLinkAction[] {
    if (this.state !== 'registered') return [];
    return [{ type: 'send', message: { type: 'dialFailed', sid, message } }];
  }

  private close(reason: LinkCloseReason, err: { code: string; message: string }): AgentLinkAction[] {
    this.state = 'closed';
    return [{ type: 'close', reason, code: err.code, message: err.message }];
  }
}

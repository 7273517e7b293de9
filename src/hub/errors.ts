import { WirekitError, isErrorCode, type ErrorCode } from '../errors.js';

/** A login, token or enrollment check failed. Code `WK_AUTH`. */
export class HubAuthError extends WirekitError {
  constructor(message: string) {
    super('WK_AUTH', message, { origin: 'remote' });
  }
}

/** Too many failed attempts from one address: it must wait. Code `WK_LIMIT`. */
export class LockedOutError extends WirekitError {
  /** When the address may try again (ms since the epoch). */
  readonly retryAt: number;
  constructor(address: string, retryAt: number) {
    super('WK_LIMIT', `too many failed attempts from ${address}; try again later`, { origin: 'remote' });
    this.retryAt = retryAt;
  }
}

/** An agent id is already held by a connected agent (Overlord's duplicate machine id rule). Code `WK_BUSY`. */
export class DuplicateAgentError extends WirekitError {
  readonly id: string;
  constructor(id: string) {
    super('WK_BUSY', `duplicate agent id: ${id}`, { origin: 'remote' });
    this.id = id;
  }
}

/** A user, group or agent that does not exist. Code `WK_NOT_FOUND`. */
export class HubNotFoundError extends WirekitError {
  constructor(message: string) {
    super('WK_NOT_FOUND', message, { origin: 'remote' });
  }
}

/** A user may not do this (not on the agent's allowlist, not an admin). Code `WK_PERMISSION`. */
export class HubPermissionError extends WirekitError {
  constructor(message: string) {
    super('WK_PERMISSION', message, { origin: 'remote' });
  }
}

/** A request or a stored file the hub cannot use (bad name, bad property filter, corrupt state). Code `WK_USAGE`. */
export class HubUsageError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote' = 'remote') {
    super('WK_USAGE', message, { origin });
  }
}

/** A hub limit was reached (sessions per agent or per user, connections). Code `WK_LIMIT`. */
export class HubLimitError extends WirekitError {
  constructor(message: string) {
    super('WK_LIMIT', message, { origin: 'remote' });
  }
}

/** The hub is draining (`wirekit hub drain`): it takes no new agents. Code `WK_DRAINING`. */
export class HubDrainingError extends WirekitError {
  constructor(hub: string) {
    super('WK_DRAINING', `hub ${hub} is draining; connect to another hub`, { origin: 'remote' });
  }
}

/**
 * The hub could not finish a registration in time (its claims in the fleet registry are queued
 * behind many others). The agent retries with backoff and jitter. Code `WK_HUB_BUSY`.
 */
export class HubBusyError extends WirekitError {
  constructor(message: string) {
    super('WK_HUB_BUSY', message, { origin: 'remote' });
  }
}

/** The hub holds as many agents as it may. Code `WK_LIMIT`. */
export class RegistryFullError extends WirekitError {
  constructor(max: number) {
    super('WK_LIMIT', `the hub holds its limit of ${max} agents`, { origin: 'remote' });
  }
}

/** A link line that is not a valid message. Code `WK_PROTOCOL`. */
export class LinkProtocolError extends WirekitError {
  constructor(message: string) {
    super('WK_PROTOCOL', message, { origin: 'remote' });
  }
}

/** A hub's error reply, with the code the hub gave (`WK_AUTH`, `WK_NOT_FOUND`, `WK_PERMISSION`...). */
export class HubReplyError extends WirekitError {
  /** The code exactly as the hub sent it. */
  readonly remoteCode: string;
  constructor(code: string, message: string) {
    super(isErrorCode(code) ? code : 'WK_REMOTE_COMMAND_FAILED', message, { origin: 'remote' });
    this.remoteCode = code;
  }
}

/** A route's failure with its HTTP status; the body is the wrapped message. */
export class HttpError extends WirekitError {
  constructor(
    readonly status: number,
    message: string,
    code: ErrorCode = status === 401 ? 'WK_AUTH' : status === 403 ? 'WK_PERMISSION' : status === 404 ? 'WK_NOT_FOUND' : 'WK_USAGE',
  ) {
    super(code, message, { origin: 'remote' });
  }
}

/** A fleet record or message from NATS that is not what a wirekit hub writes. Code `WK_MALFORMED`. */
export class FleetRecordError extends WirekitError {
  constructor(message: string) {
    super('WK_MALFORMED', message, { origin: 'remote' });
  }
}

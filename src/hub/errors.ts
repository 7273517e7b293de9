import { WirekitError } from '../errors.js';

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

/** The hub's Overlord compatibility listeners (see docs/overlord.md). */
export { GhostPort, allowList, type OverlordOptions } from './ghost-port.js';
export { GhostLink, GhostRequestError } from './ghost-link.js';
export { handleConnect, webSocketAccept } from './connect.js';
export { ghostSessionKinds, shellQuote, GhostUnsupportedError } from './sessions.js';

/**
 * Overlord's ghost protocol, both generations (sans-I/O; no `node:` import): RPC messages and
 * their line framing, register and modes, request tracking by rid, and the in-band session
 * controls. See docs/overlord.md. The hub's listeners are in src/hub/overlord/.
 */
export { OverlordProtocolError, OverlordLineTooLongError } from './errors.js';
export { encodeRequest, encodeSuccess, encodeFailure, decodeMessage, DEFAULT_RPC_TIMEOUT, NO_REPLY } from './messages.js';
export type { Generation, RpcRequest, RpcResponse, RpcMessage } from './messages.js';
export { LineSplitter, DEFAULT_MAX_LINE } from './lines.js';
export type { LineEvent } from './lines.js';
export { Mode, CHILD_MODES, MAX_ID_LENGTH, checkRegister } from './register.js';
export type { ModeValue, Registration, RegisterCheck } from './register.js';
export { RpcTracker } from './rpc.js';
export type { Pending } from './rpc.js';
export {
  ClassicTerminalParser,
  ClassicTerminalEncoder,
  ClassicInputFilter,
  CurrentTerminalParser,
  StdinClosedScanner,
  encodeClassicResize,
  encodeCurrentResize,
  encodeStdinClosed,
  STDIN_CLOSED,
  CLASSIC_CONTROL_START,
  CLASSIC_CONTROL_END,
  MAX_CLASSIC_CONTROL,
} from './inband.js';
export type { TerminalEvent } from './inband.js';

import { WirekitError } from '../../errors.js';

/** A ghost (or hub) sent something that is not an Overlord RPC message. Code `WK_MALFORMED`. */
export class OverlordProtocolError extends WirekitError {
  constructor(message: string, origin: 'local' | 'remote' = 'remote') {
    super('WK_MALFORMED', message, { origin });
  }
}

/** A message line longer than the limit (it is discarded up to its end). Code `WK_FRAME_TOO_LARGE`. */
export class OverlordLineTooLongError extends WirekitError {
  constructor(readonly max: number) {
    super('WK_FRAME_TOO_LARGE', `Overlord message line over ${max} bytes`, { origin: 'remote' });
  }
}

import { WirekitError } from '../../errors.js';

/** The codes of `PickleError`. */
export type PickleErrorCode = 'WK_PICKLE_MALFORMED' | 'WK_PICKLE_REFUSED' | 'WK_PICKLE_UNSUPPORTED' | 'WK_PICKLE_LIMIT';

/**
 * A pickle could not be read or written: malformed input (`WK_PICKLE_MALFORMED`), a refused opcode
 * (`WK_PICKLE_REFUSED`), a value the writer cannot express (`WK_PICKLE_UNSUPPORTED`) or a limit
 * passed (`WK_PICKLE_LIMIT`). `origin` is `'remote'` for bytes read, `'local'` for values written.
 */
export class PickleError extends WirekitError {
  declare readonly code: PickleErrorCode;
  constructor(code: PickleErrorCode, message: string, origin: 'local' | 'remote') {
    super(code, message, { origin });
  }
}

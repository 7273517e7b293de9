import { WirekitError } from '../../errors.js';

/**
 * A frame sequence that the multiplexed frame protocol forbids (wrong stream parity, a frame for
 * an unknown request, a request id already in use, bad flag combinations, ...). `origin` says
 * whether the peer sent it (`'remote'`) or this side tried to do it (`'local'`).
 */
export class MuxProtocolError extends WirekitError {
  constructor(message: string, options?: { origin?: 'local' | 'remote'; cause?: unknown }) {
    super('WK_MUX_PROTOCOL', message, options);
  }
}

/** Invalid or unsupported CBOR (outside Mercurial's subset), or CBOR over a configured limit. */
export class CborError extends WirekitError {
  constructor(message: string, options?: { origin?: 'local' | 'remote'; cause?: unknown }) {
    super('WK_CBOR', message, options);
  }
}

/** A stream content encoding is unknown, unavailable on this runtime, or its data is corrupt. */
export class StreamEncodingError extends WirekitError {
  constructor(message: string, options?: { origin?: 'local' | 'remote'; cause?: unknown }) {
    super('WK_MUX_ENCODING', message, options);
  }
}

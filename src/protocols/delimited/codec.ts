/**
 * The `%base64$` message codec as the delimited protocol uses it: `%`, base64 body, `$`: the shared
 * `percentDollar()` codec (strict base64, strict UTF-8 for text, empty messages allowed, junk
 * before `%` skipped as the original does, a resumable linear scan, a size limit enforced while
 * scanning that drops only the oversized message), with this module's option names.
 */
import { percentDollar, type DelimitedCodec } from '../../codecs/index.js';

/** A `%base64$` codec (text or bytes). */
export type MessageCodec<T> = DelimitedCodec<T>;

export interface MessageCodecOptions {
  /** Maximum base64 body length in bytes, checked while scanning. Default 16 MiB. */
  maxMessageLength?: number;
}

/** The delimited protocol's codec: text messages, or bytes with `{ binary: true }`. */
export function messageCodec(options?: MessageCodecOptions & { binary?: false }): MessageCodec<string>;
export function messageCodec(options: MessageCodecOptions & { binary: true }): MessageCodec<Uint8Array>;
export function messageCodec(options: MessageCodecOptions & { binary?: boolean } = {}): MessageCodec<string> | MessageCodec<Uint8Array> {
  if (options.binary) return percentDollar({ maxBodyLength: options.maxMessageLength, binary: true });
  return percentDollar({ maxBodyLength: options.maxMessageLength });
}

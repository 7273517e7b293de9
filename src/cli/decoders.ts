/**
 * Decoders known to `wirekit decode`, by name. Each entry makes a fresh decoder and formats one
 * frame as a readable line. Other protocol folders can add entries with `registerDecoder`.
 */
import type { Decoder } from '../codecs/codec.js';
import { ndjson, lines } from '../codecs/lines.js';
import { percentDollar } from '../codecs/delimited.js';
import { u32be, varint, typedFrame, packetFrame, type HeaderFrame } from '../codecs/length-field.js';
import { describeBytes } from '../bytes/text.js';
import { sessionCodec, frameTypeName, type SessionFrame } from '../agent/session-frames.js';

export interface DecoderEntry {
  description: string;
  create(maxFrame: number | undefined): Decoder<unknown>;
  format(frame: unknown): string;
}

/** Readable form of bytes: the UTF-8 text when it is printable, else escaped bytes. */
export function showBytes(b: Uint8Array, max = 120): string {
  return `${b.length} B ${describeBytes(b, max)}`;
}

const headerFields = (f: HeaderFrame) =>
  Object.entries(f.fields)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

export const DECODERS = new Map<string, DecoderEntry>([
  ['lines', { description: 'LF or CRLF terminated lines', create: (m) => lines({ maxLineLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  ['ndjson', { description: 'one JSON value per line', create: (m) => ndjson({ maxLineLength: m }), format: (f) => JSON.stringify(f) }],
  ['percent-dollar', { description: '%base64$ messages (the UDS codec)', create: (m) => percentDollar({ binary: true, maxBodyLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  ['u32be', { description: '4-byte big-endian length prefix', create: (m) => u32be({ maxFrameLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  ['varint', { description: 'LEB128 varint length prefix', create: (m) => varint({ maxFrameLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  ['typed-frame', { description: "Mercurial's frame header (24-bit LE length, type/flags nibbles)", create: (m) => typedFrame({ maxFrameLength: m }), format: (f) => `${headerFields(f as HeaderFrame)} ${showBytes((f as HeaderFrame).payload)}` }],
  ['packet', { description: "Armchair's packet header (u64 length, type, u64 id)", create: (m) => packetFrame({ maxFrameLength: m, bigintIds: true }), format: (f) => `${headerFields(f as HeaderFrame)} ${showBytes((f as HeaderFrame).payload)}` }],
  [
    'agent-session',
    {
      description: 'wirekit agent session frames (type byte, u32 BE length)',
      create: (m) => sessionCodec({ maxFrameLength: m }),
      format: (f) => `${frameTypeName((f as SessionFrame).type)} ${showBytes((f as SessionFrame).payload)}`,
    },
  ],
]);

/** Adds a decoder under `name` (for protocol folders). */
export function registerDecoder(name: string, entry: DecoderEntry): void {
  DECODERS.set(name, entry);
}

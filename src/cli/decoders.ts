/**
 * Decoders known to `wirekit decode`, by name. Each entry makes a fresh decoder, formats one frame
 * as a readable line and as a JSON value (both name frame types the same way). Other protocol
 * folders can add entries with `registerDecoder`.
 */
import type { Decoder } from '../codecs/codec.js';
import { ndjson, lines } from '../codecs/lines.js';
import { percentDollar } from '../codecs/delimited.js';
import { u32be, varint, typedFrame, packetFrame, type HeaderFrame } from '../codecs/length-field.js';
import { describeBytes } from '../bytes/text.js';
import { sessionCodec, frameTypeName, type SessionFrame } from '../agent/session-frames.js';
import { agentStream, type AgentStreamFrame } from '../agent/capture.js';
import { frameTypeName as mercurialTypeName } from '../protocols/frames/constants.js';

export interface DecoderEntry {
  description: string;
  create(maxFrame: number | undefined): Decoder<unknown>;
  format(frame: unknown): string;
  /** The frame as JSON (default: bytes as `{"bytes": base64}`, header fields as they are). */
  json?(frame: unknown): unknown;
}

/** Readable form of bytes: the UTF-8 text when it is printable, else escaped bytes. */
export function showBytes(b: Uint8Array, max = 120): string {
  return `${b.length} B ${describeBytes(b, max)}`;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text, when they are valid UTF-8 without control characters other than tab. */
export function asText(b: Uint8Array): string | undefined {
  let text: string;
  try {
    text = strictUtf8.decode(b);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u0008\u000a-\u001f\u007f]/.test(text) ? undefined : text;
}

/** Text carried as text prints as a quoted string; anything else as bytes. */
const showText = (b: Uint8Array) => {
  const t = asText(b);
  return t === undefined ? showBytes(b) : JSON.stringify(t);
};
const textJson = (b: Uint8Array) => {
  const t = asText(b);
  return t === undefined ? { bytes: base64(b) } : { text: t };
};

const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

const plainFields = (fields: Record<string, unknown>) => Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

/** Header fields with `type` named where the protocol names its types. */
function namedFields(f: HeaderFrame, names?: (type: number) => string | undefined): Record<string, unknown> {
  const fields = plainFields(f.fields);
  const type = f.fields.type;
  if (names && typeof type === 'number') fields.type = names(type) ?? type;
  return fields;
}

const headerText = (fields: Record<string, unknown>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');

const sessionText = (f: SessionFrame) => `${frameTypeName(f.type) ?? `type ${f.type}`} ${showBytes(f.payload)}`;
const sessionJson = (f: SessionFrame) => ({ type: frameTypeName(f.type) ?? f.type, payload: base64(f.payload) });

const mercurialType = (t: number) => mercurialTypeName(t);

export const DECODERS = new Map<string, DecoderEntry>([
  ['lines', { description: 'LF or CRLF terminated lines', create: (m) => lines({ maxLineLength: m }), format: (f) => showText(f as Uint8Array), json: (f) => textJson(f as Uint8Array) }],
  ['ndjson', { description: 'one JSON value per line', create: (m) => ndjson({ maxLineLength: m }), format: (f) => JSON.stringify(f), json: (f) => f }],
  ['percent-dollar', { description: '%base64$ messages (the UDS codec)', create: (m) => percentDollar({ binary: true, maxBodyLength: m }), format: (f) => showText(f as Uint8Array), json: (f) => textJson(f as Uint8Array) }],
  ['u32be', { description: '4-byte big-endian length prefix', create: (m) => u32be({ maxFrameLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  ['varint', { description: 'LEB128 varint length prefix', create: (m) => varint({ maxFrameLength: m }), format: (f) => showBytes(f as Uint8Array) }],
  [
    'typed-frame',
    {
      description: "Mercurial's frame header (24-bit LE length, type/flags nibbles)",
      create: (m) => typedFrame({ maxFrameLength: m }),
      format: (f) => `${headerText(namedFields(f as HeaderFrame, mercurialType))} ${showBytes((f as HeaderFrame).payload)}`,
      json: (f) => ({ fields: namedFields(f as HeaderFrame, mercurialType), payload: base64((f as HeaderFrame).payload) }),
    },
  ],
  [
    'packet',
    {
      description: "Armchair's packet header (u64 length, type, u64 id)",
      create: (m) => packetFrame({ maxFrameLength: m, bigintIds: true }),
      format: (f) => `${headerText(namedFields(f as HeaderFrame))} ${showBytes((f as HeaderFrame).payload)}`,
      json: (f) => ({ fields: namedFields(f as HeaderFrame), payload: base64((f as HeaderFrame).payload) }),
    },
  ],
  [
    'agent-session',
    {
      description: 'wirekit agent session frames (type byte, u32 BE length)',
      create: (m) => sessionCodec({ maxFrameLength: m }),
      format: (f) => sessionText(f as SessionFrame),
      json: (f) => sessionJson(f as SessionFrame),
    },
  ],
  [
    'agent',
    {
      description: "a wirekit agent connection from byte 0: control lines, then what a session command switches to",
      create: (m) => agentStream({ maxFrameLength: m }),
      format: (f) => {
        const a = f as AgentStreamFrame;
        return a.kind === 'control' ? `control ${JSON.stringify(a.message)}` : a.kind === 'session' ? sessionText(a.frame) : `file ${showBytes(a.payload, 40)}`;
      },
      json: (f) => {
        const a = f as AgentStreamFrame;
        return a.kind === 'control' ? { control: a.message } : a.kind === 'session' ? sessionJson(a.frame) : { file: base64(a.payload) };
      },
    },
  ],
]);

/** Adds a decoder under `name` (for protocol folders). */
export function registerDecoder(name: string, entry: DecoderEntry): void {
  DECODERS.set(name, entry);
}

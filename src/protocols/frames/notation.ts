import { FRAME_TYPE_FLAGS, FRAME_TYPES, frameTypeName } from './constants.js';
import { FrameEncodingError } from './errors.js';
import { frame, type Frame } from './frame.js';

/**
 * Human-readable frame notation: `<type> <flags> <payload>`.
 *
 * The type is a name (`command-name`, ...) or a number; flags are names valid for the type or
 * numbers, joined with `|` (`0` for none); the payload is the rest of the line (spaces included)
 * with backslash escapes as Python's `codecs.escape_decode` reads them (Mercurial's notation uses it):
 * `\\`, `\'`, `\"`, `\a`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`, `\xNN`, octal `\N`..`\NNN`, a backslash
 * before a line feed is dropped, and any other escape keeps its backslash (`\q` is the two bytes `\q`).
 *
 * ```ts
 * parseFrameNotation('command-name have-args|have-data mycommand');
 * formatFrameNotation(frame) // 'command-argument eoa \x03\x00\x03\x00keyval'
 * ```
 */
export function parseFrameNotation(text: string): Frame {
  const s1 = text.indexOf(' ');
  if (s1 < 0) throw new FrameEncodingError(`frame notation needs "<type> <flags> <payload>": ${JSON.stringify(text)}`);
  const s2 = text.indexOf(' ', s1 + 1);
  const typeText = text.slice(0, s1);
  const flagsText = s2 < 0 ? text.slice(s1 + 1) : text.slice(s1 + 1, s2);
  const payloadText = s2 < 0 ? '' : text.slice(s2 + 1);
  const type = FRAME_TYPES[typeText] ?? parseNumber(typeText, 'frame type');
  const valid = FRAME_TYPE_FLAGS[type] ?? {};
  let flags = 0;
  for (const part of flagsText.split('|')) {
    const named = Object.hasOwn(valid, part) ? valid[part] : undefined;
    flags |= named ?? parseNumber(part, `flag of ${frameTypeName(type)}`);
  }
  return frame(type, flags, unescapePayload(payloadText));
}

function parseNumber(text: string, what: string): number {
  if (!/^(0x[0-9a-f]+|\d+)$/i.test(text)) throw new FrameEncodingError(`unknown ${what}: ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Decodes backslash escapes into bytes (other characters as UTF-8), as Python's `codecs.escape_decode`
 * does: an unknown escape keeps its backslash; a lone trailing backslash and a short `\x` are errors.
 */
export function unescapePayload(text: string): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\') {
      const code = ch.charCodeAt(0);
      if (code < 0x80) out.push(code);
      else {
        // Whole code point (may be a surrogate pair).
        const cp = text.codePointAt(i)!;
        const s = String.fromCodePoint(cp);
        for (const b of enc.encode(s)) out.push(b);
        i += s.length - 1;
      }
      continue;
    }
    const next = text[++i];
    if (next === undefined) throw new FrameEncodingError('frame notation: payload ends with a lone backslash');
    switch (next) {
      case '\\': out.push(0x5c); break;
      case 'n': out.push(0x0a); break;
      case 'r': out.push(0x0d); break;
      case 't': out.push(0x09); break;
      case "'": out.push(0x27); break;
      case '"': out.push(0x22); break;
      case 'a': out.push(0x07); break;
      case 'b': out.push(0x08); break;
      case 'f': out.push(0x0c); break;
      case 'v': out.push(0x0b); break;
      case '\n': break; // line continuation
      case 'x': {
        const hex = text.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new FrameEncodingError(`frame notation: invalid \\x escape at offset ${i - 1}`);
        out.push(parseInt(hex, 16));
        i += 2;
        break;
      }
      default:
        if (next >= '0' && next <= '7') {
          let j = i;
          while (j < i + 3 && j < text.length && text[j]! >= '0' && text[j]! <= '7') j++;
          out.push(parseInt(text.slice(i, j), 8) & 0xff);
          i = j - 1;
        } else {
          // Unknown escape: the backslash stays and the next character is read as usual.
          out.push(0x5c);
          i--;
        }
    }
  }
  return Uint8Array.from(out);
}

/** Escapes bytes for the notation: printable ASCII as is, `\\` doubled, others as `\xNN`. */
export function escapePayload(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    if (b === 0x5c) s += '\\\\';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += '\\x' + b.toString(16).padStart(2, '0');
  }
  return s;
}

/** Prints a frame in the notation; `parseFrameNotation(formatFrameNotation(f))` gives `f` back. */
export function formatFrameNotation(f: Frame): string {
  const names = FRAME_TYPE_FLAGS[f.type];
  const parts: string[] = [];
  let rest = f.flags;
  if (names) {
    for (const [name, bit] of Object.entries(names)) {
      if (rest & bit) {
        parts.push(name);
        rest &= ~bit;
      }
    }
  }
  if (rest !== 0 || parts.length === 0) parts.push(String(rest));
  return `${frameTypeName(f.type)} ${parts.join('|')} ${escapePayload(f.payload)}`;
}

/** @deprecated use `formatFrameNotation`. */
export const formatFrame = formatFrameNotation;

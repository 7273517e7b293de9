/**
 * The escape of `shell` and `exec -t`: the keys that end the session from this side. A control
 * key (`^]` by default) ends it wherever it is typed; an ssh-style escape character (`~` by
 * default) ends it when typed at the start of a line and followed by `.`, and is sent once when
 * typed twice. Sans-I/O: bytes typed in, bytes to send out and whether to end.
 */
import { UsageError } from './args.js';

export interface EscapeSpec {
  /** A byte that ends the session wherever it is typed. */
  control?: number;
  /** A byte that, at the start of a line and followed by `.`, ends the session (ssh's `~`). */
  lineStart?: number;
}

/** Ctrl-] anywhere, and `~.` after a newline, as in telnet and ssh. */
export const DEFAULT_ESCAPE: EscapeSpec = { control: 0x1d, lineStart: 0x7e };

/**
 * Parses `--escape`: `none`; `^X` (a control key: `^]`, `^A`, `^?` for DEL); a printable
 * character, used the ssh way (`C.` at the start of a line); `~` alone is ssh's own.
 */
export function parseEscape(text: string): EscapeSpec {
  if (text === 'none') return {};
  if (text.length === 2 && text[0] === '^') {
    const c = text[1]!.toUpperCase().charCodeAt(0);
    if (c === 0x3f) return { control: 0x7f };
    if (c >= 0x40 && c <= 0x5f) return { control: c ^ 0x40 };
  }
  if (text.length === 1) {
    const c = text.charCodeAt(0);
    if (c < 0x20 || c === 0x7f) return { control: c };
    if (c < 0x7f && c !== 0x2e) return { lineStart: c };
  }
  throw new UsageError(`invalid --escape ${JSON.stringify(text)} (expected ^X such as '^]', a character such as '~', or none)`);
}

/** How an escape is shown to the user: `^]`, `~.`. */
export function describeEscape(spec: EscapeSpec): string {
  const parts: string[] = [];
  if (spec.control !== undefined) parts.push(spec.control === 0x7f ? '^?' : `^${String.fromCharCode(spec.control ^ 0x40)}`);
  if (spec.lineStart !== undefined) parts.push(`${String.fromCharCode(spec.lineStart)}. after a newline`);
  return parts.join(' or ');
}

/** What typed bytes become. */
export interface EscapeResult {
  /** The bytes to send to the remote side. */
  send: Uint8Array;
  /** Set when an escape was typed: end the session (after sending `send`). */
  end?: string;
}

/** Watches typed bytes for the escape. */
export class EscapeScanner {
  private lineStart = true;
  private pending = false;

  constructor(private readonly spec: EscapeSpec) {}

  feed(typed: Uint8Array): EscapeResult {
    const { control, lineStart } = this.spec;
    if (control === undefined && lineStart === undefined) return { send: typed };
    const out: number[] = [];
    let changed = false;
    for (const b of typed) {
      if (b === control) return { send: Uint8Array.from(out), end: describeEscape({ control }) };
      if (this.pending) {
        this.pending = false;
        changed = true;
        if (b === 0x2e) return { send: Uint8Array.from(out), end: `${String.fromCharCode(lineStart!)}.` };
        out.push(lineStart!);
        if (b === lineStart) {
          this.lineStart = false;
          continue;
        }
      } else if (this.lineStart && b === lineStart) {
        this.pending = true;
        changed = true;
        continue;
      }
      out.push(b);
      this.lineStart = b === 0x0d || b === 0x0a;
    }
    return { send: changed ? Uint8Array.from(out) : typed };
  }
}

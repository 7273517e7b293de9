/**
 * The in-band controls of Overlord sessions (sans-I/O). They exist only on the link to an
 * Overlord ghost; wirekit's own sessions use typed frames.
 *
 * - classic terminal resize: byte 0x80, JSON `{"command":"resize","params":[rows,cols]}`, byte 0x81.
 *   0x80 is also a UTF-8 continuation byte, so `ClassicTerminalParser` takes it as a marker only
 *   where a UTF-8 character may start, and `ClassicTerminalEncoder` never puts a marker inside a
 *   character split across writes. Both keep their state across reads.
 * - current terminal resize: `ESC [ 8 ; rows ; cols t`; `CurrentTerminalParser` finds it across reads.
 * - classic shell stdin end: the text `##STDIN_CLOSED##` (sent twice, as ovl does);
 *   `StdinClosedScanner` finds it across reads and drops what follows.
 */
import { utf8Decode, utf8Encode, concatBytes } from '../../bytes/text.js';

export type TerminalEvent =
  | { readonly type: 'data'; readonly data: Uint8Array }
  | { readonly type: 'resize'; readonly rows: number; readonly cols: number }
  /** A 0x80…0x81 control that is not a valid resize (ignored by ghosts). */
  | { readonly type: 'control'; readonly text: string };

export const CLASSIC_CONTROL_START = 0x80;
export const CLASSIC_CONTROL_END = 0x81;
/** Longest JSON between 0x80 and 0x81; longer, and the bytes are data after all. */
export const MAX_CLASSIC_CONTROL = 1024;

const clampSize = (n: number) => Math.min(0xffff, Math.max(1, Math.floor(n)));

/** The classic resize control. */
export function encodeClassicResize(rows: number, cols: number): Uint8Array {
  const json = utf8Encode(JSON.stringify({ command: 'resize', params: [clampSize(rows), clampSize(cols)] }));
  const out = new Uint8Array(json.length + 2);
  out[0] = CLASSIC_CONTROL_START;
  out.set(json, 1);
  out[out.length - 1] = CLASSIC_CONTROL_END;
  return out;
}

/** The current resize control, `ESC [ 8 ; rows ; cols t`. */
export function encodeCurrentResize(rows: number, cols: number): Uint8Array {
  return utf8Encode(`\x1b[8;${clampSize(rows)};${clampSize(cols)}t`);
}

/** Continuation bytes still expected after a UTF-8 lead byte (0 for ASCII or a continuation). */
function utf8Expect(b: number): number {
  if (b >= 0xc2 && b <= 0xdf) return 1;
  if (b >= 0xe0 && b <= 0xef) return 2;
  if (b >= 0xf0 && b <= 0xf4) return 3;
  return 0;
}

/** Tracks whether a byte stream is in the middle of a UTF-8 character. */
class Utf8State {
  pending = 0;
  feed(b: number): void {
    if (this.pending > 0 && (b & 0xc0) === 0x80) this.pending--;
    else this.pending = utf8Expect(b);
  }
}

function parseResize(text: string): TerminalEvent {
  try {
    const v = JSON.parse(text) as { command?: unknown; params?: unknown };
    const p = v?.params;
    if (v?.command === 'resize' && Array.isArray(p) && p.length === 2 && typeof p[0] === 'number' && typeof p[1] === 'number' && p[0] > 0 && p[1] > 0) {
      return { type: 'resize', rows: clampSize(p[0]), cols: clampSize(p[1]) };
    }
  } catch {
    // not JSON: reported as a control nobody understands
  }
  return { type: 'control', text };
}

/** The ghost's side of a classic terminal: splits input into data and controls. */
export class ClassicTerminalParser {
  private readonly utf8 = new Utf8State();
  /** Inside a control: the bytes after 0x80 so far. */
  private control: Uint8Array[] | undefined;
  private controlLength = 0;

  push(chunk: Uint8Array): TerminalEvent[] {
    const out: TerminalEvent[] = [];
    let dataStart = 0;
    const flushData = (end: number) => {
      if (end > dataStart) out.push({ type: 'data', data: chunk.subarray(dataStart, end) });
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.control) {
        if (b === CLASSIC_CONTROL_END) {
          const text = utf8Decode(concatBytes([...this.control, chunk.subarray(dataStart, i)]));
          this.control = undefined;
          out.push(parseResize(text));
          dataStart = i + 1;
          continue;
        }
        this.controlLength++;
        if (this.controlLength > MAX_CLASSIC_CONTROL) {
          // Not a control after all: give back what was held as data (with its 0x80).
          const held = concatBytes([Uint8Array.of(CLASSIC_CONTROL_START), ...this.control, chunk.subarray(dataStart, i)]);
          this.control = undefined;
          out.push({ type: 'data', data: held });
          for (const h of held) this.utf8.feed(h);
          dataStart = i;
          i--;
          continue;
        }
        continue;
      }
      if (b === CLASSIC_CONTROL_START && this.utf8.pending === 0) {
        flushData(i);
        this.control = [];
        this.controlLength = 0;
        dataStart = i + 1;
        continue;
      }
      this.utf8.feed(b);
    }
    if (this.control) {
      if (dataStart < chunk.length) this.control.push(chunk.slice(dataStart));
    } else flushData(chunk.length);
    return out;
  }
}

const REPLACEMENT = utf8Encode('\uFFFD');

/**
 * Terminal input for a classic ghost. Both classic ghosts (ghost.py, the Go ghost) take every byte
 * 0x80 as the start of a control, also inside a UTF-8 character (U+0400 is D0 80, U+4E00 is
 * E4 B8 80), and a control that is not JSON ends the session. No escape exists, so a character whose
 * UTF-8 holds the byte 0x80 (or a stray 0x80) is sent as U+FFFD instead: the session lives on.
 * Characters split across writes are held until complete.
 */
export class ClassicInputFilter {
  private partial: number[] = [];
  private expect = 0;

  push(bytes: Uint8Array): Uint8Array {
    if (this.partial.length === 0 && !bytes.includes(CLASSIC_CONTROL_START)) {
      // Fast path: no 0x80 at all; hold back an incomplete character at the end.
      let cut = bytes.length;
      for (let i = Math.max(0, bytes.length - 3); i < bytes.length; i++) {
        const need = utf8Expect(bytes[i]!);
        if (need > 0 && i + need >= bytes.length) {
          cut = i;
          break;
        }
      }
      if (cut === bytes.length) return bytes;
      this.partial = [...bytes.subarray(cut)];
      this.expect = utf8Expect(bytes[cut]!) + 1;
      return bytes.subarray(0, cut);
    }
    const out: number[] = [];
    const flush = () => {
      if (this.partial.includes(CLASSIC_CONTROL_START)) out.push(...REPLACEMENT);
      else out.push(...this.partial);
      this.partial = [];
      this.expect = 0;
    };
    for (const b of bytes) {
      if (this.partial.length > 0) {
        if ((b & 0xc0) === 0x80) {
          this.partial.push(b);
          if (this.partial.length === this.expect) flush();
          continue;
        }
        flush(); // an incomplete character, cut short by b
      }
      const need = utf8Expect(b);
      if (need > 0) {
        this.partial = [b];
        this.expect = need + 1;
      } else if (b === CLASSIC_CONTROL_START) out.push(...REPLACEMENT);
      else out.push(b);
    }
    return Uint8Array.from(out);
  }
}

/** The hub's side of a classic terminal: input bytes and resizes, never a marker inside a character. */
export class ClassicTerminalEncoder {
  private readonly utf8 = new Utf8State();
  private deferred: Uint8Array | undefined;

  /** Bytes to write for terminal input. */
  data(bytes: Uint8Array): Uint8Array {
    for (const b of bytes) this.utf8.feed(b);
    if (this.deferred && this.utf8.pending === 0) {
      const d = this.deferred;
      this.deferred = undefined;
      return concatBytes([bytes, d]);
    }
    return bytes;
  }

  /** Bytes to write for a resize (empty while a character is incomplete: it follows that character). */
  resize(rows: number, cols: number): Uint8Array {
    const r = encodeClassicResize(rows, cols);
    if (this.utf8.pending === 0) return r;
    this.deferred = r;
    return new Uint8Array(0);
  }
}

const ESC = 0x1b;
/** Longest current resize sequence: ESC [ 8 ; 65535 ; 65535 t, with some slack for leading zeros. */
const MAX_CURRENT_CONTROL = 24;

/** The ghost's side of a current terminal: finds `ESC [ 8 ; rows ; cols t` across reads. */
export class CurrentTerminalParser {
  private held: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): TerminalEvent[] {
    const buf = this.held.length > 0 ? concatBytes([this.held, chunk]) : chunk;
    this.held = new Uint8Array(0);
    const out: TerminalEvent[] = [];
    let dataStart = 0;
    let i = 0;
    while (i < buf.length) {
      if (buf[i] !== ESC) {
        i++;
        continue;
      }
      const m = matchCurrentResize(buf, i);
      if (m === 'partial') {
        if (i > dataStart) out.push({ type: 'data', data: buf.subarray(dataStart, i) });
        this.held = buf.slice(i);
        return out;
      }
      if (m === undefined) {
        i++;
        continue;
      }
      if (i > dataStart) out.push({ type: 'data', data: buf.subarray(dataStart, i) });
      out.push({ type: 'resize', rows: m.rows, cols: m.cols });
      i = m.end;
      dataStart = i;
    }
    if (dataStart < buf.length) out.push({ type: 'data', data: buf.subarray(dataStart) });
    return out;
  }

  /** Bytes held back at the end of input (a sequence that never completed): data after all. */
  end(): Uint8Array {
    const h = this.held;
    this.held = new Uint8Array(0);
    return h;
  }
}

function matchCurrentResize(buf: Uint8Array, at: number): { rows: number; cols: number; end: number } | 'partial' | undefined {
  const prefix = [ESC, 0x5b, 0x38, 0x3b]; // ESC [ 8 ;
  let i = at;
  for (const p of prefix) {
    if (i >= buf.length) return 'partial';
    if (buf[i] !== p) return undefined;
    i++;
  }
  const nums: number[] = [];
  let n = 0;
  let digits = 0;
  for (;;) {
    if (i - at > MAX_CURRENT_CONTROL) return undefined;
    if (i >= buf.length) return 'partial';
    const b = buf[i]!;
    if (b >= 0x30 && b <= 0x39) {
      n = n * 10 + (b - 0x30);
      digits++;
    } else if (b === 0x3b && nums.length === 0 && digits > 0) {
      nums.push(n);
      n = 0;
      digits = 0;
    } else if (b === 0x74 && nums.length === 1 && digits > 0) {
      if (nums[0]! < 1 || n < 1) return undefined;
      return { rows: clampSize(nums[0]!), cols: clampSize(n), end: i + 1 };
    } else return undefined;
    i++;
  }
}

export const STDIN_CLOSED = '##STDIN_CLOSED##';
const MARKER = utf8Encode(STDIN_CLOSED);

/** What the hub writes to a classic shell for stdin end-of-file. */
export function encodeStdinClosed(): Uint8Array {
  return concatBytes([MARKER, MARKER]);
}

/** The ghost's side of a classic shell: stdin bytes up to the marker, found across reads. */
export class StdinClosedScanner {
  private held: Uint8Array = new Uint8Array(0);
  private closedFlag = false;

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Stdin bytes to pass on; `closed` turns true once the marker was seen (the rest is dropped). */
  push(chunk: Uint8Array): { data: Uint8Array; closed: boolean } {
    if (this.closedFlag) return { data: new Uint8Array(0), closed: true };
    const buf = this.held.length > 0 ? concatBytes([this.held, chunk]) : chunk;
    this.held = new Uint8Array(0);
    const at = indexOfSeq(buf, MARKER);
    if (at >= 0) {
      this.closedFlag = true;
      return { data: buf.subarray(0, at), closed: true };
    }
    // Hold back the longest tail that could start the marker.
    let keep = Math.min(MARKER.length - 1, buf.length);
    while (keep > 0 && !startsWith(MARKER, buf.subarray(buf.length - keep))) keep--;
    this.held = buf.slice(buf.length - keep);
    return { data: buf.subarray(0, buf.length - keep), closed: false };
  }

  /** Held bytes at the end of input. */
  end(): Uint8Array {
    const h = this.held;
    this.held = new Uint8Array(0);
    return h;
  }
}

function startsWith(whole: Uint8Array, part: Uint8Array): boolean {
  for (let i = 0; i < part.length; i++) if (whole[i] !== part[i]) return false;
  return true;
}

function indexOfSeq(buf: Uint8Array, seq: Uint8Array): number {
  outer: for (let i = 0; i + seq.length <= buf.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * A streaming multipart/form-data reader (sans-I/O): bytes in, events out, the file data as views
 * of the pushed chunks (copied only when a piece spans chunks). It never holds more than one
 * part's headers (bounded) or a delimiter's length of data: the boundary scan resumes where it
 * stopped and keeps only the bytes that could still begin a delimiter.
 *
 * ```
 * [preamble] --B CRLF headers CRLF CRLF data CRLF --B CRLF headers ... CRLF --B -- [CRLF epilogue]
 * ```
 *
 * The reader treats the body as if it began with CRLF, so the first delimiter is found by the
 * same scan as the others (RFC 2046 §5.1.1).
 */
import { ByteQueue } from '../bytes/byte-queue.js';
import { utf8Decode, utf8Encode } from '../bytes/text.js';
import { MalformedFrameError } from '../codecs/errors.js';

/** A multipart body that does not follow the format or its limits: `MalformedFrameError` (`WK_MALFORMED`). */
const malformed = (message: string) => new MalformedFrameError(message, undefined, undefined, { fatal: true });

export type MultipartEvent =
  /** A part's headers (names lower-cased); `offset` is how many body bytes came before its data. */
  | { type: 'part'; headers: ReadonlyMap<string, string>; offset: number }
  | { type: 'data'; data: Uint8Array }
  /** The current part's data ended; `last` when the close delimiter followed. */
  | { type: 'partEnd'; last: boolean };

export interface MultipartOptions {
  /** Largest header block of one part, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Most parts accepted. Default 16. */
  maxParts?: number;
}

const CRLF = utf8Encode('\r\n');
const CRLFCRLF = utf8Encode('\r\n\r\n');

/** The boundary of a `multipart/form-data` content type, or undefined when it is not one. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const { value, params } = splitParams(contentType);
  if (value.toLowerCase() !== 'multipart/form-data') return undefined;
  const b = params.get('boundary');
  if (b === undefined || b.length < 1 || b.length > 70 || !/^[0-9A-Za-z'()+_,\-./:=? ]*[0-9A-Za-z'()+_,\-./:=?]$/.test(b)) {
    throw malformed('multipart/form-data without a valid boundary');
  }
  return b;
}

/** Splits `value; a=b; c="d"` into the value and its parameters (names lower-cased). */
export function splitParams(header: string): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  let i = header.indexOf(';');
  const value = (i < 0 ? header : header.slice(0, i)).trim();
  while (i >= 0 && i < header.length) {
    i++;
    const eq = header.indexOf('=', i);
    if (eq < 0) break;
    const name = header.slice(i, eq).trim().toLowerCase();
    let j = eq + 1;
    while (header[j] === ' ' || header[j] === '\t') j++;
    let v = '';
    if (header[j] === '"') {
      j++;
      while (j < header.length && header[j] !== '"') {
        if (header[j] === '\\' && j + 1 < header.length) j++;
        v += header[j];
        j++;
      }
      j = header.indexOf(';', j);
    } else {
      const end = header.indexOf(';', j);
      v = (end < 0 ? header.slice(j) : header.slice(j, end)).trim();
      j = end;
    }
    if (name && !params.has(name)) params.set(name, v);
    i = j;
  }
  return { value, params };
}

type State = 'delimiter' | 'afterDelimiter' | 'headers' | 'data' | 'done';

/**
 * Reads a multipart body. `push(chunk)` returns the events it completed; `end()` checks the body
 * ended after its close delimiter. Errors are final: every later call throws the same one.
 */
export class MultipartReader {
  private readonly queue = new ByteQueue();
  private readonly delimiter: Uint8Array;
  private readonly maxHeaderBytes: number;
  private readonly maxParts: number;
  private state: State = 'delimiter';
  private consumed = 0;
  private parts = 0;
  private failed: MalformedFrameError | undefined;

  constructor(boundary: string, options: MultipartOptions = {}) {
    this.delimiter = utf8Encode(`\r\n--${boundary}`);
    this.maxHeaderBytes = options.maxHeaderBytes ?? 16 * 1024;
    this.maxParts = options.maxParts ?? 16;
    this.queue.push(CRLF.slice());
    this.consumed = -CRLF.length;
  }

  /** Body bytes taken off so far (events for them have been returned). */
  get offset(): number {
    return this.consumed;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  push(chunk: Uint8Array): MultipartEvent[] {
    if (this.failed) throw this.failed;
    const events: MultipartEvent[] = [];
    if (this.state === 'done') return events; // the epilogue is ignored
    this.queue.push(chunk);
    try {
      this.run(events);
    } catch (err) {
      if (err instanceof MalformedFrameError) this.failed = err;
      throw err;
    }
    return events;
  }

  /** End of the body: throws unless the close delimiter was read. */
  end(): void {
    if (this.failed) throw this.failed;
    if (this.state !== 'done') {
      this.failed = malformed('multipart body ended before its close delimiter');
      throw this.failed;
    }
  }

  private take(n: number): void {
    this.queue.skip(n);
    this.consumed += n;
  }

  private run(events: MultipartEvent[]): void {
    const q = this.queue;
    const dl = this.delimiter.length;
    for (;;) {
      switch (this.state) {
        case 'delimiter': {
          // Preamble: skip to the first delimiter, keeping only what could start one.
          const at = q.indexOf(this.delimiter);
          if (at < 0) {
            if (q.length >= dl) this.take(q.length - (dl - 1));
            return;
          }
          this.take(at + dl);
          this.state = 'afterDelimiter';
          break;
        }
        case 'afterDelimiter': {
          // "--" closes the body; otherwise optional padding (spaces, tabs) and CRLF open a part.
          if (q.length < 2) return;
          if (q.byteAt(0) === 0x2d && q.byteAt(1) === 0x2d) {
            this.take(2);
            this.state = 'done';
            if (this.parts > 0) events.push({ type: 'partEnd', last: true });
            return;
          }
          const at = q.indexOf(CRLF, 256);
          if (at < 0) {
            if (q.length > 256) throw malformed('garbage after a multipart delimiter');
            return;
          }
          const pad = q.peek(at)!;
          if (!pad.every((b) => b === 0x20 || b === 0x09)) throw malformed('garbage after a multipart delimiter');
          if (this.parts > 0) events.push({ type: 'partEnd', last: false });
          if (this.parts >= this.maxParts) throw malformed(`more than ${this.maxParts} multipart parts`);
          this.take(at + 2);
          this.state = 'headers';
          break;
        }
        case 'headers': {
          // An empty header block is CRLF right away.
          if (q.length >= 2 && q.byteAt(0) === 0x0d && q.byteAt(1) === 0x0a) {
            this.take(2);
            events.push({ type: 'part', headers: new Map(), offset: this.consumed });
            this.parts++;
            this.state = 'data';
            break;
          }
          const at = q.indexOf(CRLFCRLF, this.maxHeaderBytes);
          if (at < 0 || at > this.maxHeaderBytes) {
            if (q.length > this.maxHeaderBytes + CRLFCRLF.length || at > this.maxHeaderBytes) throw malformed(`multipart part headers over ${this.maxHeaderBytes} bytes`);
            return;
          }
          const headers = parseHeaderBlock(utf8Decode(q.peek(at)!));
          this.take(at + CRLFCRLF.length);
          events.push({ type: 'part', headers, offset: this.consumed });
          this.parts++;
          this.state = 'data';
          break;
        }
        case 'data': {
          const at = q.indexOf(this.delimiter);
          const n = at >= 0 ? at : q.length - (dl - 1);
          this.emitData(n, events);
          if (at < 0) return;
          this.take(dl);
          this.state = 'afterDelimiter';
          break;
        }
        case 'done':
          return;
      }
    }
  }

  /** Emits the first `n` bytes as data events, one per chunk they lie in (no copy). */
  private emitData(n: number, events: MultipartEvent[]): void {
    while (n > 0) {
      const front = this.queue.frontChunk()!;
      const piece = front.length <= n ? front : front.subarray(0, n);
      events.push({ type: 'data', data: piece });
      this.take(piece.length);
      n -= piece.length;
    }
  }
}

function parseHeaderBlock(text: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('malformed multipart part header');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  return headers;
}

/** The length of the close delimiter and final CRLF a body of `boundary` ends with. */
export function closingLength(boundary: string): number {
  return utf8Encode(`\r\n--${boundary}--\r\n`).length;
}

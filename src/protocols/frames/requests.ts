import { utf8Encode } from '../../bytes/text.js';
import { argumentNameBytes } from './argument-names.js';
import {
  DEFAULT_MAX_FRAME_SIZE,
  FLAG_COMMAND_ARGUMENT_CONTINUATION,
  FLAG_COMMAND_ARGUMENT_EOA,
  FLAG_COMMAND_DATA_CONTINUATION,
  FLAG_COMMAND_DATA_EOS,
  FLAG_COMMAND_NAME_EOS,
  FLAG_COMMAND_NAME_HAVE_ARGS,
  FLAG_COMMAND_NAME_HAVE_DATA,
  FRAME_TYPE_COMMAND_ARGUMENT,
  FRAME_TYPE_COMMAND_DATA,
  FRAME_TYPE_COMMAND_NAME,
  MAX_PAYLOAD_LENGTH,
} from './constants.js';
import { FrameEncodingError } from './errors.js';
import type { Frame } from './frame.js';

/** Size of the argument header: two little-endian u16 (name length, value length). */
export const ARGUMENT_HEADER_SIZE = 4;

/** Bytes or text (encoded as UTF-8). */
export type BytesLike = Uint8Array | string;

/**
 * Command arguments: a record, a Map, or a list of pairs. Names and values are bytes or UTF-8 text;
 * a text name may carry bytes that are not UTF-8 as U+DC80..U+DCFF (the reactor's `args` keys).
 */
export type CommandArgs = Readonly<Record<string, BytesLike>> | ReadonlyMap<BytesLike, BytesLike> | Iterable<readonly [BytesLike, BytesLike]>;

/** Options of the request builders. */
export interface RequestOptions {
  /** Largest payload of a data or argument frame. Default 32768, as Mercurial. */
  maxFrameSize?: number;
}

/** Bytes of `v` (UTF-8 for strings). */
export function toBytes(v: BytesLike): Uint8Array {
  return typeof v === 'string' ? utf8Encode(v) : v;
}

/** Compares byte strings as Python compares `bytes` (lexicographic, shorter prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** Arguments as byte pairs sorted by name (Mercurial sends `sorted(args)`). */
export function normalizeArgs(args: CommandArgs | undefined): [Uint8Array, Uint8Array][] {
  if (args === undefined) return [];
  let entries: Iterable<readonly [BytesLike, BytesLike]>;
  if (args instanceof Map) entries = args.entries();
  else if (Symbol.iterator in (args as object)) entries = args as Iterable<readonly [BytesLike, BytesLike]>;
  else entries = Object.entries(args as Record<string, BytesLike>);
  const out: [Uint8Array, Uint8Array][] = [];
  // A string name is taken as an argument key (`argumentKey`): UTF-8, with surrogateescape bytes.
  for (const [k, v] of entries) out.push([typeof k === 'string' ? argumentNameBytes(k) : k, toBytes(v)]);
  out.sort((a, b) => compareBytes(a[0], b[0]));
  for (let i = 1; i < out.length; i++) {
    if (compareBytes(out[i - 1]![0], out[i]![0]) === 0) throw new FrameEncodingError(`duplicate argument name ${JSON.stringify(new TextDecoder().decode(out[i]![0]))}`);
  }
  return out;
}

function checkMaxFrameSize(n: number): number {
  if (!Number.isInteger(n) || n < ARGUMENT_HEADER_SIZE + 1 || n > MAX_PAYLOAD_LENGTH) {
    throw new FrameEncodingError(`maxFrameSize must be an integer between ${ARGUMENT_HEADER_SIZE + 1} and ${MAX_PAYLOAD_LENGTH}, got ${n}`);
  }
  return n;
}

/**
 * The first (or only) payload of an argument frame: u16le name length, u16le value length (the
 * whole value, even when it continues in later frames), the name, then `value`.
 */
export function encodeArgumentPayload(name: Uint8Array, valueLength: number, value: Uint8Array): Uint8Array {
  if (name.length > 0xffff) throw new FrameEncodingError(`argument name of ${name.length} bytes does not fit its 16-bit length field`);
  if (valueLength > 0xffff) throw new FrameEncodingError(`argument value of ${valueLength} bytes does not fit its 16-bit length field`);
  const out = new Uint8Array(ARGUMENT_HEADER_SIZE + name.length + value.length);
  out[0] = name.length & 0xff;
  out[1] = name.length >>> 8;
  out[2] = valueLength & 0xff;
  out[3] = valueLength >>> 8;
  out.set(name, ARGUMENT_HEADER_SIZE);
  out.set(value, ARGUMENT_HEADER_SIZE + name.length);
  return out;
}

/**
 * The frames carrying one argument. When the whole payload fits in `maxFrameSize` it is a single
 * frame, byte for byte Mercurial's. Otherwise the first frame holds the header, the name and as
 * much of the value as fits, flagged `continuation`; each next frame holds raw value bytes and is
 * flagged `continuation` until the last one. `eoa` goes on the last frame of the last argument.
 */
export function argumentFrames(name: Uint8Array, value: Uint8Array, last: boolean, maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE): Frame[] {
  checkMaxFrameSize(maxFrameSize);
  const eoa = last ? FLAG_COMMAND_ARGUMENT_EOA : 0;
  if (ARGUMENT_HEADER_SIZE + name.length + value.length <= maxFrameSize) {
    return [{ type: FRAME_TYPE_COMMAND_ARGUMENT, flags: eoa, payload: encodeArgumentPayload(name, value.length, value) }];
  }
  if (ARGUMENT_HEADER_SIZE + name.length > maxFrameSize) {
    throw new FrameEncodingError(`argument name of ${name.length} bytes does not fit in a frame of ${maxFrameSize} bytes`);
  }
  const firstPart = maxFrameSize - ARGUMENT_HEADER_SIZE - name.length;
  const frames: Frame[] = [
    { type: FRAME_TYPE_COMMAND_ARGUMENT, flags: FLAG_COMMAND_ARGUMENT_CONTINUATION, payload: encodeArgumentPayload(name, value.length, value.subarray(0, firstPart)) },
  ];
  for (let o = firstPart; o < value.length; o += maxFrameSize) {
    const end = Math.min(o + maxFrameSize, value.length);
    frames.push({ type: FRAME_TYPE_COMMAND_ARGUMENT, flags: end === value.length ? eoa : FLAG_COMMAND_ARGUMENT_CONTINUATION, payload: value.subarray(o, end) });
  }
  return frames;
}

function headFrames(name: BytesLike, args: CommandArgs | undefined, haveData: boolean, maxFrameSize: number): Frame[] {
  const sorted = normalizeArgs(args);
  let flags = 0;
  if (sorted.length > 0) flags |= FLAG_COMMAND_NAME_HAVE_ARGS;
  if (haveData) flags |= FLAG_COMMAND_NAME_HAVE_DATA;
  if (flags === 0) flags = FLAG_COMMAND_NAME_EOS;
  const nameBytes = toBytes(name);
  if (nameBytes.length > MAX_PAYLOAD_LENGTH) throw new FrameEncodingError(`command name of ${nameBytes.length} bytes does not fit in a frame`);
  const frames: Frame[] = [{ type: FRAME_TYPE_COMMAND_NAME, flags, payload: nameBytes }];
  sorted.forEach(([k, v], i) => frames.push(...argumentFrames(k, v, i === sorted.length - 1, maxFrameSize)));
  return frames;
}

/**
 * The frames of a command request (Mercurial's `createcommandframes`): a command-name frame,
 * one argument frame per argument in sorted order, then the data in frames of exactly
 * `maxFrameSize` bytes flagged `continuation` and a final shorter (possibly empty) frame flagged
 * `eos`. Byte-identical to Mercurial's for every request it can build; arguments too large for one
 * frame are split with `continuation` (see `argumentFrames`).
 */
export function* commandFrames(name: BytesLike, args?: CommandArgs, data?: Uint8Array, options: RequestOptions = {}): Generator<Frame> {
  const max = checkMaxFrameSize(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
  yield* headFrames(name, args, data !== undefined, max);
  if (data === undefined) return;
  let o = 0;
  for (;;) {
    const chunk = data.subarray(o, o + max);
    o += chunk.length;
    const full = chunk.length === max;
    yield { type: FRAME_TYPE_COMMAND_DATA, flags: full ? FLAG_COMMAND_DATA_CONTINUATION : FLAG_COMMAND_DATA_EOS, payload: chunk };
    if (!full) return;
  }
}

/** A source of request data: bytes, or chunks from an iterable, async iterable or Node readable. */
export type DataSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * `commandFrames` with the data read from an (async) iterable of chunks. Chunks are regrouped into
 * frames of `maxFrameSize` bytes (the same frames `commandFrames` builds from the concatenated
 * data), holding at most one frame's worth of data at a time.
 */
export async function* commandFramesFrom(name: BytesLike, args: CommandArgs | undefined, data: DataSource | undefined, options: RequestOptions = {}): AsyncGenerator<Frame> {
  const max = checkMaxFrameSize(options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
  if (data === undefined || data instanceof Uint8Array) {
    yield* commandFrames(name, args, data, options);
    return;
  }
  yield* headFrames(name, args, true, max);
  const pending: Uint8Array[] = [];
  let pendingSize = 0;
  const take = (): Uint8Array => {
    // Exactly `max` bytes off the front of `pending` (pendingSize >= max).
    const first = pending[0]!;
    if (first.length >= max) {
      const out = first.subarray(0, max);
      if (first.length === max) pending.shift();
      else pending[0] = first.subarray(max);
      pendingSize -= max;
      return out;
    }
    const out = new Uint8Array(max);
    let o = 0;
    while (o < max) {
      const c = pending[0]!;
      const n = Math.min(c.length, max - o);
      out.set(c.subarray(0, n), o);
      o += n;
      if (n === c.length) pending.shift();
      else pending[0] = c.subarray(n);
    }
    pendingSize -= max;
    return out;
  };
  for await (const raw of data as AsyncIterable<Uint8Array>) {
    const chunk = typeof raw === 'string' ? utf8Encode(raw) : raw;
    if (chunk.length === 0) continue;
    pending.push(chunk);
    pendingSize += chunk.length;
    while (pendingSize >= max) yield { type: FRAME_TYPE_COMMAND_DATA, flags: FLAG_COMMAND_DATA_CONTINUATION, payload: take() };
  }
  const rest = new Uint8Array(pendingSize);
  let o = 0;
  for (const c of pending) {
    rest.set(c, o);
    o += c.length;
  }
  yield { type: FRAME_TYPE_COMMAND_DATA, flags: FLAG_COMMAND_DATA_EOS, payload: rest };
}

import { createReadStream } from 'node:fs';
import { FrameReader } from '../codecs/codec.js';
import { isRecoverable } from '../codecs/errors.js';
import { parseArgs, parseIntArg, UsageError } from './args.js';
import { DECODERS } from './decoders.js';

export const help = () => `Usage: wirekit decode --codec NAME [options] [FILE]

Prints the frames of a captured byte stream (FILE, or stdin) one per line, numbered, with the
byte offset where each starts (bytes a codec skips silently before a frame, such as junk before a
%base64$ message, count as part of it).

Options:
  -c, --codec NAME     one of:
${[...DECODERS].map(([n, e]) => `                         ${n.padEnd(16)} ${e.description}`).join('\n')}
      --max-frame N    frame size limit in bytes (default: the codec's)
      --json           one JSON object per frame: {"n", "offset", "frame"}; frame types are
                       named as in the text output, text is {"text"}, other bytes {"bytes": base64}
  -h, --help           show this help

A recoverable error (an over-long line, a bad JSON line, junk) is reported and decoding goes on
with the next frame; a fatal one (the framing is lost: a bad length header, input ending inside
a frame) is reported once and ends the run.

Exit status: 0 when the whole input decoded, 1 on a decode error (reported with its offset),
2 on bad arguments.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, { codec: { type: 'string', short: 'c' }, 'max-frame': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (p.flags.help) return (console.log(help()), 0);
  const name = p.flags.codec as string | undefined;
  if (!name) throw new UsageError('decode needs --codec NAME');
  const entry = DECODERS.get(name);
  if (!entry) throw new UsageError(`unknown codec ${name} (known: ${[...DECODERS.keys()].join(', ')})`);
  if (p.positionals.length > 1) throw new UsageError('decode takes at most one FILE');
  const max = p.flags['max-frame'] ? parseIntArg(p.flags['max-frame'] as string, '--max-frame', 0) : undefined;
  const reader = new FrameReader(entry.create(max));
  const json = p.flags.json === true;
  const input = p.positionals[0] && p.positionals[0] !== '-' ? createReadStream(p.positionals[0]) : process.stdin;
  let n = 0;
  let total = 0;
  let errors = 0;
  /** Offset of the first byte not yet taken by a frame or a reported error: where the next one starts. */
  let start = 0;
  const out: string[] = [];
  const emit = (f: unknown) => {
    n++;
    out.push(json ? JSON.stringify({ n, offset: start, frame: entry.json ? entry.json(f) : toJson(f) }) : `#${n} ${entry.format(f)}`);
    start = total - reader.bufferedBytes;
  };
  const flush = async () => {
    if (out.length === 0) return;
    const text = out.join('\n') + '\n';
    out.length = 0;
    if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
  };
  const fail = (err: unknown) => {
    errors++;
    process.stderr.write(`wirekit decode: after frame #${n}, at byte ${start}: ${err instanceof Error ? err.message : String(err)}\n`);
    start = total - reader.bufferedBytes;
  };
  for await (const chunk of input as AsyncIterable<Uint8Array>) {
    reader.feed(chunk);
    total += chunk.length;
    for (;;) {
      let f: unknown;
      const before = reader.bufferedBytes;
      try {
        f = reader.next();
      } catch (err) {
        fail(err);
        // A fatal error (the reader keeps failing with it) ends the run; a recoverable one was
        // consumed with its frame, and decoding goes on. One that consumed nothing would be
        // reported again forever: it ends the run too.
        if (reader.failure !== undefined || !isRecoverable(err) || reader.bufferedBytes === before) {
          await flush();
          return 1;
        }
        continue;
      }
      if (f === undefined) break;
      emit(f);
    }
    await flush();
  }
  try {
    for (const f of reader.end()) emit(f);
    // A frame returned with an error still to report: end() throws it now.
    for (const f of reader.end()) emit(f);
  } catch (err) {
    fail(err);
  }
  await flush();
  return errors ? 1 : 0;
}

function toJson(f: unknown): unknown {
  if (f instanceof Uint8Array) return { bytes: Buffer.from(f).toString('base64') };
  if (typeof f === 'object' && f !== null && 'payload' in f) {
    const o = f as { payload: Uint8Array; fields?: Record<string, unknown>; type?: number };
    return { ...(o.fields ? { fields: Object.fromEntries(Object.entries(o.fields).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v])) } : { type: o.type }), payload: Buffer.from(o.payload).toString('base64') };
  }
  return f;
}

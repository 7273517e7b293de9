import { createReadStream } from 'node:fs';
import { FrameReader } from '../codecs/codec.js';
import { parseArgs, parseIntArg, UsageError } from './args.js';
import { DECODERS } from './decoders.js';

export const help = () => `Usage: wirekit decode --codec NAME [options] [FILE]

Prints the frames of a captured byte stream (FILE, or stdin) one per line, numbered, with the
byte offset where each starts.

Options:
  -c, --codec NAME     one of:
${[...DECODERS].map(([n, e]) => `                         ${n.padEnd(16)} ${e.description}`).join('\n')}
      --max-frame N    frame size limit in bytes (default: the codec's)
      --json           one JSON object per frame: {"n", "offset", "frame"}
  -h, --help           show this help

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
  const out: string[] = [];
  const emit = (f: unknown) => {
    n++;
    const offset = total - reader.bufferedBytes;
    out.push(json ? JSON.stringify({ n, offset, frame: toJson(f) }) : `#${n} ${entry.format(f)}`);
  };
  const flush = async () => {
    if (out.length === 0) return;
    const text = out.join('\n') + '\n';
    out.length = 0;
    if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
  };
  const fail = (err: unknown) => {
    errors++;
    process.stderr.write(`wirekit decode: after frame #${n}, near byte ${total - reader.bufferedBytes}: ${err instanceof Error ? err.message : String(err)}\n`);
  };
  for await (const chunk of input as AsyncIterable<Uint8Array>) {
    reader.feed(chunk);
    total += chunk.length;
    for (;;) {
      let f: unknown;
      try {
        f = reader.next();
      } catch (err) {
        fail(err);
        if (err instanceof Error && 'code' in err && (err as { code: string }).code === 'WK_FRAME_TOO_LARGE' && name !== 'lines' && name !== 'ndjson') {
          await flush();
          return 1; // length-prefixed framing cannot resynchronise
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

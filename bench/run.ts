/**
 * `npm run bench [-- --quick] [-- --only NAME]`: runs every `*.bench.js` module beside this file
 * in one process and prints each result with its ratio to the peer library it is compared with.
 */
import { readdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Reporter, type BenchModule } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;

const reporter = new Reporter();
const files = readdirSync(here).filter((f) => f.endsWith('.bench.js')).sort();
console.log(`wirekit benchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`);
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
  if (only && !mod.name.includes(only)) continue;
  console.log(`\n# ${mod.name}`);
  await mod.run(reporter, { quick });
}
console.log('\n' + reporter.table());

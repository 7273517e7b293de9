import { parseArgs } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';

export const help = `Usage: wirekit info [options]

Prints the daemon's version, pid, host, listeners and session count as JSON.

${CLIENT_HELP}`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, CLIENT_OPTIONS);
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  console.log(JSON.stringify(await clientFrom(p).info(), null, 2));
  return 0;
}

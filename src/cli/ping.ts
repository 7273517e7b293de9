import { formatAddress } from '../agent/address.js';
import { parseArgs } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';

export const help = `Usage: wirekit ping [options]

Checks that the daemon answers; prints the round-trip time.

${CLIENT_HELP}

Exit status: 0 the daemon answered, 3 unreachable or authentication failed, 1 other errors.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, CLIENT_OPTIONS);
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  const c = clientFrom(p);
  const ms = await c.ping();
  console.log(`pong from ${formatAddress(c.address)} in ${ms.toFixed(2)} ms`);
  return 0;
}

import { connectHub } from '../hub/hub-client.js';
import { parseArgs, UsageError } from './args.js';
import { traceFor } from './common.js';
import { hubTls, parseHubUrl } from './hub-address.js';
import { pickHub } from './hub-config.js';

export const help = `Usage: wirekit ls [options]

Lists the agents of a fleet hub that you may open. Agents that cannot authenticate (Overlord
ghosts, see docs/overlord.md) are shown with "(unauthenticated)" before their properties.

Options:
  -H, --hub NAME        the hub (a name or address you logged in to; default: the default hub)
  -f, --filter K=REGEX  only agents whose property K (or id, hostname, address, version)
                        matches REGEX (repeatable: all must match)
      --json            one JSON array with every field
  -v, --verbose         say each step on stderr (the hub's address, the connection)
  -h, --help            show this help`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    hub: { type: 'string', short: 'H' },
    filter: { type: 'string', short: 'f', multiple: true },
    json: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (p.flags.help) return (console.log(help), 0);
  const trace = traceFor(p);
  if (p.positionals.length) throw new UsageError(`unexpected argument ${p.positionals[0]}`);
  const { login } = pickHub(p.flags.hub as string | undefined);
  const url = parseHubUrl(login.url);
  trace?.(`connecting to hub ${url.tls ? 'tls' : 'tcp'}://${url.address.host}:${url.address.port}`);
  const session = await connectHub(url.address, { token: login.token }, { tls: hubTls(url, login.ca) });
  trace?.('connected and authenticated');
  const agents = await session.agents((p.flags.filter as string[] | undefined) ?? []);
  session.close();
  if (p.flags.json) {
    console.log(JSON.stringify(agents, null, 2));
    return 0;
  }
  const rows = agents.map((a) =>
    [a.id, a.hostname, a.address, a.since.replace(/\.\d+Z$/, 'Z'), (a.authenticated ? '' : '(unauthenticated) ') + Object.entries(a.properties).filter(([k]) => k !== 'allowlist').map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')].map(printable),
  );
  const head = ['ID', 'HOSTNAME', 'ADDRESS', 'SINCE', 'PROPERTIES'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  return 0;
}

/** Text from agents shown safely on a terminal: control characters (escape sequences) as \xNN. */
export function printable(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
  }
  return out;
}

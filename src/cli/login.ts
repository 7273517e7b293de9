import { connectHub } from '../hub/hub-client.js';
import { parseArgs, UsageError } from './args.js';
import { traceFor } from './common.js';
import { hubTls, parseHubUrl } from './hub-address.js';
import { readHubs, writeHubs } from './hub-config.js';
import { readPasswordFromTty } from './password-prompt.js';
import os from 'node:os';

export const help = `Usage: wirekit login HUB [options]

Logs in to a fleet hub and stores the token (mode 0600) in ~/.config/wirekit/hubs.json
($XDG_CONFIG_HOME/wirekit when set). The first hub logged in to becomes the default one, used
when a command names an agent without --hub.

  HUB                  the hub's user port: tcp://HOST:PORT or tls://HOST:PORT

Options:
  -u, --user NAME      user name (default: $USER)
      --name NAME      what to call this hub (default: its address)
      --default        make it the default hub
      --ca FILE        TLS: CA certificate (PEM) to verify the hub with
  -v, --verbose        say each step on stderr (the hub's address, the connection)
  -h, --help           show this help

The password is read from the terminal without echo, or from $WIREKIT_PASSWORD, or from the
first line of stdin when it is not a terminal.`;

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, {
    user: { type: 'string', short: 'u' },
    name: { type: 'string' },
    default: { type: 'boolean' },
    ca: { type: 'string' },
    verbose: { type: 'boolean', short: 'v', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (p.flags.help) return (console.log(help), 0);
  const trace = traceFor(p);
  if (p.positionals.length !== 1) throw new UsageError('wirekit login HUB (e.g. wirekit login tcp://hub.example:7702)');
  const urlText = p.positionals[0]!;
  const url = parseHubUrl(urlText);
  const username = (p.flags.user as string | undefined) ?? process.env.USER ?? os.userInfo().username;
  const password = process.env.WIREKIT_PASSWORD ?? (await readPasswordFromTty(`password for ${username} at ${urlText}: `));
  const ca = p.flags.ca as string | undefined;
  trace?.(`connecting to hub ${url.tls ? 'tls' : 'tcp'}://${url.address.host}:${url.address.port}`);
  const session = await connectHub(url.address, { username, password }, { tls: hubTls(url, ca) });
  trace?.('connected and authenticated');
  const { token, expire } = await session.token();
  const who = await session.whoami();
  session.close();
  const hubs = readHubs();
  const name = (p.flags.name as string | undefined) ?? urlText;
  hubs.hubs[name] = { url: urlText, username, token, expire, ...(ca ? { ca } : {}) };
  if (p.flags.default || hubs.default === undefined) hubs.default = name;
  const file = writeHubs(hubs);
  console.log(`logged in to ${who.hub} as ${username}${who.isAdmin ? ' (admin)' : ''}; token stored in ${file}${hubs.default === name ? ' (default hub)' : ''}`);
  return 0;
}

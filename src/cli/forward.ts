import net from 'node:net';
import type { AgentClient } from '../agent/client.js';
import { AddressInUseError } from '../channels/errors.js';
import { WirekitError } from '../errors.js';
import { parseArgs, parseIntArg, UsageError } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';

export const help = `Usage: wirekit forward [options] SPEC [SPEC...]

Each SPEC, like ssh -L or kubectl port-forward:
  [BIND:]LOCALPORT:HOST:PORT   listen on BIND:LOCALPORT, connect to HOST:PORT from the daemon
  LOCALPORT:PORT               kubectl's shorthand: to localhost:PORT on the daemon's machine
  PORT                         the same port on both sides (localhost:PORT on the daemon's side)
BIND defaults to 127.0.0.1; LOCALPORT 0 (or an empty one, as in :PORT) picks a free port.
Repeat SPEC for several forwards at once. Each connection is forwarded through the daemon;
bytes flow both ways and a half-close is passed on. Prints "listening on ADDR:PORT" on stdout
for each SPEC (in the order given), then runs until interrupted. With -v, prints
"Handling connection for LOCALPORT" on stderr for each connection, as kubectl does.

${CLIENT_HELP}`;

export interface ForwardSpec {
  bind: string;
  localPort: number;
  host: string;
  port: number;
}

/** Parses one forward spec (see the help). */
export function parseSpec(spec: string): ForwardSpec {
  const unb = (s: string) => s.replace(/^\[|\]$/g, '');
  const full = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+):(\[[^\]]+\]|[^:]+):(\d+)$/.exec(spec);
  if (full) return { bind: full[1] ? unb(full[1]) : '127.0.0.1', localPort: parseIntArg(full[2]!, 'LOCALPORT', 0, 65535), host: unb(full[3]!), port: parseIntArg(full[4]!, 'PORT', 1, 65535) };
  const short = /^(\d*):(\d+)$/.exec(spec) ?? /^()(\d+)$/.exec(spec);
  if (short) {
    const port = parseIntArg(short[2]!, 'PORT', 1, 65535);
    const local = /:/.test(spec) ? (short[1] === '' ? 0 : parseIntArg(short[1]!, 'LOCALPORT', 0, 65535)) : port;
    return { bind: '127.0.0.1', localPort: local, host: 'localhost', port };
  }
  throw new UsageError(`invalid forward spec ${JSON.stringify(spec)} (expected [BIND:]LOCALPORT:HOST:PORT, LOCALPORT:PORT or PORT)`);
}

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, CLIENT_OPTIONS);
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length === 0) throw new UsageError('forward needs a LOCALPORT:HOST:PORT (or LOCALPORT:PORT); repeat it for several');
  const specs = p.positionals.map(parseSpec);
  const client = clientFrom(p);
  const verbose = p.flags.verbose !== undefined;
  await client.ping(); // fail early when the daemon is unreachable
  const servers: net.Server[] = [];
  try {
    for (const spec of specs) {
      const server = await listen(spec, client, verbose);
      servers.push(server);
      const a = server.address() as net.AddressInfo;
      console.log(`listening on ${a.address}:${a.port}`);
      process.stderr.write(`forwarding ${a.address}:${a.port} -> ${spec.host}:${spec.port} through the daemon\n`);
    }
  } catch (err) {
    for (const s of servers) s.close();
    throw err;
  }
  await new Promise<void>((resolve) => {
    const stop = () => {
      let open = servers.length;
      for (const s of servers) s.close(() => --open === 0 && resolve());
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

/** Listens for one spec; each connection accepted becomes a forward session. */
async function listen(spec: ForwardSpec, client: AgentClient, verbose: boolean): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (local) => {
    if (verbose) process.stderr.write(`Handling connection for ${(server.address() as net.AddressInfo).port}\n`);
    client.forward(spec.host, spec.port).then(
      (remote) => {
        local.pipe(remote);
        remote.pipe(local);
        const fail = () => {
          local.destroy();
          remote.destroy();
        };
        local.on('error', fail);
        remote.on('error', (err) => {
          process.stderr.write(`wirekit forward: ${err.message}\n`);
          fail();
        });
        local.on('close', () => remote.destroy());
      },
      (err: Error) => {
        process.stderr.write(`wirekit forward: ${spec.host}:${spec.port}: ${err.message}${err instanceof WirekitError ? ` [${err.code}]` : ''}\n`);
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${spec.bind.includes(':') ? `[${spec.bind}]` : spec.bind}:${spec.localPort}`;
      reject(err.code === 'EADDRINUSE' ? new AddressInUseError(where, 'something already listens there') : err);
    });
    server.listen(spec.localPort, spec.bind, () => resolve());
  });
  return server;
}

import net from 'node:net';
import { parseArgs, parseIntArg, UsageError } from './args.js';
import { CLIENT_HELP, CLIENT_OPTIONS, clientFrom, takeAgent } from './common.js';

export const help = `Usage: wirekit forward [options] [BIND:]LOCALPORT:HOST:PORT

Listens on BIND:LOCALPORT (default 127.0.0.1; LOCALPORT 0 picks a free port) and forwards each
connection through the daemon, which connects to HOST:PORT from its side. Bytes flow both ways;
a half-close is passed on. Prints "listening on ADDR:PORT" on stdout, then runs until interrupted.

${CLIENT_HELP}`;

export function parseSpec(spec: string): { bind: string; localPort: number; host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+):(\[[^\]]+\]|[^:]+):(\d+)$/.exec(spec);
  if (!m) throw new UsageError(`invalid forward spec ${JSON.stringify(spec)} (expected [BIND:]LOCALPORT:HOST:PORT)`);
  const unb = (s: string) => s.replace(/^\[|\]$/g, '');
  return { bind: m[1] ? unb(m[1]) : '127.0.0.1', localPort: parseIntArg(m[2]!, 'LOCALPORT', 0, 65535), host: unb(m[3]!), port: parseIntArg(m[4]!, 'PORT', 1, 65535) };
}

export async function run(argv: string[]): Promise<number> {
  const p = parseArgs(argv, CLIENT_OPTIONS);
  if (p.flags.help) return (console.log(help), 0);
  takeAgent(p);
  if (p.positionals.length !== 1) throw new UsageError('forward needs one LOCALPORT:HOST:PORT');
  const spec = parseSpec(p.positionals[0]!);
  const client = clientFrom(p);
  await client.ping(); // fail early when the daemon is unreachable
  const server = net.createServer({ allowHalfOpen: true }, (local) => {
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
        process.stderr.write(`wirekit forward: ${err.message}\n`);
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(spec.localPort, spec.bind, () => resolve());
  });
  const a = server.address() as net.AddressInfo;
  console.log(`listening on ${a.address}:${a.port}`);
  process.stderr.write(`forwarding ${a.address}:${a.port} -> ${spec.host}:${spec.port} through the daemon\n`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}

#!/usr/bin/env node
/**
 * `wirekit COMMAND [options]`: the agent daemon and its client commands.
 */
import { exitCodeFor, reportError, EXIT } from './common.js';
import { COMMANDS, TOPICS } from './commands.js';
import { nearest } from './suggest.js';
import { WirekitError } from '../errors.js';
import { defaultSocketPath } from '../agent/address.js';

export const usage = `Usage: wirekit COMMAND [options]

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(9)} ${c.summary}`)
  .join('\n')}

Run \`wirekit help COMMAND\` (or \`wirekit COMMAND --help\`) for the options of a command;
\`wirekit help config\` for named daemons (-a NAME).

Through a fleet hub, name the agent: wirekit shell @dev1, wirekit exec -A dev1 -- uname -a,
wirekit cp ./f dev1:/tmp/, wirekit forward @dev1 8080:localhost:80.

Environment: WIREKIT_ADDRESS (daemon address), WIREKIT_TOKEN (token for TCP/TLS),
WIREKIT_HUB (the hub to use when none is named).
Exit status: 0 success, 1 failure, 2 bad arguments, 3 daemon unreachable or authentication
failed; exec and shell return the program's exit code (255 when the session itself failed).`;

async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    (name === undefined ? process.stderr : process.stdout).write(usage + '\n');
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    console.log('wirekit 0.1.0');
    return EXIT.OK;
  }
  if (name === 'help') {
    // `wirekit help CMD` is `wirekit CMD --help`.
    const topic = rest[0]!;
    if (TOPICS[topic]) return (console.log(await TOPICS[topic].text()), EXIT.OK);
    if (!COMMANDS[topic]) return unknown(topic, [...Object.keys(COMMANDS), ...Object.keys(TOPICS)], 'help topic');
    [name, rest] = [topic, ['--help']];
  }
  const cmd = COMMANDS[name];
  if (!cmd) return unknown(name, Object.keys(COMMANDS), 'command');
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (err) {
    reportError(name, err);
    const hint = hintFor(err);
    if (hint) process.stderr.write(`hint: ${hint}\n`);
    const code = exitCodeFor(err);
    return (name === 'exec' || name === 'shell') && code === EXIT.FAILED ? EXIT.SESSION_FAILED : code;
  }
}

function unknown(name: string, known: string[], what: string): number {
  const near = nearest(name, known);
  process.stderr.write(`wirekit: unknown ${what} ${JSON.stringify(name)}${near ? `; did you mean \`wirekit ${what === 'command' ? '' : 'help '}${near}\`?` : ''}\n`);
  if (!near) process.stderr.write(`\n${usage}\n`);
  return EXIT.USAGE;
}

/** What to do about an error, when there is something obvious: nobody listens at the address. */
function hintFor(err: unknown): string | undefined {
  if (!(err instanceof WirekitError) || err.code !== 'WK_CONNECT') return undefined;
  const cause = (err as { cause?: { code?: string } }).cause;
  if (cause?.code !== 'ENOENT' && cause?.code !== 'ECONNREFUSED') return undefined;
  const address = ((err as { address?: string }).address ?? '').replace(/^unix:/, '');
  if (address.startsWith('/')) {
    const listen = address === defaultSocketPath() ? '' : ` --listen ${address}`;
    return `no daemon is listening on ${address}; start it with \`wirekit serve${listen}\` (in another terminal, or with & at the end)`;
  }
  return `no daemon is listening at ${address}; start one there with \`wirekit serve --listen tcp://${address}\` (or tls://)`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Let stdout/stderr flush, then leave even if a socket or stdin is still referenced.
    setImmediate(() => process.exit(code));
  },
  (err) => {
    process.stderr.write(`wirekit: ${String(err)}\n`);
    process.exit(1);
  },
);

#!/usr/bin/env node
/**
 * `wirekit COMMAND [options]`: the agent daemon and its client commands.
 */
import { exitCodeFor, reportError, EXIT } from './common.js';

interface Command {
  summary: string;
  load(): Promise<{ run(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  serve: { summary: 'run the agent daemon (default: Unix socket, mode 0600)', load: () => import('./serve.js') },
  ping: { summary: 'check that the daemon answers', load: () => import('./ping.js') },
  info: { summary: "print the daemon's version, pid, listeners and sessions", load: () => import('./info.js') },
  exec: { summary: 'run a program on the daemon side: stdin/stdout/stderr, exit code', load: () => import('./exec.js') },
  shell: { summary: 'interactive shell under a pseudo-terminal', load: () => import('./shell.js') },
  cp: { summary: 'copy a file to or from the daemon side (remote paths start with ":")', load: () => import('./cp.js') },
  forward: { summary: 'forward a local port to HOST:PORT through the daemon', load: () => import('./forward.js') },
  decode: { summary: 'print the frames of a captured byte stream', load: () => import('./decode.js') },
  hub: { summary: 'run a fleet hub that agents dial out to (and manage its users)', load: () => import('./hub.js') },
  login: { summary: 'log in to a fleet hub (stores a token)', load: () => import('./login.js') },
  ls: { summary: "list a hub's agents (filter by property)", load: () => import('./ls.js') },
};

export const usage = `Usage: wirekit COMMAND [options]

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(9)} ${c.summary}`)
  .join('\n')}

Run \`wirekit COMMAND --help\` for the options of a command.

Through a fleet hub, name the agent: wirekit shell @dev1, wirekit exec -A dev1 -- uname -a,
wirekit cp ./f dev1:/tmp/, wirekit forward @dev1 8080:localhost:80.

Environment: WIREKIT_ADDRESS (daemon address), WIREKIT_TOKEN (token for TCP/TLS),
WIREKIT_HUB (the hub to use when none is named).
Exit status: 0 success, 1 failure, 2 bad arguments, 3 daemon unreachable or authentication
failed; exec and shell return the program's exit code (255 when the session itself failed).`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage);
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    console.log('wirekit 0.1.0');
    return EXIT.OK;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`wirekit: unknown command ${JSON.stringify(name)}\n\n${usage}\n`);
    return EXIT.USAGE;
  }
  try {
    const mod = await cmd.load();
    return await mod.run(rest);
  } catch (err) {
    reportError(name, err);
    const code = exitCodeFor(err);
    return (name === 'exec' || name === 'shell') && code === EXIT.FAILED ? EXIT.SESSION_FAILED : code;
  }
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

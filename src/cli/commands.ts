/** The commands `wirekit` dispatches to, each loaded when used. */

export interface CommandModule {
  run(argv: string[]): Promise<number>;
}

export interface Command {
  summary: string;
  load(): Promise<CommandModule>;
}

export const COMMANDS: Record<string, Command> = {
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
  completion: { summary: 'print a shell completion script (bash or zsh)', load: () => import('./completion.js') },
};

/** Help topics that are not commands (`wirekit help TOPIC`). */
export const TOPICS: Record<string, { summary: string; text: () => Promise<string> }> = {
  config: { summary: 'named daemons: ~/.config/wirekit/config', text: async () => (await import('./daemon-config.js')).configHelp() },
};

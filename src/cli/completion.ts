/** `wirekit completion bash|zsh`: a completion script built from the commands' own option specs. */
import { captureSpec, UsageError, type Spec } from './args.js';
import { COMMANDS, TOPICS } from './commands.js';

export const help = `Usage: wirekit completion bash|zsh

Prints a completion script for the shell: the commands, and for each command the options it
accepts. Install it with

  bash:  wirekit completion bash > ~/.local/share/bash-completion/completions/wirekit
         (or add  source <(wirekit completion bash)  to ~/.bashrc)
  zsh:   wirekit completion zsh > "\${fpath[1]}/_wirekit"
         (or add  source <(wirekit completion zsh)  to ~/.zshrc, after compinit)`;

interface CommandOptions {
  name: string;
  summary: string;
  spec: Spec;
}

/** Every command with the spec its `run` parses with. */
export async function commandOptions(): Promise<CommandOptions[]> {
  const out: CommandOptions[] = [];
  for (const [name, c] of Object.entries(COMMANDS)) {
    const spec = name === 'completion' ? { help: { type: 'boolean' as const, short: 'h' } } : ((await captureSpec((await c.load()).run)) ?? {});
    out.push({ name, summary: c.summary, spec });
  }
  return out;
}

const words = (spec: Spec) => Object.entries(spec).flatMap(([n, s]) => [`--${n}`, ...(s.short ? [`-${s.short}`] : [])]);

export function bashScript(cmds: CommandOptions[]): string {
  const valued = [...new Set(cmds.flatMap((c) => Object.entries(c.spec).filter(([, s]) => s.type === 'string').flatMap(([n, s]) => [`--${n}`, ...(s.short ? [`-${s.short}`] : [])])))];
  return `# bash completion for wirekit (wirekit completion bash)
# The named daemons of ~/.config/wirekit/config (wirekit help config), for -a.
_wirekit_daemons() {
  awk '$1 == "daemon" { print $2 }' "\${XDG_CONFIG_HOME:-$HOME/.config}/wirekit/config" 2>/dev/null
}
_wirekit() {
  local cur prev cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${cmds.map((c) => c.name).join(' ')} help" -- "$cur") )
    return
  fi
  cmd="\${COMP_WORDS[1]}"
  case "$cmd" in
${cmds.map((c) => `    ${c.name}) opts="${words(c.spec).join(' ')}" ;;`).join('\n')}
    help) COMPREPLY=( $(compgen -W "${[...cmds.map((c) => c.name), ...Object.keys(TOPICS)].join(' ')}" -- "$cur") ); return ;;
    *) opts="" ;;
  esac
  if [ "$cmd" = completion ] && [[ "$cur" != -* ]]; then
    COMPREPLY=( $(compgen -W "bash zsh" -- "$cur") )
    return
  fi
  case "$prev" in
    -a|--address) COMPREPLY=( $(compgen -W "$(_wirekit_daemons)" -- "$cur") $(compgen -f -- "$cur") ); return ;;
    ${valued.join('|')}) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
complete -o default -F _wirekit wirekit
`;
}

const zq = (s: string) => s.replace(/'/g, `'\\''`).replace(/:/g, '\\:').replace(/[[\]]/g, '\\$&');

export function zshScript(cmds: CommandOptions[]): string {
  const args = (spec: Spec) =>
    Object.entries(spec).flatMap(([n, s]) => {
      const rep = s.multiple ? '*' : '';
      const value = s.type !== 'string' ? '' : n === 'address' ? `:${n}:_wirekit_addresses` : `:${n}:_files`;
      return [`'${rep}--${n}${value}'`, ...(s.short ? [`'${rep}-${s.short}${value}'`] : [])];
    });
  return `#compdef wirekit
# zsh completion for wirekit (wirekit completion zsh)
# -a: the named daemons of ~/.config/wirekit/config (wirekit help config), or a socket file.
_wirekit_addresses() {
  local -a names
  names=(\${(f)"$(awk '$1 == "daemon" { print $2 }' "\${XDG_CONFIG_HOME:-$HOME/.config}/wirekit/config" 2>/dev/null)"})
  _alternative 'daemons:named daemon:compadd -a names' 'files:socket file:_files'
}
_wirekit() {
  local -a commands
  commands=(
${cmds.map((c) => `    '${c.name}:${zq(c.summary)}'`).join('\n')}
    'help:show the help of a command'
  )
  if (( CURRENT == 2 )); then
    _describe 'command' commands
    return
  fi
  # From here on the subcommand is the command word: _arguments counts positionals after it.
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${cmds.map((c) => `    ${c.name}) _arguments ${[...args(c.spec), c.name === 'completion' ? `'1:shell:(bash zsh)'` : `'*:file:_files'`].join(' ')} ;;`).join('\n')}
    help) _values 'command' ${[...cmds.map((c) => c.name), ...Object.keys(TOPICS)].join(' ')} ;;
  esac
}
if [ "$funcstack[1]" = "_wirekit" ]; then
  _wirekit "$@"
else
  compdef _wirekit wirekit
fi
`;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) return (console.log(help), 0);
  const shell = argv[0];
  if (argv.length !== 1 || (shell !== 'bash' && shell !== 'zsh')) throw new UsageError('wirekit completion bash|zsh');
  const cmds = await commandOptions();
  process.stdout.write(shell === 'bash' ? bashScript(cmds) : zshScript(cmds));
  return 0;
}

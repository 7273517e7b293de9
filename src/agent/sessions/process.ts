/**
 * Programs run by sessions (exec, terminal): signals by name, ending a session's whole process
 * tree (its Unix session), the supervisor that does so when the daemon dies, spawn errors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { utf8Decode } from '../../bytes/text.js';
import { WirekitError } from '../../errors.js';
import { badOptions } from './options.js';

/** The signal named by a SIGNAL frame's payload. */
export function signalName(payload: Uint8Array): NodeJS.Signals {
  const name = utf8Decode(payload);
  if (!Object.hasOwn(os.constants.signals, name)) throw badOptions(`unknown signal ${JSON.stringify(name)}`);
  return name as NodeJS.Signals;
}

/**
 * Sends `sig` to the process group `pgid` (a session's program was started as the leader of its
 * own session and group): the foreground of what it started, as Ctrl-C in a terminal. It still
 * reaches what the program left behind after it exited itself.
 */
export function signalGroup(pgid: number | undefined, sig: NodeJS.Signals): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, sig);
  } catch {
    // nothing left in the group
  }
}

/** Sends `sig` to the child's process group, or to the child alone (kept for the callers that want the old name). */
export function killTree(child: ChildProcess, sig: NodeJS.Signals): void {
  signalGroup(child.pid, sig);
}

/**
 * Ends (`sig`, usually SIGHUP or SIGKILL) every process of the Unix session `sid`: the session a
 * program of an exec or terminal session leads (both are started with `setsid`), so its process
 * group, the job groups of a shell with job control, and whatever they left behind. On Linux the
 * members are found in /proc (session or process group equal to `sid`); elsewhere only the
 * process group is signalled. Processes that started a session of their own (`setsid`, daemons)
 * are not members and are not reached. Returns how many processes were signalled.
 *
 * `leaderReaped`: the session's leader (the program) has exited and been reaped. Its pid is then
 * free, and can be given to someone else's process once no member of the session is left; such
 * a process, if it leads a session or group of its own, has the same id. While any member is
 * left the kernel does not reuse the id, so a live process whose pid is `sid` after the leader was
 * reaped means the session is over and the id belongs to a stranger: nothing is signalled.
 */
export function signalSession(sid: number | undefined, sig: NodeJS.Signals, leaderReaped = false): number {
  if (sid === undefined || sid <= 1) return 0;
  if (leaderReaped && existsSync(`/proc/${sid}`)) return 0;
  const members = sessionMembers(sid);
  if (members === undefined) {
    try {
      process.kill(-sid, sig);
      return 1;
    } catch {
      return 0;
    }
  }
  let n = 0;
  for (const pid of members) {
    try {
      process.kill(pid, sig);
      n++;
    } catch {
      // gone
    }
  }
  return n;
}

/**
 * Live processes (not zombies) whose session or process group is `sid`, from Linux's /proc;
 * undefined where there is no /proc.
 */
export function sessionMembers(sid: number): number[] | undefined {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp session ...; comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] !== 'Z' && (Number(f[2]) === sid || Number(f[3]) === sid)) out.push(Number(name)); // a zombie is dead already
  }
  return out;
}

/** SIGKILL to every process of session `sid`, repeated while some are found (they may be forking); `leaderReaped` as for `signalSession`. */
export function killSession(sid: number | undefined, leaderReaped = false): void {
  for (let i = 0; i < 10 && signalSession(sid, 'SIGKILL', leaderReaped) > 0; i++);
}

/** Whether Node has reaped `child` (its exit is known, so its pid may already be someone else's). */
export function reaped(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * The supervisor's script (POSIX sh): it ignores the signals a terminal or a stopping daemon
 * sends, reads the session id (one line), then waits for the end of its stdin, a pipe from the
 * daemon that ends when the daemon dies in any way (SIGKILL included). It then kills every
 * process of that session, as `killSession` does, and exits. A line `done` first (the daemon
 * ended the session itself) makes it exit without sweeping: the session is over, and its id may
 * soon be someone else's.
 */
const SUPERVISOR_SCRIPT = `trap '' HUP INT QUIT TERM PIPE TSTP TTIN TTOU
IFS= read -r sid || exit 0
case $sid in ''|*[!0-9]*) exit 0 ;; esac
[ "$sid" -gt 1 ] || exit 0
while IFS= read -r line; do [ "$line" = done ] && exit 0; done
sweep() {
  found=
  kill -s KILL -- "-$sid" 2>/dev/null && found=1
  for f in /proc/[0-9]*/stat; do
    { IFS= read -r line <"$f"; } 2>/dev/null || continue
    set -- \${line##*) }
    if [ "$1" != Z ] && { [ "$3" = "$sid" ] || [ "$4" = "$sid" ]; }; then
      p=\${f#/proc/}
      kill -s KILL "\${p%/stat}" 2>/dev/null && found=1
    fi
  done
  [ -n "$found" ]
}
i=0
while sweep && [ $i -lt 10 ]; do i=$((i + 1)); done
`;

/**
 * A session's supervisor: a small `sh` process outside the daemon that kills the session's whole
 * process tree when the daemon releases it or dies, however it dies (its pipe from the daemon
 * closes). Start it before the program (`startSupervisor`), hand it the program's pid at once
 * (`watch`), and `release()` it once the session ended and the daemon killed its tree.
 */
export interface Supervisor {
  /** Names the session to kill (the program's pid, which leads its own Unix session). */
  watch(sid: number | undefined): void;
  /**
   * The session is over and the daemon ended its tree itself (`killSession`): the supervisor exits
   * without sweeping.
   */
  release(): void;
}

/** Starts a supervisor (without /bin/sh, one that does nothing: the daemon still ends sessions itself). */
export function startSupervisor(log?: { debug(msg: string): void }): Supervisor {
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', SUPERVISOR_SCRIPT], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  } catch (err) {
    log?.debug(`supervisor: ${(err as Error).message}`);
    return { watch() {}, release() {} };
  }
  child.on('error', (err) => log?.debug(`supervisor: ${err.message}`));
  child.stdin!.on('error', () => {});
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  let watched = false;
  return {
    watch(sid) {
      if (watched || sid === undefined) return;
      watched = true;
      child.stdin!.write(`${sid}\n`);
    },
    release() {
      child.stdin!.end('done\n');
    },
  };
}

/**
 * The error for a program that could not be started: `WK_NO_PROGRAM` when it does not exist
 * (a shell's exit status 127), `WK_NOT_EXECUTABLE` when it may not be run (126), else `WK_SPAWN`.
 */
export function spawnError(program: string, err: NodeJS.ErrnoException): WirekitError {
  const code = err.code === 'ENOENT' ? 'WK_NO_PROGRAM' : err.code === 'EACCES' || err.code === 'EISDIR' || err.code === 'ENOEXEC' ? 'WK_NOT_EXECUTABLE' : 'WK_SPAWN';
  const what = code === 'WK_NO_PROGRAM' ? 'no such program' : code === 'WK_NOT_EXECUTABLE' ? 'not executable' : 'cannot start';
  return new WirekitError(code, `${program}: ${what} (${err.code ?? err.message})`, { origin: 'local', cause: err });
}

/** Resolves after `ms` (the timer does not keep the process alive). */
export function grace(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

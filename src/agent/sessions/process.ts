/** Programs run by sessions (exec, terminal): signals by name, killing a process tree, spawn errors. */
import type { ChildProcess } from 'node:child_process';
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

/** Sends `sig` to the child's process group (it was started detached), or to the child alone. */
export function killTree(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
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

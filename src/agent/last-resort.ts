/**
 * The last-resort handler of server processes (`wirekit serve`, `wirekit hub`): an error nobody
 * caught (`uncaughtException`, `unhandledRejection`) is logged with its stack, the session it came
 * from is ended when it can be told, and the process goes on serving everyone else.
 *
 * Attribution: the daemon runs each session (its preparation, its run, and the events of its
 * stream) inside a `Scope` (`withScope`, `bindEmitter`), carried by `AsyncLocalStorage` through
 * timers, promises and the callbacks of what the session created (its program's pipes, its target
 * socket); Node runs both handlers in the context of the failing callback or promise. An error
 * from anywhere else is logged only.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { EventEmitter } from 'node:events';
import type { Logger } from './log.js';

/** What an unexpected error is attributed to. */
export interface Scope {
  /** How the log names it, e.g. `exec session of unix`. */
  readonly name: string;
  /** Ends it (destroys its stream, so its own cleanup runs); set once there is something to end. */
  end?: () => void;
}

const current = new AsyncLocalStorage<Scope>();

/** Runs `fn` (and everything it schedules) inside `scope`. */
export function withScope<T>(scope: Scope, fn: () => T): T {
  return current.run(scope, fn);
}

/** Emits `emitter`'s events inside `scope` (an emitter's listeners otherwise run where it was created). */
export function bindEmitter(emitter: EventEmitter, scope: Scope): void {
  const emit = emitter.emit;
  emitter.emit = function (this: EventEmitter, ...args: Parameters<EventEmitter['emit']>) {
    return current.run(scope, () => emit.apply(this, args));
  } as EventEmitter['emit'];
}

/** The scope the caller runs in, if any. */
export function currentScope(): Scope | undefined {
  return current.getStore();
}

/**
 * Installs the last-resort handlers on `proc` (default: this process); returns a function that
 * removes them. Each unexpected error is logged at level error with its stack.
 */
export function installLastResort(log: Logger, proc: NodeJS.EventEmitter = process): () => void {
  const handle = (kind: string, err: unknown) => {
    const scope = current.getStore();
    const stack = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
    log.error(`unexpected error (${kind})${scope ? ` in ${scope.name}` : ''}: ${stack}`);
    if (scope?.end) {
      log.error(`ending ${scope.name}; serving on`);
      try {
        scope.end();
      } catch (e) {
        log.error(`ending ${scope.name} failed: ${(e as Error).message}`);
      }
    } else log.error('not attributable to one session; serving on');
  };
  const onException = (err: unknown) => handle('uncaught exception', err);
  const onRejection = (reason: unknown) => handle('unhandled rejection', reason);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return () => {
    proc.off('uncaughtException', onException);
    proc.off('unhandledRejection', onRejection);
  };
}

/** A small leveled logger writing one line per record to stderr. */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/** True when `s` is a log level name. */
export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(RANK, s);
}

/** A logger that writes records at or above `level` to `out` (stderr by default). */
export function createLogger(level: LogLevel = 'warn', out: { write(s: string): unknown } = process.stderr): Logger {
  const make = (l: Exclude<LogLevel, 'silent'>) =>
    RANK[l] <= RANK[level] ? (msg: string) => void out.write(`${new Date().toISOString()} ${l.toUpperCase()} ${msg}\n`) : () => {};
  return { error: make('error'), warn: make('warn'), info: make('info'), debug: make('debug') };
}

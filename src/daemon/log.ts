/**
 * Logging for the daemon: pino JSON lines on stdout (journald keeps them), pretty-printed when
 * stdout is a terminal. `ConditionLog` is how persisting conditions are reported: once when they
 * begin, once when they end, never once per step (qmemman's error-level spam, QubesOS #6328).
 */
import { createRequire } from 'node:module';
import pino, { type Logger, type Level } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level: LogLevel;
  /** Pretty, human-readable lines instead of JSON; default: whether stdout is a terminal. */
  pretty?: boolean;
  /** Where JSON lines go (tests); default stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const base = { level: opts.level, base: { name: 'xenballoond' } };
  const usePretty = opts.pretty ?? (opts.destination === undefined && process.stdout.isTTY === true);
  if (usePretty) {
    // Loaded only for a terminal (a service logging JSON never pays for it). Synchronous and
    // in-process: a transport worker thread would lose the last lines on exit.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  if (opts.destination) return pino(base, opts.destination);
  return pino(base, pino.destination({ fd: 1, sync: true }));
}

/**
 * Remembers which conditions are active, keyed by a string (e.g. `report-rejected:7`), and logs
 * only transitions: the first time a condition is seen at `level`, and once at info when it clears.
 */
export class ConditionLog {
  private readonly active = new Map<string, string>();

  constructor(private readonly log: Logger) {}

  /** Reports that `key` holds now; logs only if it did not hold before or its message changed. */
  raise(key: string, level: Level, message: string, fields: Record<string, unknown> = {}): void {
    if (this.active.get(key) === message) return;
    this.active.set(key, message);
    this.log[level]({ condition: key, ...fields }, message);
  }

  /** Reports that `key` no longer holds; logs once if it did. */
  clear(key: string, message: string, fields: Record<string, unknown> = {}): void {
    if (!this.active.delete(key)) return;
    this.log.info({ condition: key, ...fields }, message);
  }

  /** Forgets every condition whose key starts with `prefix` (a domain that went away), silently. */
  forget(prefix: string): void {
    for (const key of [...this.active.keys()]) if (key.startsWith(prefix)) this.active.delete(key);
  }

  isActive(key: string): boolean {
    return this.active.has(key);
  }

  activeKeys(): string[] {
    return [...this.active.keys()];
  }
}

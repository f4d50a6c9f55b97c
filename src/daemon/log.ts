/**
 * Logging for the daemon: pino records, written as the journal wants them when stdout is the
 * journal (syslog priority prefixes, readable messages), as JSON lines otherwise, pretty on a
 * terminal (log-output.ts). Writing never throws: lines a full or broken destination refuses are
 * dropped and counted. `ConditionLog` is how persisting conditions are reported: once when they
 * begin, once when they end, never once per step (qmemman's error-level spam, QubesOS #6328).
 *
 * Field names: `domid` and `domain` (the domain's name) for a domain, sizes as `*_kib`. pino's own
 * keys (level, time, pid, hostname, msg) are never used as field names: a JSON object with a key
 * twice is read differently by every parser.
 */
import { createRequire } from 'node:module';
import pino, { type Logger, type Level } from 'pino';
import { SafeWriter, stdoutIsJournal, type LogFormat } from './log-output.js';

export type { Logger } from 'pino';
export type { LogFormat } from './log-output.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  level: LogLevel;
  /**
   * Default: `journal` when stdout is the journal (JOURNAL_STREAM), `pretty` on a terminal,
   * `json` otherwise.
   */
  format?: LogFormat;
  /** Where lines go (tests); default stdout. */
  destination?: { write(s: string): unknown };
}

const writers = new WeakMap<Logger, SafeWriter>();

/** Log lines the destination refused since start (0 for a pretty logger). */
export function droppedLogLines(log: Logger): number {
  return writers.get(log)?.dropped ?? 0;
}

export function defaultLogFormat(): LogFormat {
  if (stdoutIsJournal()) return 'journal';
  return process.stdout.isTTY === true ? 'pretty' : 'json';
}

export function createLogger(opts: LoggerOptions): Logger {
  // No `name` in the base: journald has SYSLOG_IDENTIFIER, and domain names are logged as `domain`.
  const base = { level: opts.level };
  const format: LogFormat = opts.format ?? (opts.destination ? 'json' : defaultLogFormat());
  if (format === 'pretty') {
    // Loaded only for a terminal (a service logging JSON never pays for it). Synchronous and
    // in-process: a transport worker thread would lose the last lines on exit.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  const writer = new SafeWriter({ format, ...(opts.destination ? { sink: opts.destination } : { fd: 1 }) });
  const log = pino(base, writer);
  writers.set(log, writer);
  return log;
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

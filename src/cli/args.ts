/**
 * Option parsing the subcommands share: util.parseArgs with one-line usage errors that point at
 * the command's --help, the --help output, and --log-level.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from './errors.js';

/**
 * util.parseArgs, with its errors as a usage error (exit 2) that points at the command's --help.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    throw new UserError(`${(err as Error).message.split('\n')[0]}; run 'xenballoonctl ${command} --help'`, 2);
  }
}

/** Prints a command's usage for --help; returns its exit code. */
export function printUsage(usage: string): number {
  process.stdout.write(usage + '\n');
  return 0;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Checks a --log-level value (pino's levels). */
export function parseLogLevel(level: string | undefined): LogLevel {
  const value = level ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new UserError(`--log-level '${value}': expected fatal, error, warn, info, debug, trace or silent`, 2);
  }
  return value as LogLevel;
}

/**
 * What the simulator's subcommands (xenstored, sim-host, sim-create, sim-destroy) share around
 * their own logic: option parsing with one-line usage errors, --log-level, the
 * stop signals, and a connection to a sim-host's hypervisor.sock.
 */
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SimHypervisor, SimHypervisorError } from '../xen/sim-hypervisor.js';
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

/**
 * Calls onStop on SIGTERM and on SIGINT (once each, so a second signal of the same kind kills
 * the process as usual). Returns the function that stops listening.
 */
export function onStopSignal(onStop: (signal: NodeJS.Signals) => void): () => void {
  const onTerm = () => onStop('SIGTERM');
  const onInt = () => onStop('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  return () => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };
}

/**
 * Runs `use` with a connection to DIR/hypervisor.sock and closes it. A failure to connect, or
 * a request the simulated hypervisor refuses, is a UserError (`failure: reason`).
 */
export async function withSimHypervisor<T>(dir: string, failure: string, use: (hv: SimHypervisor) => Promise<T>): Promise<T> {
  let hv: SimHypervisor;
  try {
    hv = await SimHypervisor.connect(join(dir, 'hypervisor.sock'));
  } catch (err) {
    throw new UserError((err as Error).message, 1);
  }
  try {
    return await use(hv);
  } catch (err) {
    if (err instanceof SimHypervisorError) throw new UserError(`${failure}: ${err.message}`, 1);
    throw err;
  } finally {
    await hv.close();
  }
}

/**
 * An error a user can cause and fix (bad arguments, bad policy, no xenstored, not root, ...).
 * The CLI entry points print its message as one line and exit with `exitCode`; anything else
 * that escapes is a bug and is printed with its stack.
 */
/**
 * Exit statuses the tools share (docs/operations.md, the man pages). The unit's
 * RestartPreventExitStatus= lists the ones a restart cannot fix: USAGE, NOPERM and CONFIG.
 */
export const EXIT = {
  OK: 0,
  /** A runtime failure: xenstored or the hypervisor unreachable, the control socket in use. */
  FAILURE: 1,
  /** Bad command line. */
  USAGE: 2,
  /** xenballoonctl: the daemon's control socket does not answer. */
  NO_DAEMON: 3,
  /** A bug: printed with its stack; please report. */
  INTERNAL: 70,
  /** Not root where root is needed (sysexits' EX_NOPERM). */
  NOPERM: 77,
  /** xenballoond: the policy is invalid or unreadable (sysexits' EX_CONFIG). */
  CONFIG: 78,
} as const;

export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Run a CLI main, turning UserError into one line on stderr and an exit code. */
export async function runMain(prog: string, main: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (err) {
    if (err instanceof UserError) {
      process.stderr.write(`${prog}: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (isParseArgsError(err)) {
      // util.parseArgs rejects unknown options and missing values: a usage error, not a bug.
      const first = (err as Error).message.split(/(?<=\.)\s/)[0] ?? (err as Error).message;
      process.stderr.write(`${prog}: ${first.replace(/\.$/, '')}; see --help\n`);
      process.exitCode = EXIT.USAGE;
    } else {
      process.stderr.write(`${prog}: internal error (please report): ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.INTERNAL;
    }
  }
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

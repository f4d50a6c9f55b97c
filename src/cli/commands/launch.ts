import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { connect, controlOption, controlPath, request } from '../control.js';
import { durationArg, sizeArg } from './reserve.js';

export const summary = 'reserve memory, run a command that creates a domain (xl create …), release once the domain holds it';

const HELP = `usage: xenballoonctl [--control PATH] launch --reserve SIZE [--timeout 30s] [--wait 30s] -- CMD [ARGS…]

The safe way to start a domain on an overcommitted host:
  1. reserves SIZE (xenballoond balloons other domains down within policy until it is free,
     and keeps it from them); fails with the reason if it cannot;
  2. runs CMD (e.g. \`xl create /etc/xen/web.cfg\`), with XENBALLOON_RESERVATION set to the ID;
  3. when CMD succeeds, releases the reservation once the new domain has appeared and holds its
     memory (waiting at most --wait); when CMD fails, releases it at once.
Exits with CMD's exit status, or 1 if the memory could not be reserved.
  --timeout   how long to wait for the memory to be freed (default 30s)
  --wait      how long to wait for the new domain after CMD succeeds (default 30s)
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...controlOption, reserve: { type: 'string' }, timeout: { type: 'string' }, wait: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.reserve === undefined) throw new UserError('launch needs --reserve SIZE (the new domain\'s memory, e.g. 512M)', 2);
  if (positionals.length === 0) throw new UserError('launch needs a command after --, e.g. `launch --reserve 512M -- xl create web.cfg`', 2);
  const kib = sizeArg(values.reserve, '--reserve');
  const timeout = durationArg(values.timeout, '--timeout');
  const wait = durationArg(values.wait, '--wait');
  const [cmd, ...args] = positionals as [string, ...string[]];

  const client = await connect(controlPath(values.control));
  try {
    const { reservation } = await request(client, {
      op: 'reserve', kib, label: launchLabel(positionals),
      ...(timeout === undefined ? {} : { timeout_ms: timeout }),
    });
    process.stderr.write(`xenballoonctl: reserved ${values.reserve} (${reservation.id}); running ${cmd}\n`);
    const code = await runChild(cmd, args, { ...process.env, XENBALLOON_RESERVATION: reservation.id });
    if (code !== 0) {
      await request(client, { op: 'release', id: reservation.id }).catch(() => undefined);
      process.stderr.write(`xenballoonctl: ${cmd} exited with ${code}; reservation ${reservation.id} released\n`);
      return code;
    }
    const r = await request(client, {
      op: 'release', id: reservation.id, after_domain: true, ...(wait === undefined ? {} : { timeout_ms: wait }),
    });
    process.stderr.write(r.domid === null
      ? `xenballoonctl: no new domain appeared in time; reservation ${reservation.id} released\n`
      : `xenballoonctl: domain ${r.domid} holds its memory; reservation ${reservation.id} released\n`);
    return 0;
  } finally {
    client.close();
  }
}

/** Runs the command with our terminal; Ctrl-C and SIGTERM go to it, and we wait for it. */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const cleanup = () => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new UserError(`cannot run ${cmd}: ${err.code === 'ENOENT' ? 'command not found' : err.message}`, 127));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}

/** The command as a short label for status: paths shortened to their last part. */
export function launchLabel(argv: readonly string[]): string {
  return argv.map((a) => (a.includes('/') && !a.endsWith('/') ? a.slice(a.lastIndexOf('/') + 1) : a)).join(' ').slice(0, 200);
}

import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { connect, controlOption, controlPath, request } from '../control.js';
import { durationArg, sizeArg } from './reserve.js';

export const summary = 'reserve memory, run a command that creates a domain (xl create …), release once the domain holds it';

const HELP = `usage: xenballoonctl [--control PATH] launch --reserve SIZE [--name DOMAIN] [--timeout 30s] [--wait 30s] -- CMD [ARGS…]

The safe way to start a domain on an overcommitted host:
  1. reserves SIZE (xenballoond balloons other domains down within policy until it is free,
     and keeps it from them); fails with the reason if it cannot;
  2. runs CMD (e.g. \`xl create /etc/xen/web.cfg\`), with XENBALLOON_RESERVATION set to the ID;
  3. when CMD succeeds, releases the reservation once the new domain has appeared and holds its
     memory (waiting at most --wait); when CMD fails or cannot be run, releases it at once.
The reservation is for the domain named by --name, else by the \`name = "…"\` of the xl config
file (or a \`name=…\` argument) on the command line: only a new domain of that name takes it, so a
concurrent \`xl create\` of another domain cannot. Without a name, the first new domain takes it.
Exits with CMD's exit status, or 1 if the memory could not be reserved.
  --timeout   how long to wait for the memory to be freed (default 30s)
  --wait      how long to wait for the new domain after CMD succeeds (default 30s)
  --name      the new domain's name (default: from the xl config file, if one is given)
`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      ...controlOption, reserve: { type: 'string' }, timeout: { type: 'string' }, wait: { type: 'string' }, name: { type: 'string' },
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
  const domain = values.name ?? domainNameFromArgs(args);

  const client = await connect(controlPath(values.control));
  try {
    const { reservation } = await request(client, {
      op: 'reserve', kib, label: launchLabel(positionals), ...(domain ? { domain } : {}),
      ...(timeout === undefined ? {} : { timeout_ms: timeout }),
    });
    process.stderr.write(`xenballoonctl: reserved ${values.reserve} (${reservation.id}); running ${cmd}\n`);
    let code: number;
    try {
      code = await runChild(cmd, args, { ...process.env, XENBALLOON_RESERVATION: reservation.id });
    } catch (err) {
      // Could not run it at all (not found, not executable): nothing will take the memory.
      await request(client, { op: 'release', id: reservation.id }).catch(() => undefined);
      throw err;
    }
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

/** xl's config syntax for the name: `name = "web"` (or single quotes), one per line. */
const NAME_LINE = /^\s*name\s*=\s*(["'])([^"'\n]{1,256})\1\s*(?:#.*)?$/m;

/**
 * The new domain's name as xl would take it: a trailing `name=…` argument (xl's key=value
 * override) wins, else `--name NAME` (sim-create), else the name in the first argument that is
 * a readable config file.
 */
export function domainNameFromArgs(args: readonly string[]): string | null {
  for (let i = args.length - 1; i >= 0; i--) {
    const m = /^name=(.{1,256})$/.exec(args[i] as string);
    if (m) return (m[1] as string).replace(/^(["'])(.*)\1$/, '$2');
  }
  // `sim-create --name NAME` (the simulator's xl create) names it the same way.
  const flag = args.indexOf('--name');
  if (flag >= 0 && args[flag + 1] !== undefined) return (args[flag + 1] as string).slice(0, 256);
  for (const a of args) {
    if (a.startsWith('-') || a.includes('=')) continue;
    try {
      if (!statSync(a).isFile() || statSync(a).size > 1024 * 1024) continue;
      const m = NAME_LINE.exec(readFileSync(a, 'utf8'));
      if (m) return m[2] as string;
    } catch {
      // Not a file we can read: not the config.
    }
  }
  return null;
}

/** The command as a short label for status: paths shortened to their last part. */
export function launchLabel(argv: readonly string[]): string {
  return argv.map((a) => (a.includes('/') && !a.endsWith('/') ? a.slice(a.lastIndexOf('/') + 1) : a)).join(' ').slice(0, 200);
}

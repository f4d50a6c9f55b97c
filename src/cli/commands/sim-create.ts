/**
 * xenballoonctl sim-create --dir DIR --name NAME --memory SIZE [--maxmem SIZE] [--template T]
 *
 * `xl create` for the simulated host: asks DIR/hypervisor.sock to create a domain and returns
 * once it is built (holds its memory), printing its domid. Meant to run under
 * `xenballoonctl launch --reserve SIZE -- xenballoonctl sim-create ...`, or as sim-host's
 * --launch-command. Sizes as xl takes them: 512M, 1G (a bare number is MiB).
 */
import { parseSizeKib } from '../../sim/units.js';
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';
import { withSimHypervisor } from '../sim-commands.js';

export const summary = 'create a domain on a running sim-host (xl create for the simulator)';

const USAGE = `usage: xenballoonctl sim-create --dir DIR --name NAME --memory SIZE [--maxmem SIZE] [--template T]

  --dir DIR       the sim-host directory (holds hypervisor.sock)
  --name NAME     domain name
  --memory SIZE   memory it is built with (xl's memory=), e.g. 512M
  --maxmem SIZE   its static maximum (xl's maxmem=; default: --memory)
  --template T    the scenario's guest template it runs (OS, workload, balloon; default: the first)
Prints the new domid once the domain is built.`;

/** xl's convention: a bare number is MiB. */
export function parseXlSize(text: string, what: string): number {
  try {
    const kib = parseSizeKib(text);
    if (!(kib > 0)) throw new Error('must be positive');
    return Math.floor(kib);
  } catch (err) {
    throw new UserError(`${what} '${text}': ${(err as Error).message}`, 2);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('sim-create', {
    args: argv,
    options: {
      dir: { type: 'string' },
      name: { type: 'string' },
      memory: { type: 'string' },
      maxmem: { type: 'string' },
      template: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) return printUsage(USAGE);
  for (const k of ['dir', 'name', 'memory'] as const) {
    if (!values[k]) throw new UserError(`--${k} is required; run 'xenballoonctl sim-create --help'`, 2);
  }
  const memoryKib = parseXlSize(values.memory as string, '--memory');
  const maxmemKib = values.maxmem === undefined ? memoryKib : parseXlSize(values.maxmem, '--maxmem');
  if (maxmemKib < memoryKib) throw new UserError('--maxmem is smaller than --memory', 2);
  const name = values.name as string;
  return withSimHypervisor(values.dir as string, `cannot create ${name}`, async (hv) => {
    const domid = await hv.createDomain({ name, memoryKib, maxmemKib, template: values.template });
    process.stdout.write(`${domid}\n`);
    return 0;
  });
}

/**
 * xenballoonctl sim-flood --dir DIR --domain ID [--keys N] [--under PATH] [--seconds S]
 *   [--connections C] [--in-flight K] [--json]
 *
 * The `flooder` hostile workload (src/sim/flooder.ts): from guest ID's own xenstore socket on a
 * running sim-host, rewrite N distinct nodes under its home as fast as xenstored takes them,
 * then print how many writes per second were achieved.
 */
import { join } from 'node:path';
import { DEFAULT_FLOOD, flood } from '../../sim/flooder.js';
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';

export const summary = 'flood xenstore from one simulated guest (the flooder hostile workload)';

const USAGE = `usage: xenballoonctl sim-flood --dir DIR --domain ID [options]

  --dir DIR          the sim-host directory (holds dom<ID>.sock)
  --domain ID        the guest whose connection floods (its domid)
  --keys N           distinct nodes rewritten round-robin (default ${DEFAULT_FLOOD.keys})
  --under PATH       where, relative to the guest's home (default ${DEFAULT_FLOOD.under})
  --seconds S        how long (default ${DEFAULT_FLOOD.durationMs / 1000})
  --connections C    connections writing in parallel (default ${DEFAULT_FLOOD.connections})
  --in-flight K      writes outstanding per connection (default ${DEFAULT_FLOOD.inFlight})
  --json             print the result as one JSON object`;

function positive(text: string | undefined, fallback: number, what: string): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new UserError(`${what} '${text}': expected a positive number`, 2);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('sim-flood', {
    args: argv,
    options: {
      dir: { type: 'string' }, domain: { type: 'string' }, keys: { type: 'string' }, under: { type: 'string' },
      seconds: { type: 'string' }, connections: { type: 'string' }, 'in-flight': { type: 'string' },
      json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) return printUsage(USAGE);
  if (!values.dir || !values.domain) throw new UserError("--dir and --domain are required; run 'xenballoonctl sim-flood --help'", 2);
  if (!/^[1-9]\d{0,4}$/.test(values.domain)) throw new UserError(`--domain '${values.domain}': expected a guest's domid`, 2);
  const under = (values.under ?? DEFAULT_FLOOD.under).replace(/^\/+|\/+$/g, '');
  const opts = {
    socket: join(values.dir, `dom${values.domain}.sock`),
    keys: Math.floor(positive(values.keys, DEFAULT_FLOOD.keys, '--keys')),
    under,
    durationMs: positive(values.seconds, DEFAULT_FLOOD.durationMs / 1000, '--seconds') * 1000,
    connections: Math.floor(positive(values.connections, DEFAULT_FLOOD.connections, '--connections')),
    inFlight: Math.floor(positive(values['in-flight'], DEFAULT_FLOOD.inFlight, '--in-flight')),
  };
  let r;
  try {
    r = await flood(opts);
  } catch (err) {
    throw new UserError(`cannot flood through ${opts.socket}: ${(err as Error).message}; is the sim-host running and domain ${values.domain} built?`, 1);
  }
  if (values.json) process.stdout.write(JSON.stringify({ ...r, keys: opts.keys, under, connections: opts.connections }) + '\n');
  else {
    process.stdout.write(`sim-flood: ${r.writes} writes in ${r.seconds.toFixed(1)} s (${r.writesPerS} writes/s) to ${opts.keys} keys under ${under}` +
      (r.refused ? `; ${r.refused} refused (${r.firstRefusal})` : '') + '\n');
  }
  return 0;
}

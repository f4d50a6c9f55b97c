/**
 * `xenballoonctl policy check FILE…`: validate policy files as the daemon would load them (a
 * file with its sibling policy.d/, or a directory holding policy.yaml and policy.d/). Exit 0
 * when all are valid; otherwise print every problem as `file:line:col: message` on stderr and
 * exit 1.
 * `xenballoonctl policy show [FILE] [--domain NAME|DOMID] [--json]`: the merged policy, or one
 * domain's effective settings, in the policy file's own units (YAML); --json gives the program's
 * internal form (sizes in KiB, durations in ms).
 */
import { defaultPolicy, loadPolicy, PolicyError, policyFiles, settingsFor, type Policy } from '../../policy/index.js';
import { humanSettings, policyAsYaml } from '../../policy/show.js';
import { stringify } from 'yaml';
import { parseCommandArgs, printUsage } from '../args.js';
import { UserError } from '../errors.js';

export const summary = 'check policy files (file:line:col errors), or show the merged policy';

const USAGE = `usage: xenballoonctl policy check FILE...
       xenballoonctl policy show [FILE] [--domain NAME|DOMID] [--json]

check  Validates each FILE as xenballoond loads it: the file plus the policy.d/*.yaml beside it
       (or, for a directory, DIR/policy.yaml plus DIR/policy.d/). Prints "ok" lines on stdout
       and exits 0; or prints every problem as file:line:col: message on stderr and exits 1.
show   Prints the merged policy (default: the shipped one) in the policy file's own units
       (512M, 64M/s, 10%, 1s), as YAML; with --domain, that domain's effective settings.
       --json: the program's internal form instead (sizes KiB, rates KiB/s, durations ms).`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'check') return check(rest);
  if (sub === 'show') return show(rest);
  throw new UserError(`policy: unknown subcommand '${sub}'; expected check or show`, 2);
}

function args(argv: string[]) {
  return parseCommandArgs('policy', {
    args: argv,
    options: { domain: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: true,
  });
}

async function check(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv);
  if (values.domain !== undefined) throw new UserError('policy check: --domain belongs to policy show', 2);
  if (values.help) return printUsage(USAGE);
  if (positionals.length === 0) throw new UserError("policy check: no FILE given; run 'xenballoonctl policy --help'", 2);
  let failed = false;
  for (const path of positionals) {
    try {
      const files = policyFiles(path);
      loadPolicy(path);
      const extra = files.length > 1 ? ` (with ${files.length - 1} file(s) from policy.d)` : '';
      process.stdout.write(`${path}: ok${extra}\n`);
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      failed = true;
      process.stderr.write(err.message + '\n');
    }
  }
  return failed ? 1 : 0;
}

async function show(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv);
  if (values.help) return printUsage(USAGE);
  if (positionals.length > 1) throw new UserError('policy show: at most one FILE', 2);
  let policy: Policy;
  try {
    policy = positionals[0] !== undefined ? loadPolicy(positionals[0]) : defaultPolicy();
  } catch (err) {
    if (err instanceof PolicyError) throw new UserError(err.message.split('\n')[0] ?? 'invalid policy', 1);
    throw err;
  }
  const domain = values.domain;
  if (typeof domain === 'string') {
    const identity = /^[0-9]+$/.test(domain) ? { domid: Number(domain), name: '' } : { domid: -1, name: domain };
    const settings = settingsFor(policy, identity);
    process.stdout.write(values.json ? JSON.stringify(settings, null, 2) + '\n' : `# effective settings for ${domain}\n${stringify(humanSettings(settings))}`);
  } else {
    process.stdout.write(values.json ? JSON.stringify(policy, null, 2) + '\n' : policyAsYaml(policy));
  }
  return 0;
}

/**
 * `xenballoonctl capacity [SIZE] [--snapshot FILE [--policy FILE]] [--json]`: how large a domain
 * can start now, and after shrinking the others within their policy (and how long that takes).
 * Computed here, with the decision core (src/plan/capacity.ts), from the daemon's own snapshot and
 * policy, or from a snapshot file as `plan` reads it: one computation, the same answer.
 */
import { observationFromSnapshot, SnapshotSchema } from '../../core/snapshot.js';
import { parsePolicy, PolicyError, type Policy } from '../../policy/index.js';
import { formatKib } from '../../policy/units.js';
import { capacity, type Capacity } from '../../plan/capacity.js';
import { parseCommandArgs, printUsage } from '../args.js';
import { ask, controlOption, controlPath } from '../control.js';
import { UserError } from '../errors.js';
import { readPolicy, readSnapshot } from './plan.js';
import { sizeArg } from './reserve.js';

export const summary = 'how large a domain can start now, and after shrinking the others within policy';

const USAGE = `usage: xenballoonctl [--control PATH] capacity [SIZE] [--json]
       xenballoonctl capacity [SIZE] --snapshot FILE [--policy FILE] [--json]

Asks the running daemon for its view of the host and policy (or reads a snapshot file, as
\`plan\` does) and answers, with xenballoond's decision core:
  free now         the largest domain that can start at once
  after shrinking  the largest that can start once other domains are ballooned down within their
                   policy (never below their minimum; busy guests keep their need), and how long
                   that takes at the policy's rates (guests assumed to follow their targets)
  at the floors    what every managed domain at its minimum would leave (more than "after
                   shrinking" only once busy guests need less)
With SIZE (e.g. 2G), also whether and when a domain of that size could start.
  --snapshot FILE  a snapshot (docs/snapshot.md) instead of the daemon
  --policy FILE    with --snapshot: the policy (default: as for plan)
  --json           {"free_now_kib":…,"largest_kib":…,"largest_after_ms":…,"at_floors_kib":…}`;

function daemonPolicy(yaml: string | null, files: string[]): Policy {
  if (yaml === null) return readPolicy(files[0]);
  try {
    return parsePolicy(yaml, files.join(', ') || 'the daemon\'s policy');
  } catch (err) {
    if (err instanceof PolicyError) throw new UserError(`the daemon's policy does not read back (please report): ${err.message.split('\n')[0]}`, 70);
    throw err;
  }
}

function seconds(ms: number | null): string {
  if (ms === null) return 'not within an hour';
  if (ms === 0) return 'at once';
  return `in about ${Math.ceil(ms / 1000)}s`;
}

const STATE_TEXT = {
  now: 'can start now',
  'after-shrinking': 'can start after shrinking other domains',
  'waits-for-busy-guests': 'would have to wait until busy guests need less',
  impossible: 'cannot start: the minimums of running domains leave too little',
} as const;

export function renderCapacity(c: Capacity): string {
  const lines = [
    `free now:         ${formatKib(c.freeNowKib)}`,
    `after shrinking:  ${formatKib(c.largestKib)}, ${seconds(c.largestAfterMs)} (others shrink within their policy)`,
    `at the floors:    ${formatKib(c.atFloorsKib)} (every managed domain at its minimum; only once busy guests need less)`,
  ];
  if (c.size) {
    const s = c.size;
    const when = s.state === 'after-shrinking' ? `, ${seconds(s.afterMs)}` : '';
    lines.push(`a ${formatKib(s.kib)} domain ${STATE_TEXT[s.state]}${when}${s.reason && s.state !== 'now' ? ` (${s.reason})` : ''}`);
  }
  return lines.join('\n') + '\n';
}

function toJson(c: Capacity): unknown {
  return {
    free_now_kib: c.freeNowKib, largest_kib: c.largestKib, largest_after_ms: c.largestAfterMs, at_floors_kib: c.atFloorsKib,
    ...(c.size ? { size: { kib: c.size.kib, state: c.size.state, after_ms: c.size.afterMs, reason: c.size.reason } } : {}),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('capacity', {
    args: argv,
    options: {
      ...controlOption, snapshot: { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return printUsage(USAGE);
  if (positionals.length > 1) throw new UserError("capacity takes at most one SIZE; run 'xenballoonctl capacity --help'", 2);
  const size = positionals[0] === undefined ? undefined : sizeArg(positionals[0], 'capacity SIZE');
  if (values.policy !== undefined && values.snapshot === undefined) {
    throw new UserError('--policy goes with --snapshot (the daemon uses its own policy)', 2);
  }
  let snapshot;
  let policy: Policy;
  if (values.snapshot !== undefined) {
    snapshot = readSnapshot(values.snapshot);
    policy = readPolicy(values.policy);
  } else {
    const r = await ask(controlPath(values.control), { op: 'snapshot' });
    snapshot = SnapshotSchema.parse(r.snapshot);
    policy = daemonPolicy(r.policy, r.policy_files);
  }
  const { observation, nowMs } = observationFromSnapshot(snapshot);
  const c = capacity(observation, policy, nowMs, size);
  process.stdout.write(values.json ? JSON.stringify(toJson(c)) + '\n' : renderCapacity(c));
  return 0;
}

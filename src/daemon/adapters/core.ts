/**
 * The decision core (src/core) as the daemon's Decider: keeps the core's state between steps
 * and the current policy (swapped on reload without losing that state), and turns the core's
 * explanation into what status, explain and the reservation book need.
 */
import { initialState, step, type CoreState, type DomainExplanation, type Explanation } from '../../core/index.js';
import type { Observation } from '../../core/types.js';
import { formatKib, type Policy } from '../../policy/index.js';
import { policyAsYaml } from '../../policy/show.js';
import type { Decider, Decision, DomainVerdict, ReservationVerdict } from '../ports.js';

const m = (kib: number | null): string => (kib === null ? '?' : formatKib(kib));

const BOUND_TEXT: Record<DomainExplanation['bound'], string> = {
  min: 'its minimum',
  max: 'its maximum',
  need: 'its need (fully met)',
  use: 'what it uses (memory is short: the rest of its need waits)',
  share: 'a weighted share (memory is short)',
  hold: 'holding its target (no usable report)',
  decay: 'what it last used (its report is stale or rejected: claims above that decay)',
  stuck: 'what it holds (stuck: not following its target)',
  ceiling: 'what it holds (it could not grow; retrying later)',
  unmanaged: 'not managed',
};

const LIMITER_TEXT: Record<DomainExplanation['limiter'], string> = {
  none: '',
  deadband: 'the change is smaller than the hysteresis',
  'rate-down': 'shrinking is rate-limited (rate.down)',
  'rate-up': 'growth is rate-limited (rate.up)',
  'free-memory': 'growth waits for free memory (others shrink first)',
  stuck: 'it is stuck: its target is left for it to reach',
};

/** Human lines for `xenballoonctl explain`, from the core's explanation of one domain. */
export function explainLines(d: DomainExplanation, host: Explanation['host']): string[] {
  if (!d.managed) return [`not managed: ${d.unmanagedReason ?? 'by policy'}; its memory counts as fixed`];
  const lines: string[] = [];
  if (d.reportRejected !== null) {
    lines.push(`report rejected (${d.reportRejections} in all), treated as no report: ${d.reportRejected}`);
  }
  if (d.needKib === null) {
    lines.push(
      d.bound === 'decay'
        ? 'need: unknown (stale or rejected report): its target decays to what it last used'
        : 'need: unknown (no fresh report): its target is held where it is',
    );
  } else {
    const parts = [
      d.estimateKib !== null && d.estimator ? `${d.estimator} ${m(d.estimateKib)}` : null,
      d.overheadKib !== null ? `kernel ${m(d.overheadKib)}` : null,
      d.headroomKib !== null ? `headroom ${m(d.headroomKib)}` : null,
      d.pressureBoostKib !== null ? `pressure boost ${m(d.pressureBoostKib)}` : null,
      d.useKib !== null ? `in use ${m(d.useKib)}` : null,
    ].filter(Boolean);
    lines.push(`need: ${m(d.needKib)}${parts.length ? ` (${parts.join(', ')})` : ''}`);
  }
  lines.push(`policy: min ${m(d.minKib)}, max ${m(d.maxKib)}, weight ${d.weight ?? '?'}`);
  if (d.flags.includes('floor-capped')) {
    lines.push(`floor: the floor its report asks for is capped at its fair share ${m(d.fairShareKib)} (only the admin's min is a hard floor)`);
  }
  if (d.flags.includes('claim-capped')) {
    lines.push(
      `claim capped: its need ${m(d.needKib)} is above its fair share ${m(d.fairShareKib)}; ` +
        'the part above is served only from memory no other guest needs',
    );
  }
  if (d.flags.includes('damped')) lines.push('damped: its claims flip; held at the larger of its recent claims for 30 s');
  lines.push(`allocation: ${m(d.desiredKib)}, bound by ${BOUND_TEXT[d.bound]}`);
  const t = d.newTargetKib === d.targetKib ? `target stays ${m(d.targetKib)}` : `target ${m(d.targetKib)} -> ${m(d.newTargetKib)}`;
  lines.push(LIMITER_TEXT[d.limiter] ? `${t}: ${LIMITER_TEXT[d.limiter]}` : t);
  if (d.rates) {
    const r = d.rates;
    const bits = [
      r.swapInKibps !== null ? `swap-in ${m(Math.round(r.swapInKibps))}/s` : null,
      r.majorFaultsPs !== null ? `major faults ${r.majorFaultsPs.toFixed(1)}/s` : null,
      r.psiSome !== null ? `PSI some ${(r.psiSome * 100).toFixed(1)}%` : null,
    ].filter(Boolean);
    if (bits.length) lines.push(`signals: ${bits.join(', ')}`);
  }
  if (d.flags.length) lines.push(`flags: ${d.flags.join(', ')}`);
  lines.push(
    `host: budget ${m(host.budgetKib)} for managed domains (free ${m(host.freeKib)}, reserve ${m(host.reserveKib)}, ` +
      `reservations ${m(host.reservedKib)}), needs ${m(host.needsKib)}${host.shortKib > 0 ? `, short by ${m(host.shortKib)}` : ''}`,
  );
  return lines;
}

/** Flags shown in status (the detailed `pressure:<signal>` ones stay in explain). */
function statusFlags(d: DomainExplanation): string[] {
  return d.flags.filter((f) => !f.startsWith('pressure:'));
}

function verdictsOf(e: Explanation): Map<number, DomainVerdict> {
  const domains = new Map<number, DomainVerdict>();
  for (const d of e.domains) {
    domains.set(d.domid, {
      managed: d.managed,
      needKib: d.needKib,
      minKib: d.minKib,
      maxKib: d.maxKib,
      weight: d.weight,
      flags: statusFlags(d),
      swapInKibS: d.rates?.swapInKibps ?? null,
      reportRejected: d.reportRejected,
      reportRejections: d.reportRejections,
      fairShareKib: d.fairShareKib,
      lines: () => explainLines(d, e.host),
      detail: d,
    });
  }
  return domains;
}

export class CoreDecider implements Decider {
  private state: CoreState = initialState();
  lastExplanation: Explanation | null = null;

  constructor(private policy: Policy) {}

  static intervalOf(p: Policy): number {
    return p.intervalMs;
  }

  get intervalMs(): number {
    return this.policy.intervalMs;
  }

  policyYaml(): string {
    return policyAsYaml(this.policy);
  }

  /** A new policy; the core's memory of each domain (history, rate limits, stuck) is kept. */
  setPolicy(p: Policy): void {
    this.policy = p;
  }

  decide(obs: Observation, nowMs: number): Decision {
    const r = step(this.state, obs, this.policy, nowMs);
    this.state = r.state;
    this.lastExplanation = r.explanation;
    const reservations = new Map<string, ReservationVerdict>();
    for (const x of r.explanation.reservations) {
      if (x.state === 'expired') continue;
      reservations.set(x.id, { state: x.state, reason: x.reason });
    }
    // Per-domain verdicts are read only by status, explain and a metrics scrape, far less often
    // than steps run: built on first use (one object and closure per domain per step otherwise).
    let domains: Map<number, DomainVerdict> | null = null;
    return {
      actions: r.actions,
      get domains() {
        return (domains ??= verdictsOf(r.explanation));
      },
      untrusted: r.explanation.untrusted,
      reservations,
      explanation: r.explanation,
      host: {
        budgetKib: r.explanation.host.budgetKib, reserveKib: r.explanation.host.reserveKib, freeKib: r.explanation.host.freeKib,
        managedKib: r.explanation.host.managedKib, fixedKib: r.explanation.host.fixedKib,
      },
    };
  }
}

/**
 * Faults `sim-host --inject FAULT` puts into the simulated host, for people and for checks:
 *
 *   setmaxmem-eperm:NAME        setmaxmem on the domain named NAME fails with EPERM (an XSM
 *                               denial), for as long as the host runs
 *   xenstore-stall:SECONDS@AT   from simulated time AT, xenstored answers no socket client for
 *                               SECONDS (a hung or SIGSTOPped xenstored); AT and SECONDS take
 *                               durations (30, 30s, 2m)
 */
import { parseDurationMs } from '../units.js';

export type Fault =
  | { kind: 'setmaxmem-eperm'; name: string }
  | { kind: 'xenstore-stall'; atMs: number; forMs: number };

export class FaultError extends Error {}

const FORMS = 'setmaxmem-eperm:NAME or xenstore-stall:SECONDS@AT';

function duration(text: string, what: string, spec: string): number {
  try {
    const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDurationMs(text);
    if (!Number.isFinite(ms) || ms < 0) throw new Error('not a duration');
    return ms;
  } catch {
    throw new FaultError(`--inject ${spec}: ${what} '${text}' is not a duration (e.g. 10, 10s, 2m)`);
  }
}

export function parseFault(spec: string): Fault {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  if (kind === 'setmaxmem-eperm') {
    if (arg === '') throw new FaultError(`--inject ${spec}: name the domain, e.g. setmaxmem-eperm:idle-3`);
    return { kind, name: arg };
  }
  if (kind === 'xenstore-stall') {
    const m = /^([^@]+)@(.+)$/.exec(arg);
    if (!m) throw new FaultError(`--inject ${spec}: give SECONDS@AT, e.g. xenstore-stall:10@30s`);
    const forMs = duration(m[1] as string, 'SECONDS', spec);
    if (forMs <= 0) throw new FaultError(`--inject ${spec}: the stall must last more than 0 s`);
    return { kind, forMs, atMs: duration(m[2] as string, 'AT', spec) };
  }
  throw new FaultError(`--inject: unknown fault '${kind}'; known: ${FORMS}`);
}

/** The faults of one run: what each hook asks at a given simulated time. */
export class FaultPlan {
  constructor(readonly faults: readonly Fault[]) {}

  /** Whether setmaxmem on this domain is denied. */
  deniesMaxmem(name: string): boolean {
    return this.faults.some((f) => f.kind === 'setmaxmem-eperm' && f.name === name);
  }

  /** Whether xenstored is stalled at simulated time `nowMs`. */
  stalledAt(nowMs: number): boolean {
    return this.faults.some((f) => f.kind === 'xenstore-stall' && nowMs >= f.atMs && nowMs < f.atMs + f.forMs);
  }
}

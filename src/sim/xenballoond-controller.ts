/**
 * xenballoond as the simulator runs it: the decision core with a policy, plus the reservation
 * protocol the daemon offers on its control socket, so the paper's launcher admits guests the
 * same way an operator's `xenballoonctl launch --reserve` would.
 *
 *   requestLaunch  reserves memory= plus the build's own overhead (held, first come first served)
 *   launchStatus   the core's evaluation of that reservation: ready -> go, impossible -> fail
 *                  (with its reason), pending -> wait; a launch that waits longer than the
 *                  timeout fails with the last reason
 *   launched       drops the reservation
 *
 * As squeezed transfers a reservation to the domain it was made for, a reservation is dropped
 * as soon as a domain with the requested name appears: from then on that domain's claim and
 * target account for its memory, and holding both would count it twice.
 */
import { initialState, step, type CoreState, type Explanation } from '../core/index.js';
import type { Action, Observation, ReservationObservation } from '../core/types.js';
import type { Policy } from '../policy/index.js';
import type { Controller, LaunchRequest, LaunchStatus } from './controller.js';

/** libxl's LIBXL_PV_EXTRA_MEMORY (1 MiB the build costs Xen) plus a page table's worth of margin. */
export const LAUNCH_SLACK_KIB = 2048;

export interface XenballoondControllerOptions {
  policy: Policy;
  /**
   * A launch still pending after this long fails. Default 60 s: the launcher rule every
   * controller is measured with (docs/peers.md, "The protocol"; xenopsd gives a squeezed
   * reservation 60 s of retries, xen-api commit 33b3a10d29).
   */
  launchTimeoutMs?: number;
}

interface Held extends ReservationObservation {
  name: string;
  lastReason: string | null;
}

export class XenballoondController implements Controller {
  readonly name = 'xenballoond' as const;
  readonly intervalMs: number;
  private state: CoreState = initialState();
  private readonly held = new Map<string, Held>();
  private seq = 0;
  private readonly policy: Policy;
  private readonly timeoutMs: number;
  /** The last step's explanation (for charts, logs and tests). */
  lastExplanation: Explanation | null = null;

  constructor(opts: XenballoondControllerOptions) {
    this.policy = opts.policy;
    this.intervalMs = opts.policy.intervalMs;
    this.timeoutMs = opts.launchTimeoutMs ?? 60_000;
  }

  step(obs: Observation, nowMs: number): Action[] {
    const result = step(this.state, this.withReservations(obs), this.policy, nowMs);
    this.state = result.state;
    this.lastExplanation = result.explanation;
    return result.actions;
  }

  requestLaunch(req: LaunchRequest, _obs: Observation, nowMs: number): string {
    const id = `launch-${++this.seq}`;
    this.held.set(id, {
      id,
      kib: req.memoryKib + LAUNCH_SLACK_KIB,
      createdAtMs: nowMs,
      expiresAtMs: nowMs + this.timeoutMs,
      name: req.name,
      lastReason: null,
    });
    return id;
  }

  launchStatus(id: string, obs: Observation, nowMs: number): LaunchStatus {
    const r = this.held.get(id);
    if (!r) return { state: 'fail', reason: `no such launch request '${id}'` };
    // A pure evaluation on the current observation; the state is not advanced.
    const explanation = step(this.state, this.withReservations(obs), this.policy, nowMs).explanation;
    const mine = explanation.reservations.find((x) => x.id === id);
    if (!mine || mine.state === 'expired') {
      this.held.delete(id);
      const why = r.lastReason ? `: ${r.lastReason}` : '';
      return { state: 'fail', reason: `no room after waiting ${Math.round((nowMs - r.createdAtMs) / 1000)} s${why}` };
    }
    if (mine.state === 'ready') return { state: 'go' };
    if (mine.state === 'impossible') {
      this.held.delete(id);
      return { state: 'fail', reason: mine.reason ?? 'does not fit' };
    }
    r.lastReason = mine.reason;
    return { state: 'wait' };
  }

  launched(id: string, _domid: number | null, _nowMs: number): void {
    this.held.delete(id);
  }

  /** Reservations still held, for inspection. */
  reservations(): ReservationObservation[] {
    return [...this.held.values()].map(({ id, kib, createdAtMs, expiresAtMs }) => ({ id, kib, createdAtMs, expiresAtMs }));
  }

  private withReservations(obs: Observation): Observation {
    if (this.held.size === 0) return obs;
    const names = new Set(obs.domains.filter((d) => !d.dying && !d.shutdown).map((d) => d.name));
    for (const [id, r] of this.held) if (names.has(r.name)) this.held.delete(id);
    const mine = this.reservations();
    return mine.length === 0 ? obs : { ...obs, reservations: [...obs.reservations, ...mine] };
  }
}

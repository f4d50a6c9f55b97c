/**
 * The paper's dom0 launcher, generalised, with one rule for every controller (docs/peers.md, "The
 * protocol"): guests from the scenario are launched one after another whenever the controller's
 * own launch API says the next one fits (requestLaunch -> launchStatus ... 'go' -> create the
 * domain -> launched once it holds its memory). A 'fail' is retried with a new request every
 * 10 s; a guest that is not admitted within 60 s of its first request is given up (its request
 * withdrawn, a waiting one too) and launching stops, as an operator stops when the host is full.
 * The 10 s / 60 s are xenopsd's own retry of a failed squeezed reservation (xen-api commit
 * 33b3a10d29, CA-227101), applied to every controller so that admission counts measure the
 * controllers, not the launcher. A creation that fails after a 'go' (the controller promised
 * memory it did not have) also stops launching and is counted separately.
 */
import type { Controller } from '../controller.js';
import type { Observation } from '../../core/types.js';
import type { Simulation } from '../model.js';
import type { GuestTemplate, Scenario } from '../scenario/schema.js';

export interface LaunchItem {
  name: string;
  template: GuestTemplate;
}

/** The launch order: each template's guests in turn, or round-robin across templates. */
export function launchQueue(s: Scenario): LaunchItem[] {
  const perTemplate = s.guests.map((t) =>
    Array.from({ length: t.count }, (_, i) => ({ name: `${t.name}-${i + 1}`, template: t })),
  );
  if (s.launch.order === 'sequential') return perTemplate.flat();
  const out: LaunchItem[] = [];
  for (let i = 0; perTemplate.some((q) => i < q.length); i++) {
    for (const q of perTemplate) {
      const item = q[i];
      if (item) out.push(item);
    }
  }
  return out;
}

/** A refused request is asked again after this long (xenopsd: 10 s between retries). */
export const LAUNCH_RETRY_MS = 10_000;
/** A guest not admitted this long after its first request is given up (xenopsd: 60 s). */
export const LAUNCH_GIVE_UP_MS = 60_000;

export interface LaunchRecord {
  name: string;
  requestedAtMs: number;
  /** When the controller said go or fail; null if it never answered. */
  answeredAtMs: number | null;
  outcome: 'admitted' | 'refused' | 'create-failed' | 'pending';
  domid: number | null;
  reason?: string;
  /** Requests made for this guest (1 + retries after a 'fail'); absent where nobody asked. */
  attempts?: number;
}

type State =
  | { kind: 'ready'; atMs: number }
  | { kind: 'asking'; id: string; item: LaunchItem; record: LaunchRecord }
  | { kind: 'retry'; atMs: number; item: LaunchItem; record: LaunchRecord }
  | { kind: 'building'; id: string; domid: number; record: LaunchRecord }
  | { kind: 'stopped'; reason: string };

export class Launcher {
  readonly records: LaunchRecord[] = [];
  private state: State = { kind: 'ready', atMs: 0 };
  private next = 0;

  constructor(
    private readonly queue: LaunchItem[],
    private readonly controller: Controller,
    private readonly sim: Simulation,
    private readonly gapMs: number,
  ) {
    if (queue.length === 0) this.state = { kind: 'stopped', reason: 'nothing to launch' };
  }

  get admitted(): number {
    return this.records.filter((r) => r.outcome === 'admitted').length;
  }

  get stopReason(): string | null {
    return this.state.kind === 'stopped' ? this.state.reason : null;
  }

  /** The domain finished building (called for every 'built' event). */
  built(domid: number, nowMs: number): void {
    const s = this.state;
    if (s.kind !== 'building' || s.domid !== domid) return;
    this.controller.launched(s.id, domid, nowMs);
    s.record.outcome = 'admitted';
    this.state = this.next < this.queue.length ? { kind: 'ready', atMs: nowMs + this.gapMs } : { kind: 'stopped', reason: 'all guests launched' };
  }

  /** A domain under construction failed to build (only without claims). */
  buildFailed(domid: number, nowMs: number, reason: string): void {
    const s = this.state;
    if (s.kind !== 'building' || s.domid !== domid) return;
    this.controller.launched(s.id, null, nowMs);
    s.record.outcome = 'create-failed';
    s.record.reason = reason;
    this.state = { kind: 'stopped', reason: `creating ${s.record.name} failed: ${reason}` };
  }

  /** One launcher turn; `obs` is built lazily (only when the controller is asked). */
  poll(nowMs: number, obs: () => Observation): void {
    const s = this.state;
    if (s.kind === 'ready' && nowMs >= s.atMs) {
      const item = this.queue[this.next++] as LaunchItem;
      const record: LaunchRecord = { name: item.name, requestedAtMs: nowMs, answeredAtMs: null, outcome: 'pending', domid: null, attempts: 0 };
      this.records.push(record);
      this.request(item, record, nowMs, obs);
      return;
    }
    if (s.kind === 'retry' && nowMs >= s.atMs) {
      this.request(s.item, s.record, nowMs, obs);
      return;
    }
    if (s.kind === 'asking') this.ask(nowMs, obs);
  }

  private request(item: LaunchItem, record: LaunchRecord, nowMs: number, obs: () => Observation): void {
    record.attempts = (record.attempts ?? 0) + 1;
    const id = this.controller.requestLaunch({ memoryKib: item.template.memory, maxmemKib: item.template.maxmem, name: item.name }, obs(), nowMs);
    this.state = { kind: 'asking', id, item, record };
    this.ask(nowMs, obs);
  }

  private giveUp(record: LaunchRecord, nowMs: number, reason: string): void {
    record.answeredAtMs = nowMs;
    record.outcome = 'refused';
    record.reason = reason;
    this.state = { kind: 'stopped', reason: `${record.name} refused: ${reason}` };
  }

  private ask(nowMs: number, obs: () => Observation): void {
    const s = this.state;
    if (s.kind !== 'asking') return;
    const status = this.controller.launchStatus(s.id, obs(), nowMs);
    const waited = nowMs - s.record.requestedAtMs;
    if (status.state === 'wait') {
      if (waited < LAUNCH_GIVE_UP_MS) return;
      this.controller.launched(s.id, null, nowMs);
      this.giveUp(s.record, nowMs, `not admitted within ${LAUNCH_GIVE_UP_MS / 1000} s`);
      return;
    }
    if (status.state === 'fail') {
      this.controller.launched(s.id, null, nowMs);
      if (waited + LAUNCH_RETRY_MS <= LAUNCH_GIVE_UP_MS) {
        s.record.reason = status.reason;
        this.state = { kind: 'retry', atMs: nowMs + LAUNCH_RETRY_MS, item: s.item, record: s.record };
        return;
      }
      this.giveUp(s.record, nowMs, `${status.reason} (${s.record.attempts ?? 1} requests over ${Math.round(waited / 1000)} s)`);
      return;
    }
    s.record.answeredAtMs = nowMs;
    const r = this.sim.createDomain(s.item.name, s.item.template);
    if (!r.ok) {
      this.controller.launched(s.id, null, nowMs);
      s.record.outcome = 'create-failed';
      s.record.reason = r.reason;
      this.state = { kind: 'stopped', reason: `creating ${s.item.name} failed: ${r.reason}` };
      return;
    }
    s.record.domid = r.domid;
    this.state = { kind: 'building', id: s.id, domid: r.domid, record: s.record };
  }
}

/**
 * The paper's dom0 launcher, generalised: guests from the scenario are launched one after another
 * whenever the controller's launch API says the next one fits (requestLaunch -> launchStatus ...
 * 'go' -> create the domain -> launched once it holds its memory). A 'fail' ends launching, as an
 * operator stops when told the host is full; so does a creation that fails after a 'go' (the
 * controller promised memory it did not have), which is counted separately.
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

export interface LaunchRecord {
  name: string;
  requestedAtMs: number;
  /** When the controller said go or fail; null if it never answered. */
  answeredAtMs: number | null;
  outcome: 'admitted' | 'refused' | 'create-failed' | 'pending';
  domid: number | null;
  reason?: string;
}

type State =
  | { kind: 'ready'; atMs: number }
  | { kind: 'asking'; id: string; item: LaunchItem; record: LaunchRecord }
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
      const record: LaunchRecord = { name: item.name, requestedAtMs: nowMs, answeredAtMs: null, outcome: 'pending', domid: null };
      this.records.push(record);
      const id = this.controller.requestLaunch({ memoryKib: item.template.memory, maxmemKib: item.template.maxmem, name: item.name }, obs(), nowMs);
      this.state = { kind: 'asking', id, item, record };
      this.ask(nowMs, obs);
      return;
    }
    if (s.kind === 'asking') this.ask(nowMs, obs);
  }

  private ask(nowMs: number, obs: () => Observation): void {
    const s = this.state;
    if (s.kind !== 'asking') return;
    const status = this.controller.launchStatus(s.id, obs(), nowMs);
    if (status.state === 'wait') return;
    s.record.answeredAtMs = nowMs;
    if (status.state === 'fail') {
      s.record.outcome = 'refused';
      s.record.reason = status.reason;
      this.state = { kind: 'stopped', reason: `${s.item.name} refused: ${status.reason}` };
      return;
    }
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

/**
 * Operators first: a domain's memory/target written by anyone but us (`xl mem-set`, a script) is
 * the operator's decision. The daemon keeps it as a pin: the core leaves the domain alone and
 * counts its memory as fixed, maxmem is raised so the guest can reach the target (within
 * static-max), until `xenballoonctl unpin`. `xenballoonctl pin DOMAIN [SIZE]` pins explicitly.
 *
 * Telling our writes from theirs is by value: every target we wrote (or found at start, which we
 * adopt) is remembered per domain, a few deep, so a read that raced one of our own writes and
 * returned the value before it is not mistaken for an operator's. Pure: no I/O, time passed in.
 */
import type { Action } from '../core/types.js';

/** libxl's LIBXL_MAXMEM_CONSTANT: maxmem = target + videoram + 1 MiB. */
const MAXMEM_SLACK_KIB = 1024;
/** How many of our own recent targets per domain count as ours. */
const OWN_DEPTH = 3;

export type PinSource = 'foreign-write' | 'xenballoonctl';

export interface Pin {
  domid: number;
  /** The domain's name when pinned: a pin restored after a restart applies only to the same domain. */
  name: string | null;
  targetKib: number;
  sinceMs: number;
  source: PinSource;
}

export interface PinnedDomainView {
  domid: number;
  targetKib: number | null;
  maxmemKib: number;
  staticMaxKib: number | null;
  videoramKib: number;
}

export class PinBook {
  private readonly pins = new Map<number, Pin>();
  private readonly own = new Map<number, number[]>();

  /** We are about to write `kib` as this domain's target. */
  noteOwn(domid: number, kib: number): void {
    const list = this.own.get(domid) ?? [];
    if (list.at(-1) !== kib) list.push(kib);
    if (list.length > OWN_DEPTH) list.shift();
    this.own.set(domid, list);
  }

  isOwn(domid: number, kib: number | null): boolean {
    if (kib === null) return true;
    const list = this.own.get(domid);
    return list === undefined || list.includes(kib);
  }

  /**
   * The target just observed for a domain. The first value seen is adopted as ours (it is what
   * we start from), and so is every value while the domain is `building` (new, no report yet);
   * a later value that is none of ours is an operator's write: it becomes (or
   * updates) the domain's pin, which is returned; otherwise null.
   */
  observe(domid: number, name: string | null, targetKib: number | null, nowMs: number, building = false): Pin | null {
    if (targetKib === null) return null;
    const pin = this.pins.get(domid);
    // The toolstack may write a new domain's target more than once while building it.
    if (!this.own.has(domid) || (building && !pin)) {
      this.noteOwn(domid, targetKib);
      return null;
    }
    if (this.isOwn(domid, targetKib)) return null;
    // From now on this value is known: it must not count as a new write at every step.
    this.noteOwn(domid, targetKib);
    if (pin) {
      pin.targetKib = targetKib;
      return pin;
    }
    const p: Pin = { domid, name, targetKib, sinceMs: nowMs, source: 'foreign-write' };
    this.pins.set(domid, p);
    return p;
  }

  pin(domid: number, name: string | null, targetKib: number, nowMs: number, source: PinSource): Pin {
    const p: Pin = { domid, name, targetKib, sinceMs: this.pins.get(domid)?.sinceMs ?? nowMs, source };
    this.pins.set(domid, p);
    return p;
  }

  /** Removes the pin; its target stays (and counts as ours, so it does not pin again). */
  unpin(domid: number): Pin | undefined {
    const p = this.pins.get(domid);
    if (!p) return undefined;
    this.pins.delete(domid);
    this.noteOwn(domid, p.targetKib);
    return p;
  }

  get(domid: number): Pin | undefined {
    return this.pins.get(domid);
  }

  forget(domid: number): void {
    this.pins.delete(domid);
    this.own.delete(domid);
  }

  list(): Pin[] {
    return [...this.pins.values()].sort((a, b) => a.domid - b.domid);
  }

  /** Pins from the state file: kept only for a domain that still exists under the same name. */
  restore(pins: readonly Pin[], nameOf: (domid: number) => string | null | undefined): Pin[] {
    const kept: Pin[] = [];
    for (const p of pins) {
      const name = nameOf(p.domid);
      if (name === undefined || (p.name !== null && name !== p.name)) continue;
      const pin = { ...p };
      this.pins.set(p.domid, pin);
      this.noteOwn(p.domid, p.targetKib);
      kept.push(pin);
    }
    return kept;
  }

  get size(): number {
    return this.pins.size;
  }
}

/**
 * What holding a pin takes: maxmem raised (never lowered) so the guest can reach the pinned
 * target, within static-max; then the target itself, when it is not what the pin says (a pin set
 * with a size, or a target someone changed back).
 */
export function pinActions(pin: Pin, d: PinnedDomainView): Action[] {
  const actions: Action[] = [];
  const reach = d.staticMaxKib === null ? pin.targetKib : Math.min(pin.targetKib, d.staticMaxKib);
  const wantMax = reach + d.videoramKib + MAXMEM_SLACK_KIB;
  // Xen keeps maxmem in pages.
  if (d.domid !== 0 && Math.floor(d.maxmemKib / 4) < Math.floor(wantMax / 4)) actions.push({ kind: 'setMaxmem', domid: d.domid, kib: wantMax });
  if (d.targetKib !== pin.targetKib) actions.push({ kind: 'setTarget', domid: d.domid, kib: pin.targetKib });
  return actions;
}

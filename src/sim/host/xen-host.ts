/**
 * Xen's memory accounting for one host, in 4 KiB pages (integers, so the books balance exactly):
 *
 *   free + scrub + Σ domain tot_pages + Xen's own overhead = total          (checked every tick)
 *
 * - Xen's overhead: the hypervisor's heap and frame table, plus a small amount per domain (libxl
 *   adds LIBXL_PV_EXTRA_MEMORY, 1 MiB, to what a PV domain needs for exactly this).
 * - Outstanding claims are part of `free` (as physinfo reports them) but no other domain may
 *   allocate them: libxl claims a new domain's memory before populating it, so a domain whose
 *   claim succeeded is always built, and creation fails up front when memory is short.
 * - max_pages is the hard cap (XEN_DOMCTL_max_mem): populate beyond it fails. Setting it below
 *   tot_pages is allowed; the domain just cannot grow until it is back under it.
 * - A destroyed domain is `dying` while Xen relinquishes its pages at a finite rate; those pages
 *   are scrubbed (on idle CPUs) before they count as free. Pages a live domain balloons out are
 *   free at once (Xen scrubs only a dying domain's pages unless scrub_domheap is set).
 *
 * The model has no notion of time of its own: `tick(dtMs)` advances builds, teardowns and
 * scrubbing. All sizes at the API are KiB (rounded down to whole pages on the way in).
 */
import { PAGE_KIB } from '../units.js';

export interface XenHostConfig {
  totalKib: number;
  /** The hypervisor's own memory (heap, frame table, ...): never free, never a domain's. */
  xenOverheadKib: number;
  /** Xen memory each domain costs beyond its pages (libxl's LIBXL_PV_EXTRA_MEMORY). */
  perDomainOverheadKib: number;
  /** Scrubbing of pages released by dying domains, KiB per ms. */
  scrubRateKibPerMs: number;
  /** How fast a dying domain's pages are relinquished, KiB per ms. */
  teardownRateKibPerMs: number;
  /** How fast a domain being built is populated, KiB per ms. */
  buildRateKibPerMs: number;
  /** libxl's claim_mode (default on in xl.conf): claim the whole allocation at creation. */
  claims: boolean;
}

export interface CreateDomainSpec {
  name: string;
  /** xl's memory=: what the domain is built with. */
  memoryKib: number;
  /** max_pages at creation; libxl 4.17 sets memory + LIBXL_MAXMEM_CONSTANT (1 MiB). */
  initialMaxKib: number;
  /** Force a domid (dom0); otherwise Xen's rover picks the next one. */
  domid?: number;
  /** Already built (dom0 at boot; a fleet present when the scenario starts). */
  prebuilt?: boolean;
}

export type DomainState = 'building' | 'running' | 'dying';

export interface DomainSnapshot {
  domid: number;
  name: string;
  state: DomainState;
  totKib: number;
  maxKib: number;
  outstandingKib: number;
  /** What the build populates (xl's memory=). */
  memoryKib: number;
}

export type CreateResult = { ok: true; domid: number } | { ok: false; reason: string };

export type HostEvent =
  | { kind: 'built'; domid: number }
  | { kind: 'build-failed'; domid: number; reason: string }
  | { kind: 'gone'; domid: number };

interface Domain {
  domid: number;
  name: string;
  state: DomainState;
  totPages: number;
  maxPages: number;
  claimPages: number;
  memoryPages: number;
  overheadPages: number;
  /** Fractional pages carried between ticks for rate-limited work. */
  carry: number;
}

export class AccountingError extends Error {}

const DOMID_FIRST_RESERVED = 0x7ff0;

function pages(kib: number): number {
  return Math.max(0, Math.floor(kib / PAGE_KIB));
}

export class XenHost {
  readonly totalPages: number;
  private freePages: number;
  private scrubPages = 0;
  private xenPages: number;
  private readonly domains = new Map<number, Domain>();
  private rover = 1;
  /** Σ claimPages, kept incrementally: populate runs for every guest every tick. */
  private claimedPages = 0;
  private scrubCarry = 0;

  constructor(readonly config: XenHostConfig) {
    this.totalPages = pages(config.totalKib);
    this.xenPages = pages(config.xenOverheadKib);
    if (this.xenPages > this.totalPages) throw new Error('Xen overhead exceeds host memory');
    this.freePages = this.totalPages - this.xenPages;
  }

  // ---- queries ------------------------------------------------------------------------------

  physinfo(): { totalKib: number; freeKib: number; scrubKib: number; outstandingKib: number } {
    return {
      totalKib: this.totalPages * PAGE_KIB,
      freeKib: this.freePages * PAGE_KIB,
      scrubKib: this.scrubPages * PAGE_KIB,
      outstandingKib: this.outstandingPages() * PAGE_KIB,
    };
  }

  /** Xen's own memory: the base overhead plus every live domain's structures. */
  overheadKib(): number {
    return this.xenPages * PAGE_KIB;
  }

  domain(domid: number): DomainSnapshot | undefined {
    const d = this.domains.get(domid);
    return d ? snapshot(d) : undefined;
  }

  /** Every domain, ordered by domid (as xc_domain_getinfolist returns them). */
  listDomains(): DomainSnapshot[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid).map(snapshot);
  }

  domainCount(): number {
    return this.domains.size;
  }

  private outstandingPages(): number {
    return this.claimedPages;
  }

  private setClaim(d: Domain, claimPages: number): void {
    this.claimedPages += claimPages - d.claimPages;
    d.claimPages = claimPages;
  }

  /** Free pages a domain may take: free minus every other domain's outstanding claim. */
  private availableTo(d: Domain | null): number {
    const others = this.outstandingPages() - (d ? d.claimPages : 0);
    return Math.max(0, this.freePages - others);
  }

  // ---- domain lifecycle ---------------------------------------------------------------------

  createDomain(spec: CreateDomainSpec): CreateResult {
    const memoryPages = pages(spec.memoryKib);
    const overheadPages = pages(this.config.perDomainOverheadKib);
    let domid = spec.domid;
    if (domid === undefined) {
      const picked = this.pickDomid();
      if (picked === null) return { ok: false, reason: 'no free domain id' };
      domid = picked;
    } else if (this.domains.has(domid)) {
      return { ok: false, reason: `domain ${domid} exists` };
    }
    const needNow = overheadPages + (spec.prebuilt || this.config.claims ? memoryPages : 0);
    if (this.availableTo(null) < needNow) {
      return {
        ok: false,
        reason: `not enough memory: need ${(needNow * PAGE_KIB) / 1024} MiB, ` +
          `${(this.availableTo(null) * PAGE_KIB) / 1024} MiB free and unclaimed`,
      };
    }
    const d: Domain = {
      domid,
      name: spec.name,
      state: spec.prebuilt ? 'running' : 'building',
      totPages: 0,
      maxPages: pages(spec.initialMaxKib),
      claimPages: 0,
      memoryPages,
      overheadPages,
      carry: 0,
    };
    this.freePages -= overheadPages;
    this.xenPages += overheadPages;
    if (spec.prebuilt) {
      this.freePages -= memoryPages;
      d.totPages = memoryPages;
    }
    this.domains.set(domid, d);
    if (!spec.prebuilt && this.config.claims) this.setClaim(d, memoryPages);
    return { ok: true, domid };
  }

  private pickDomid(): number | null {
    for (let i = 0; i < DOMID_FIRST_RESERVED; i++) {
      const candidate = this.rover;
      this.rover = this.rover + 1 >= DOMID_FIRST_RESERVED ? 1 : this.rover + 1;
      if (!this.domains.has(candidate)) return candidate;
    }
    return null;
  }

  /** xl destroy: the domain starts dying; its pages come back through teardown and scrub. */
  destroyDomain(domid: number): boolean {
    const d = this.domains.get(domid);
    if (!d || d.state === 'dying') return false;
    d.state = 'dying';
    this.setClaim(d, 0);
    d.carry = 0;
    return true;
  }

  // ---- hypercalls a running domain or the toolstack makes ------------------------------------

  /** XEN_DOMCTL_max_mem: max_pages = kib / 4 (rounded down, as Xen shifts). */
  setMaxmem(domid: number, kib: number): boolean {
    const d = this.domains.get(domid);
    if (!d || d.state === 'dying') return false;
    d.maxPages = pages(kib);
    return true;
  }

  /** The balloon driver deflating (populate_physmap): returns the KiB actually granted. */
  populate(domid: number, kib: number): number {
    const d = this.domains.get(domid);
    if (!d || d.state !== 'running') return 0;
    const want = pages(kib);
    const n = Math.max(0, Math.min(want, d.maxPages - d.totPages, this.availableTo(d)));
    d.totPages += n;
    this.freePages -= n;
    return n * PAGE_KIB;
  }

  /** The balloon driver inflating (decrease_reservation): returns the KiB actually released. */
  release(domid: number, kib: number): number {
    const d = this.domains.get(domid);
    if (!d || d.state !== 'running') return 0;
    const n = Math.min(pages(kib), d.totPages);
    d.totPages -= n;
    this.freePages += n;
    return n * PAGE_KIB;
  }

  // ---- time ---------------------------------------------------------------------------------

  tick(dtMs: number): HostEvent[] {
    const events: HostEvent[] = [];
    for (const d of [...this.domains.values()]) {
      if (d.state === 'building') this.build(d, dtMs, events);
      else if (d.state === 'dying') this.teardown(d, dtMs, events);
    }
    this.scrub(dtMs);
    return events;
  }

  private build(d: Domain, dtMs: number, events: HostEvent[]): void {
    const budget = d.carry + this.config.buildRateKibPerMs * dtMs / PAGE_KIB;
    const want = Math.min(Math.floor(budget), d.memoryPages - d.totPages);
    d.carry = budget - Math.floor(budget);
    let n = want;
    if (d.claimPages > 0) {
      n = Math.min(want, d.claimPages);
      this.setClaim(d, d.claimPages - n);
    } else {
      n = Math.min(want, this.availableTo(d));
    }
    d.totPages += n;
    this.freePages -= n;
    if (d.totPages >= d.memoryPages) {
      d.state = 'running';
      d.carry = 0;
      this.setClaim(d, 0);
      events.push({ kind: 'built', domid: d.domid });
    } else if (n < want) {
      // Without a claim, populate ran out of memory half-way: libxl destroys the domain.
      events.push({ kind: 'build-failed', domid: d.domid, reason: 'out of memory while populating' });
      this.destroyDomain(d.domid);
    }
  }

  private teardown(d: Domain, dtMs: number, events: HostEvent[]): void {
    const budget = d.carry + this.config.teardownRateKibPerMs * dtMs / PAGE_KIB;
    const n = Math.min(Math.floor(budget), d.totPages);
    d.carry = budget - Math.floor(budget);
    d.totPages -= n;
    this.scrubPages += n;
    if (d.totPages === 0) {
      this.xenPages -= d.overheadPages;
      this.freePages += d.overheadPages;
      this.domains.delete(d.domid);
      events.push({ kind: 'gone', domid: d.domid });
    }
  }

  private scrub(dtMs: number): void {
    if (this.scrubPages === 0) {
      this.scrubCarry = 0;
      return;
    }
    const budget = this.scrubCarry + this.config.scrubRateKibPerMs * dtMs / PAGE_KIB;
    const n = Math.min(Math.floor(budget), this.scrubPages);
    this.scrubCarry = budget - Math.floor(budget);
    this.scrubPages -= n;
    this.freePages += n;
  }

  // ---- the books ----------------------------------------------------------------------------

  /** Throws AccountingError when a page was created or lost, or a cap or claim is violated. */
  checkInvariants(): void {
    let domPages = 0;
    let domOverhead = 0;
    let claims = 0;
    for (const d of this.domains.values()) {
      if (!Number.isInteger(d.totPages) || d.totPages < 0) throw new AccountingError(`dom${d.domid} tot_pages ${d.totPages}`);
      if (d.claimPages < 0) throw new AccountingError(`dom${d.domid} claim ${d.claimPages}`);
      domPages += d.totPages;
      domOverhead += d.overheadPages;
      claims += d.claimPages;
    }
    if (claims !== this.claimedPages) throw new AccountingError(`claim total ${this.claimedPages} != Σ claims ${claims}`);
    const baseOverhead = pages(this.config.xenOverheadKib);
    if (this.xenPages !== baseOverhead + domOverhead) {
      throw new AccountingError(`Xen overhead ${this.xenPages} != ${baseOverhead} + ${domOverhead}`);
    }
    if (this.freePages < 0 || this.scrubPages < 0) {
      throw new AccountingError(`negative free (${this.freePages}) or scrub (${this.scrubPages})`);
    }
    const sum = this.freePages + this.scrubPages + domPages + this.xenPages;
    if (sum !== this.totalPages) {
      throw new AccountingError(
        `free ${this.freePages} + scrub ${this.scrubPages} + domains ${domPages} + xen ${this.xenPages} = ${sum} != total ${this.totalPages}`,
      );
    }
    if (this.outstandingPages() > this.freePages) {
      throw new AccountingError(`claims ${this.outstandingPages()} exceed free ${this.freePages}`);
    }
  }
}

function snapshot(d: Domain): DomainSnapshot {
  return {
    domid: d.domid,
    name: d.name,
    state: d.state,
    totKib: d.totPages * PAGE_KIB,
    maxKib: d.maxPages * PAGE_KIB,
    outstandingKib: d.claimPages * PAGE_KIB,
    memoryKib: d.memoryPages * PAGE_KIB,
  };
}

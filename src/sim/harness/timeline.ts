/**
 * Memory over time, sampled every `sample` of the scenario: per domain (current, target, maxmem,
 * what the guest does with it) and for the host (free, scrub, claims). Written as CSV and drawn
 * as SVG (svg.ts) so people can look rather than read.
 */
import type { Simulation } from '../model.js';

export interface DomainSample {
  tS: number;
  domid: number;
  name: string;
  group: string;
  currentMib: number;
  targetMib: number;
  maxmemMib: number;
  anonMib: number;
  cacheMib: number;
  freeMib: number;
  swapMib: number;
  committedMib: number;
  someAvg10: number;
}

export interface HostSample {
  tS: number;
  freeMib: number;
  scrubMib: number;
  outstandingMib: number;
  guests: number;
}

const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

export class Timeline {
  readonly domains: DomainSample[] = [];
  readonly host: HostSample[] = [];

  sample(sim: Simulation): void {
    const tS = sim.nowMs / 1000;
    const p = sim.host.physinfo();
    let guests = 0;
    for (const info of sim.host.listDomains()) {
      if (info.domid === 0) continue;
      const d = sim.domains.get(info.domid);
      if (!d) continue;
      guests++;
      const s = d.guest?.snapshot();
      this.domains.push({
        tS,
        domid: d.domid,
        name: d.name,
        group: d.template.name,
        currentMib: mib(info.totKib),
        targetMib: mib(d.targetKib),
        maxmemMib: mib(info.maxKib),
        anonMib: mib(s?.anonKib ?? 0),
        cacheMib: mib(s?.cachedKib ?? 0),
        freeMib: mib(s?.freeKib ?? 0),
        swapMib: mib(s?.swapUsedKib ?? 0),
        committedMib: mib(s?.committedKib ?? 0),
        someAvg10: Math.round((d.guest?.someAvg10 ?? 0) * 100) / 100,
      });
    }
    this.host.push({ tS, freeMib: mib(p.freeKib), scrubMib: mib(p.scrubKib), outstandingMib: mib(p.outstandingKib), guests });
  }

  domainsCsv(): string {
    const head = 't_s,domid,name,current_mib,target_mib,maxmem_mib,anon_mib,cache_mib,free_mib,swap_mib,committed_mib,psi_some_avg10';
    const rows = this.domains.map((r) =>
      [r.tS, r.domid, r.name, r.currentMib, r.targetMib, r.maxmemMib, r.anonMib, r.cacheMib, r.freeMib, r.swapMib, r.committedMib, r.someAvg10].join(','),
    );
    return [head, ...rows].join('\n') + '\n';
  }

  hostCsv(): string {
    const head = 't_s,free_mib,scrub_mib,outstanding_mib,guests';
    return [head, ...this.host.map((r) => [r.tS, r.freeMib, r.scrubMib, r.outstandingMib, r.guests].join(','))].join('\n') + '\n';
  }
}

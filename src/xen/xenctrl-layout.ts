/**
 * Where libxenctrl's structs keep the fields xenballoond reads, per Xen release, and the pure
 * decoders that turn those bytes into PhysInfo/DomainInfo. The structs (xc_physinfo_t =
 * struct xen_sysctl_physinfo, xc_domaininfo_t = struct xen_domctl_getdomaininfo) change between
 * releases with the sysctl/domctl interface version, so a release is only supported once its
 * offsets were checked against its headers: test/xen/xenctrl-layout.test.ts compiles a C
 * program against /usr/include/xenctrl.h and compares every number here with offsetof/sizeof.
 */
import type { DomainInfo, PhysInfo } from './hypervisor.js';

export interface XenctrlLayout {
  /** The libxenctrl soname of this release (its ABI is versioned by the Xen release). */
  library: string;
  /** XEN_DOMCTL_INTERFACE_VERSION / XEN_SYSCTL_INTERFACE_VERSION of this release's headers. */
  interfaces: { domctl: number; sysctl: number };
  physinfo: {
    size: number;
    totalPages: number;
    freePages: number;
    scrubPages: number;
    outstandingPages: number;
  };
  domaininfo: {
    size: number;
    domain: number;
    flags: number;
    totPages: number;
    maxPages: number;
    outstandingPages: number;
  };
  /** Bit numbers of XEN_DOMINF_* in domaininfo.flags, and where the shutdown code sits. */
  dominf: {
    dying: number;
    hvm: number;
    shutdown: number;
    paused: number;
    shutdownShift: number;
    shutdownMask: number;
  };
}

/** x86_64 layouts, keyed by "major.minor" as xc_version(XENVER_version) reports it. */
export const XENCTRL_LAYOUTS: Readonly<Record<string, XenctrlLayout>> = {
  '4.17': {
    library: 'libxenctrl.so.4.17',
    interfaces: { domctl: 0x15, sysctl: 0x15 },
    physinfo: { size: 112, totalPages: 40, freePages: 48, scrubPages: 56, outstandingPages: 64 },
    domaininfo: { size: 112, domain: 0, flags: 4, totPages: 8, maxPages: 16, outstandingPages: 24 },
    dominf: { dying: 0, hvm: 1, shutdown: 2, paused: 3, shutdownShift: 16, shutdownMask: 0xff },
  },
};

export const XENVER_VERSION = 0;
export const XENVER_EXTRAVERSION = 1;
/** sizeof(xen_extraversion_t) */
export const XEN_EXTRAVERSION_LEN = 16;
/** Domain ids at or above this are special (DOMID_SELF, DOMID_IO, ...), never real domains. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
/** Xen's page size on x86, in KiB. */
export const PAGE_KIB = 4;

/** The supported releases, for messages. */
export function supportedReleases(): string[] {
  return Object.keys(XENCTRL_LAYOUTS).sort();
}

/**
 * The layout for a release, or null when its structs were never verified (the caller refuses
 * to run rather than misread memory).
 */
export function layoutFor(release: string, arch: string = process.arch): XenctrlLayout | null {
  if (arch !== 'x64') return null;
  return XENCTRL_LAYOUTS[release] ?? null;
}

/** "major.minor" from xc_version(XENVER_version)'s return value (major << 16 | minor). */
export function releaseFromVersion(v: number): string {
  return `${v >>> 16}.${v & 0xffff}`;
}

function pagesKib(buf: Buffer, offset: number): number {
  // Pages fit a double exactly up to 2^53; no host has that many.
  return Number(buf.readBigUInt64LE(offset)) * PAGE_KIB;
}

export function decodePhysinfo(buf: Buffer, layout: XenctrlLayout): PhysInfo {
  const p = layout.physinfo;
  if (buf.length < p.size) throw new RangeError(`physinfo buffer is ${buf.length} bytes, need ${p.size}`);
  return {
    totalKib: pagesKib(buf, p.totalPages),
    freeKib: pagesKib(buf, p.freePages),
    scrubKib: pagesKib(buf, p.scrubPages),
    outstandingKib: pagesKib(buf, p.outstandingPages),
  };
}

/** Decode entry `index` of an xc_domaininfo_t array. */
export function decodeDomaininfo(buf: Buffer, index: number, layout: XenctrlLayout): DomainInfo {
  const d = layout.domaininfo;
  const base = index * d.size;
  if (buf.length < base + d.size) throw new RangeError(`domaininfo entry ${index} is outside the buffer`);
  const flags = buf.readUInt32LE(base + d.flags);
  const bit = (n: number): boolean => ((flags >>> n) & 1) === 1;
  const f = layout.dominf;
  const shutdown = bit(f.shutdown);
  return {
    domid: buf.readUInt16LE(base + d.domain),
    totKib: pagesKib(buf, base + d.totPages),
    maxKib: pagesKib(buf, base + d.maxPages),
    outstandingKib: pagesKib(buf, base + d.outstandingPages),
    dying: bit(f.dying),
    shutdown,
    shutdownReason: shutdown ? (flags >>> f.shutdownShift) & f.shutdownMask : 0,
    hvm: bit(f.hvm),
    paused: bit(f.paused),
  };
}

/**
 * Every domain, by fetching batches of `batch` entries starting after the last domid seen
 * (xc_domain_getinfolist returns domains with id >= first, in id order). A short batch ends
 * the list. Throws if the source ever goes backwards, rather than looping forever.
 */
export async function listAllDomains(
  fetchBatch: (firstDomid: number, max: number) => Promise<DomainInfo[]>,
  batch = 256,
): Promise<DomainInfo[]> {
  const all: DomainInfo[] = [];
  let first = 0;
  while (first < DOMID_FIRST_RESERVED) {
    const got = await fetchBatch(first, batch);
    for (const d of got) {
      if (d.domid < first) throw new Error(`domain list went backwards: domid ${d.domid} after asking from ${first}`);
      if (d.domid < DOMID_FIRST_RESERVED) all.push(d);
    }
    const last = got[got.length - 1];
    if (got.length < batch || last === undefined) break;
    first = last.domid + 1;
  }
  return all;
}

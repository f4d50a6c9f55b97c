/**
 * What the daemon needs from the hypervisor. Backends: libxenctrl through koffi (real Xen) and
 * `sim:PATH` (the simulated host's hypervisor.sock). Memory in KiB.
 *
 * Contract shared by src/xen, src/daemon and src/sim. Extend freely; do not rename.
 */
export interface PhysInfo {
  totalKib: number;
  freeKib: number;
  scrubKib: number;
  outstandingKib: number;
}

export interface DomainInfo {
  domid: number;
  /** tot_pages * 4 */
  totKib: number;
  /** max_pages * 4 */
  maxKib: number;
  outstandingKib: number;
  dying: boolean;
  shutdown: boolean;
  /** (flags >> 16) & 0xff when shutdown */
  shutdownReason: number;
  hvm: boolean;
  paused: boolean;
}

export interface Hypervisor {
  /** e.g. "4.17" for Xen, "sim" for the simulator. */
  readonly version: string;
  physinfo(): Promise<PhysInfo>;
  /** Every domain, dom0 included, ordered by domid. */
  domains(): Promise<DomainInfo[]>;
  setMaxmem(domid: number, kib: number): Promise<void>;
  close(): Promise<void>;
}

/*
 * Selfballooning as in the paper (Magenheimer 2008) and its guest-side xenballoond: the guest
 * sets its own balloon target from Committed_AS, moving down slowly (down-hysteresis) and up
 * quickly (up-hysteresis), never below a floor taken from the xenlinux balloon driver's
 * minimum_target curve. Pure functions; xenballoon-report does the I/O.
 */
#ifndef XB_SELFBALLOON_H
#define XB_SELFBALLOON_H

struct xb_self_params {
	long long reserve_kib; /* added to Committed_AS */
	long long down;        /* shrink by 1/down of the gap per step (paper: 10) */
	long long up;          /* grow by 1/up of the gap per step (paper: 1 = at once) */
	long long floor_kib;   /* never below */
	long long ceiling_kib; /* never above (static-max); 0 = no ceiling known */
};

/*
 * xenlinux minimum_target(): a floor in KiB for a guest whose maximum memory is maxmem_kib.
 * Continuous piecewise linear in MiB: 8 + max/2 below 128 MiB, 40 + max/4 below 512 MiB,
 * 104 + max/8 below 2 GiB, 296 + max/32 above (e.g. 1 GiB -> 232 MiB).
 */
long long xb_xenlinux_min_kib(long long maxmem_kib);

/*
 * The next balloon target (KiB). current_kib is what the domain holds now (the balloon
 * driver's current_kb); overhead_kib is what the domain holds beyond MemTotal (the kernel's own
 * reserved memory), so that MemTotal ends up near Committed_AS + reserve.
 */
long long xb_self_next_target(const struct xb_self_params *p, long long committed_as_kib, long long current_kib,
			      long long overhead_kib);

#endif

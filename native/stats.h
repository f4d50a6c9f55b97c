/*
 * What xenballoon-report samples from /proc and /sys, and the v1 record it publishes
 * (docs/guest-protocol.md). Reading is kept apart from publishing so tests can check the exact
 * bytes (xenballoon-report --print) against the TypeScript encoder.
 */
#ifndef XB_STATS_H
#define XB_STATS_H

#include <stddef.h>

/* A real xenstored refuses a value over 2048 bytes from an unprivileged domain. */
#define XB_RECORD_MAX 2048
#define XB_UNKNOWN (-1LL)

/* Every field is a non-negative value within the v1 bounds, or XB_UNKNOWN. */
struct xb_stats {
	long long uptime_s;
	/* /proc/meminfo, KiB */
	long long mem_total, mem_free, mem_available, buffers, cached, shmem;
	long long swap_total, swap_free, committed_as;
	/* balloon driver: /sys/devices/system/xen_memory/xen_memory0/info/current_kb */
	long long balloon_current;
	/* /proc/vmstat counters since boot */
	long long pswpin, pswpout, pgmajfault, workingset_refault, oom_kill;
	/* /proc/pressure/memory: avg10 in hundredths of a percent, totals in microseconds */
	long long psi_some_avg10_bp, psi_full_avg10_bp, psi_some_total_us, psi_full_total_us;
};

void xb_stats_init(struct xb_stats *st);

/* Each parser fills the fields its text carries and leaves the others untouched. */
void xb_parse_meminfo(const char *text, struct xb_stats *st);
void xb_parse_vmstat(const char *text, struct xb_stats *st);
/* Sets all four PSI fields or none (a kernel without a "full" line gives none). */
void xb_parse_pressure(const char *text, struct xb_stats *st);
/* "12345.67 890.12" -> 12345 */
void xb_parse_uptime(const char *text, struct xb_stats *st);
/* A sysfs value in KiB ("131072\n") -> *out, or leaves it. */
void xb_parse_sysfs_kib(const char *text, long long *out);

/*
 * Reads proc_dir/{meminfo,vmstat,pressure/memory,uptime} and, when sys_dir is given,
 * sys_dir/devices/system/xen_memory/xen_memory0/info/current_kb. Then clamps the fields the
 * record's consistency rules bound (free, available, buffers, cached, shmem <= total; swap free
 * <= swap total), since a kernel's counters are read without a common lock.
 * Returns 0 when every required field is known; otherwise -1 and a message in err.
 */
int xb_collect(const char *proc_dir, const char *sys_dir, struct xb_stats *st, char *err, size_t errlen);

/* The required v1 fields are all known. Names the first missing one in *missing otherwise. */
int xb_stats_complete(const struct xb_stats *st, const char **missing);

/* Formats the v1 record. Returns its length (<= XB_RECORD_MAX), or -1 if incomplete/too big. */
int xb_format_v1(const struct xb_stats *st, long long seq, char *buf, size_t cap);

#endif

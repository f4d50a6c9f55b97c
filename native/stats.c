#define _POSIX_C_SOURCE 200809L
#include "stats.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void xb_stats_init(struct xb_stats *st)
{
	long long *f = (long long *)st;
	for (size_t i = 0; i < sizeof(*st) / sizeof(long long); i++)
		f[i] = XB_UNKNOWN;
}

/* Digits at *p up to max, advancing *p; -1 on no digits or overflow (the whole run is consumed). */
static long long take_uint(const char **p, long long max)
{
	const char *s = *p;
	long long v = 0;
	int bad = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		int d = *s - '0';
		if (bad || v > (max - d) / 10)
			bad = 1;
		else
			v = v * 10 + d;
	}
	*p = s;
	return bad ? -1 : v;
}

static const char *line_end(const char *s)
{
	const char *nl = strchr(s, '\n');
	return nl != NULL ? nl : s + strlen(s);
}

struct meminfo_key {
	const char *name;
	size_t offset;
};

#define MI(name, field) { name, offsetof(struct xb_stats, field) }
static const struct meminfo_key meminfo_keys[] = {
	MI("MemTotal", mem_total),     MI("MemFree", mem_free),     MI("MemAvailable", mem_available),
	MI("Buffers", buffers),        MI("Cached", cached),        MI("Shmem", shmem),
	MI("SwapTotal", swap_total),   MI("SwapFree", swap_free),   MI("Committed_AS", committed_as),
};

void xb_parse_meminfo(const char *text, struct xb_stats *st)
{
	for (const char *line = text; *line != '\0';) {
		const char *end = line_end(line);
		const char *colon = memchr(line, ':', (size_t)(end - line));
		if (colon != NULL) {
			size_t klen = (size_t)(colon - line);
			for (size_t i = 0; i < sizeof(meminfo_keys) / sizeof(meminfo_keys[0]); i++) {
				const struct meminfo_key *k = &meminfo_keys[i];
				if (strlen(k->name) != klen || memcmp(k->name, line, klen) != 0)
					continue;
				const char *p = colon + 1;
				while (*p == ' ')
					p++;
				long long v = take_uint(&p, XB_KIB_MAX);
				/* The unit must be there: a line without " kB" is not a size we understand. */
				if (v >= 0 && (size_t)(end - p) == 3 && memcmp(p, " kB", 3) == 0) {
					long long *field = (long long *)((char *)st + k->offset);
					if (*field == XB_UNKNOWN)
						*field = v;
				}
				break;
			}
		}
		line = *end == '\n' ? end + 1 : end;
	}
}

void xb_parse_vmstat(const char *text, struct xb_stats *st)
{
	long long refault = XB_UNKNOWN, refault_anon = XB_UNKNOWN, refault_file = XB_UNKNOWN;
	for (const char *line = text; *line != '\0';) {
		const char *end = line_end(line);
		const char *sp = memchr(line, ' ', (size_t)(end - line));
		if (sp != NULL) {
			size_t klen = (size_t)(sp - line);
			const char *p = sp + 1;
			long long v = take_uint(&p, XB_COUNTER_MAX);
			long long *field = NULL;
#define IS(name) (klen == strlen(name) && memcmp(line, name, klen) == 0)
			if (IS("pswpin"))
				field = &st->pswpin;
			else if (IS("pswpout"))
				field = &st->pswpout;
			else if (IS("pgmajfault"))
				field = &st->pgmajfault;
			else if (IS("oom_kill"))
				field = &st->oom_kill;
			else if (IS("workingset_refault"))
				field = &refault;
			else if (IS("workingset_refault_anon"))
				field = &refault_anon;
			else if (IS("workingset_refault_file"))
				field = &refault_file;
#undef IS
			if (field != NULL && v >= 0 && p == end && *field == XB_UNKNOWN)
				*field = v;
		}
		line = *end == '\n' ? end + 1 : end;
	}
	/* Linux 5.9 split workingset_refault into anon and file; the record carries their sum. */
	if (refault_anon != XB_UNKNOWN || refault_file != XB_UNKNOWN) {
		long long sum = (refault_anon > 0 ? refault_anon : 0) + (refault_file > 0 ? refault_file : 0);
		if (sum <= XB_COUNTER_MAX)
			st->workingset_refault = sum;
	} else if (refault != XB_UNKNOWN) {
		st->workingset_refault = refault;
	}
}

/* "some avg10=1.23 avg60=... avg300=... total=456" -> avg10 in bp and total */
static int parse_psi_line(const char *line, const char *end, const char *kind, long long *avg_bp, long long *total)
{
	size_t klen = strlen(kind);
	if ((size_t)(end - line) < klen + 1 || memcmp(line, kind, klen) != 0 || line[klen] != ' ')
		return -1;
	const char *p = line + klen + 1;
	if (strncmp(p, "avg10=", 6) != 0)
		return -1;
	p += 6;
	long long whole = take_uint(&p, 100);
	if (whole < 0 || *p != '.' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9')
		return -1;
	long long bp = whole * 100 + (p[1] - '0') * 10 + (p[2] - '0');
	if (bp > 10000)
		return -1;
	const char *t = NULL;
	for (const char *q = p; q + 7 <= end; q++) {
		if (memcmp(q, " total=", 7) == 0) {
			t = q + 7;
			break;
		}
	}
	if (t == NULL)
		return -1;
	long long tot = take_uint(&t, XB_COUNTER_MAX);
	if (tot < 0 || t != end)
		return -1;
	*avg_bp = bp;
	*total = tot;
	return 0;
}

void xb_parse_pressure(const char *text, struct xb_stats *st)
{
	long long some_avg = -1, some_tot = -1, full_avg = -1, full_tot = -1;
	for (const char *line = text; *line != '\0';) {
		const char *end = line_end(line);
		long long a, t;
		if (some_avg < 0 && parse_psi_line(line, end, "some", &a, &t) == 0) {
			some_avg = a;
			some_tot = t;
		} else if (full_avg < 0 && parse_psi_line(line, end, "full", &a, &t) == 0) {
			full_avg = a;
			full_tot = t;
		}
		line = *end == '\n' ? end + 1 : end;
	}
	if (some_avg >= 0 && full_avg >= 0) {
		st->psi_some_avg10_bp = some_avg;
		st->psi_some_total_us = some_tot;
		st->psi_full_avg10_bp = full_avg;
		st->psi_full_total_us = full_tot;
	}
}

void xb_parse_uptime(const char *text, struct xb_stats *st)
{
	const char *p = text;
	long long v = take_uint(&p, XB_COUNTER_MAX);
	if (v >= 0 && (*p == '.' || *p == ' ' || *p == '\n' || *p == '\0'))
		st->uptime_s = v;
}

void xb_parse_sysfs_kib(const char *text, long long *out)
{
	const char *p = text;
	long long v = take_uint(&p, XB_KIB_MAX);
	if (v >= 0 && (*p == '\n' || *p == '\0'))
		*out = v;
}

static void clamp_to(long long *v, long long max)
{
	if (*v != XB_UNKNOWN && max != XB_UNKNOWN && *v > max)
		*v = max;
}

int xb_stats_complete(const struct xb_stats *st, const char **missing)
{
	const char *m = NULL;
	if (st->uptime_s == XB_UNKNOWN) m = "uptime";
	else if (st->mem_total == XB_UNKNOWN || st->mem_total == 0) m = "MemTotal";
	else if (st->mem_free == XB_UNKNOWN) m = "MemFree";
	else if (st->buffers == XB_UNKNOWN) m = "Buffers";
	else if (st->cached == XB_UNKNOWN) m = "Cached";
	else if (st->swap_total == XB_UNKNOWN) m = "SwapTotal";
	else if (st->swap_free == XB_UNKNOWN) m = "SwapFree";
	else if (st->committed_as == XB_UNKNOWN) m = "Committed_AS";
	if (missing != NULL)
		*missing = m;
	return m == NULL ? 0 : -1;
}

int xb_collect(const char *proc_dir, const char *sys_dir, struct xb_stats *st, char *err, size_t errlen)
{
	static char buf[65536];
	char path[4096];
	const char *missing;

	xb_stats_init(st);
	if (xb_join(path, sizeof(path), proc_dir, "meminfo") != 0 || xb_read_file(path, buf, sizeof(buf), NULL) != 0) {
		snprintf(err, errlen, "cannot read %s/meminfo: %s", proc_dir, strerror(errno));
		return -1;
	}
	xb_parse_meminfo(buf, st);
	if (xb_join(path, sizeof(path), proc_dir, "uptime") != 0 || xb_read_file(path, buf, sizeof(buf), NULL) != 0) {
		snprintf(err, errlen, "cannot read %s/uptime: %s", proc_dir, strerror(errno));
		return -1;
	}
	xb_parse_uptime(buf, st);
	/* vmstat and PSI are optional: old kernels, CONFIG_VM_EVENT_COUNTERS=n, psi=0. */
	if (xb_join(path, sizeof(path), proc_dir, "vmstat") == 0 && xb_read_file(path, buf, sizeof(buf), NULL) == 0)
		xb_parse_vmstat(buf, st);
	if (xb_join(path, sizeof(path), proc_dir, "pressure/memory") == 0 &&
	    xb_read_file(path, buf, sizeof(buf), NULL) == 0)
		xb_parse_pressure(buf, st);
	if (sys_dir != NULL &&
	    xb_join(path, sizeof(path), sys_dir, "devices/system/xen_memory/xen_memory0/info/current_kb") == 0 &&
	    xb_read_file(path, buf, sizeof(buf), NULL) == 0)
		xb_parse_sysfs_kib(buf, &st->balloon_current);

	if (xb_stats_complete(st, &missing) != 0) {
		snprintf(err, errlen, "%s/%s has no usable %s", proc_dir,
			 strcmp(missing, "uptime") == 0 ? "uptime" : "meminfo", missing);
		return -1;
	}
	clamp_to(&st->mem_free, st->mem_total);
	clamp_to(&st->mem_available, st->mem_total);
	clamp_to(&st->buffers, st->mem_total);
	clamp_to(&st->cached, st->mem_total);
	clamp_to(&st->shmem, st->mem_total);
	clamp_to(&st->swap_free, st->swap_total);
	return 0;
}

int xb_format_v1(const struct xb_stats *st, long long seq, char *buf, size_t cap)
{
	if (xb_stats_complete(st, NULL) != 0 || seq < 0 || seq > XB_COUNTER_MAX)
		return -1;
	struct field {
		const char *key;
		long long v;
	} fields[] = {
		{ "seq", seq },
		{ "uptime_s", st->uptime_s },
		{ "mem_total_kib", st->mem_total },
		{ "mem_free_kib", st->mem_free },
		{ "mem_available_kib", st->mem_available },
		{ "buffers_kib", st->buffers },
		{ "cached_kib", st->cached },
		{ "shmem_kib", st->shmem },
		{ "swap_total_kib", st->swap_total },
		{ "swap_free_kib", st->swap_free },
		{ "committed_as_kib", st->committed_as },
		{ "balloon_current_kib", st->balloon_current },
		{ "pswpin", st->pswpin },
		{ "pswpout", st->pswpout },
		{ "pgmajfault", st->pgmajfault },
		{ "workingset_refault", st->workingset_refault },
		{ "oom_kill", st->oom_kill },
		{ "psi_some_avg10_bp", st->psi_some_avg10_bp },
		{ "psi_full_avg10_bp", st->psi_full_avg10_bp },
		{ "psi_some_total_us", st->psi_some_total_us },
		{ "psi_full_total_us", st->psi_full_total_us },
	};
	size_t len = 0;
	int n = snprintf(buf, cap, "v=1\n");
	if (n < 0 || (size_t)n >= cap)
		return -1;
	len = (size_t)n;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (fields[i].v == XB_UNKNOWN)
			continue; /* optional and absent: the key is left out */
		n = snprintf(buf + len, cap - len, "%s=%lld\n", fields[i].key, fields[i].v);
		if (n < 0 || (size_t)n >= cap - len)
			return -1;
		len += (size_t)n;
	}
	return len <= XB_RECORD_MAX ? (int)len : -1;
}

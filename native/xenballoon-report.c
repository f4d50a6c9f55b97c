/*
 * xenballoon-report: the guest half of xenballoond. Samples /proc/meminfo, /proc/vmstat,
 * /proc/pressure/memory, /proc/uptime and the balloon driver's current_kb, and publishes one
 * versioned record (docs/guest-protocol.md) to its own data/xenballoon/report in xenstore
 * whenever something significant changed, and at least every heartbeat. With --self it also
 * balloons the guest itself, as the paper's xenballoond did.
 *
 * Built to run anywhere a guest can run it: a systemd service, or a busybox initrd with only
 * libxenstore, libxentoolcore and libc (or statically linked: make build-native-static).
 */
#define _GNU_SOURCE
#include "common.h"
#include "selfballoon.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#define PROG "xenballoon-report"
/* Never publish more often than this, whatever the interval and the changes. */
#define MIN_PUBLISH_GAP_MS 250
#define BACKOFF_FIRST_MS 1000
#define BACKOFF_MAX_MS 60000
/* --self leaves target_kb alone for changes smaller than this (keeps the driver quiet). */
#define SELF_MIN_STEP_KIB 256
#define BALLOON_DIR "devices/system/xen_memory/xen_memory0"

struct options {
	const char *proc_dir;
	const char *sys_dir;
	const char *key;
	bool once, print, publish, self, verbose;
	long long interval_ms, heartbeat_ms;
	long long threshold_mem_kib, threshold_events, threshold_stall_us;
	long long self_reserve_kib, self_down, self_up, self_min_kib, self_maxmem_kib;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t in_xenstore_call;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	/* libxenstore retries reads interrupted by signals, so a hung xenstored would hold us
	 * forever: leave at once. A xenstore write is atomic, so nothing is left half-done. */
	if (in_xenstore_call)
		_exit(0);
}

static bool verbose;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs(PROG ": ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *out)
{
	fputs("usage: " PROG " [options]\n"
	      "Publishes this guest's memory statistics to xenstore for the dom0 xenballoond.\n"
	      "\n"
	      "  --once                 sample and publish once, then exit (exit 1 if it failed)\n"
	      "  --print                write records to stdout instead of xenstore\n"
	      "  --interval SEC         sampling period (default 1; 0.25 to 3600)\n"
	      "  --heartbeat SEC        publish at least this often (default 10)\n"
	      "  --threshold-mem SIZE   publish when a memory figure moved this much (default 16M)\n"
	      "  --threshold-events N   ... or swap-in/out, major faults and refaults grew by N (default 1024)\n"
	      "  --threshold-stall-ms MS ... or PSI memory stall time grew by MS (default 10)\n"
	      "  --key PATH             xenstore key (default data/xenballoon/report, relative to this domain)\n"
	      "  --self                 also balloon this guest itself (the paper's selfballooning)\n"
	      "  --self-reserve SIZE    target = Committed_AS + SIZE (default 0)\n"
	      "  --self-down N          shrink by 1/N of the gap per interval (default 10)\n"
	      "  --self-up N            grow by 1/N of the gap per interval (default 1)\n"
	      "  --self-min SIZE        floor (default: xenlinux minimum curve of the maximum memory)\n"
	      "  --self-maxmem SIZE     maximum memory (default: memory/static-max, else current)\n"
	      "  --no-publish           with --self: balloon only, write nothing to xenstore\n"
	      "  --proc DIR             read DIR/meminfo, DIR/vmstat, DIR/pressure/memory, DIR/uptime\n"
	      "  --sys DIR              sysfs root for the balloon driver (default /sys)\n"
	      "  --verbose              log every publish and retry\n"
	      "  --version, --help\n"
	      "Sizes: a bare number is MiB (as in xl); suffixes K, M, G, T.\n",
	      out);
}

static int bad_option(const char *opt, const char *want, const char *got)
{
	logmsg("%s: expected %s, got '%s' (see --help)", opt, want, got);
	return 2;
}

static bool valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > 1024 || k[n - 1] == '/' || strstr(k, "//") != NULL)
		return false;
	for (const char *p = k; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '/' || c == '_' || c == '@'))
			return false;
	}
	return true;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_ONCE = 1000, O_PRINT, O_INTERVAL, O_HEARTBEAT, O_TMEM, O_TEVENTS, O_TSTALL, O_KEY, O_SELF,
		O_SRESERVE, O_SDOWN, O_SUP, O_SMIN, O_SMAX, O_NOPUB, O_PROC, O_SYS, O_VERBOSE, O_VERSION, O_HELP,
	};
	static const struct option longopts[] = {
		{ "once", no_argument, NULL, O_ONCE },
		{ "print", no_argument, NULL, O_PRINT },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "heartbeat", required_argument, NULL, O_HEARTBEAT },
		{ "threshold-mem", required_argument, NULL, O_TMEM },
		{ "threshold-events", required_argument, NULL, O_TEVENTS },
		{ "threshold-stall-ms", required_argument, NULL, O_TSTALL },
		{ "key", required_argument, NULL, O_KEY },
		{ "self", no_argument, NULL, O_SELF },
		{ "self-reserve", required_argument, NULL, O_SRESERVE },
		{ "self-down", required_argument, NULL, O_SDOWN },
		{ "self-up", required_argument, NULL, O_SUP },
		{ "self-min", required_argument, NULL, O_SMIN },
		{ "self-maxmem", required_argument, NULL, O_SMAX },
		{ "no-publish", no_argument, NULL, O_NOPUB },
		{ "proc", required_argument, NULL, O_PROC },
		{ "sys", required_argument, NULL, O_SYS },
		{ "verbose", no_argument, NULL, O_VERBOSE },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct options){
		.proc_dir = "/proc", .sys_dir = "/sys", .key = "data/xenballoon/report", .publish = true,
		.interval_ms = 1000, .heartbeat_ms = 10000, .threshold_mem_kib = 16384, .threshold_events = 1024,
		.threshold_stall_us = 10000, .self_down = 10, .self_up = 1, .self_min_kib = -1, .self_maxmem_kib = -1,
	};
	long long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_ONCE: o->once = true; break;
		case O_PRINT: o->print = true; break;
		case O_INTERVAL:
			if (xb_parse_seconds_ms(optarg, 3600000, &o->interval_ms) != 0 || o->interval_ms < 250)
				return bad_option("--interval", "seconds between 0.25 and 3600", optarg);
			break;
		case O_HEARTBEAT:
			if (xb_parse_seconds_ms(optarg, 86400000, &o->heartbeat_ms) != 0 || o->heartbeat_ms < 250)
				return bad_option("--heartbeat", "seconds between 0.25 and 86400", optarg);
			break;
		case O_TMEM:
			if (xb_parse_size_kib(optarg, XB_KIB_MAX, &o->threshold_mem_kib) != 0)
				return bad_option("--threshold-mem", "a size such as 16M", optarg);
			break;
		case O_TEVENTS:
			if (xb_parse_uint(optarg, XB_COUNTER_MAX, &o->threshold_events) != 0)
				return bad_option("--threshold-events", "a whole number", optarg);
			break;
		case O_TSTALL:
			if (xb_parse_uint(optarg, 86400000, &v) != 0)
				return bad_option("--threshold-stall-ms", "milliseconds", optarg);
			o->threshold_stall_us = v * 1000;
			break;
		case O_KEY:
			if (!valid_key(optarg))
				return bad_option("--key", "a xenstore path (letters, digits, - / _ @)", optarg);
			o->key = optarg;
			break;
		case O_SELF: o->self = true; break;
		case O_SRESERVE:
			if (xb_parse_size_kib(optarg, XB_KIB_MAX, &o->self_reserve_kib) != 0)
				return bad_option("--self-reserve", "a size such as 64M", optarg);
			break;
		case O_SDOWN:
			if (xb_parse_uint(optarg, 1000, &o->self_down) != 0 || o->self_down < 1)
				return bad_option("--self-down", "a whole number from 1 to 1000", optarg);
			break;
		case O_SUP:
			if (xb_parse_uint(optarg, 1000, &o->self_up) != 0 || o->self_up < 1)
				return bad_option("--self-up", "a whole number from 1 to 1000", optarg);
			break;
		case O_SMIN:
			if (xb_parse_size_kib(optarg, XB_KIB_MAX, &o->self_min_kib) != 0)
				return bad_option("--self-min", "a size such as 256M", optarg);
			break;
		case O_SMAX:
			if (xb_parse_size_kib(optarg, XB_KIB_MAX, &o->self_maxmem_kib) != 0 || o->self_maxmem_kib == 0)
				return bad_option("--self-maxmem", "a size such as 1G", optarg);
			break;
		case O_NOPUB: o->publish = false; break;
		case O_PROC: o->proc_dir = optarg; break;
		case O_SYS: o->sys_dir = optarg; break;
		case O_VERBOSE: o->verbose = true; break;
		case O_VERSION: printf(PROG " " XB_VERSION " (record format v1)\n"); return 0;
		case O_HELP: usage(stdout); return 0;
		default:
			logmsg("unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		logmsg("unexpected argument '%s' (see --help)", argv[optind]);
		return 2;
	}
	if (o->heartbeat_ms < o->interval_ms) {
		logmsg("--heartbeat must not be shorter than --interval");
		return 2;
	}
	if (!o->publish && !o->self) {
		logmsg("--no-publish only makes sense with --self");
		return 2;
	}
	if (!o->publish && o->print) {
		logmsg("--print and --no-publish contradict each other");
		return 2;
	}
	return -1;
}

/* --- xenstore connection with backoff ------------------------------------------------------ */

struct xs_conn {
	struct xs_handle *h;
	long long retry_at_ms;
	long long backoff_ms;
	bool failing;
};

static void conn_failed(struct xs_conn *c, long long now, const char *what, int err)
{
	if (c->h != NULL) {
		xs_close(c->h);
		c->h = NULL;
	}
	if (!c->failing || verbose)
		logmsg("%s: %s; retrying in %lld s%s", what, strerror(err), c->backoff_ms / 1000,
		       c->failing ? "" : " (backing off up to 60 s; further failures are logged with --verbose)");
	c->failing = true;
	c->retry_at_ms = now + c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void conn_ok(struct xs_conn *c)
{
	if (c->failing)
		logmsg("xenstore reachable again");
	c->failing = false;
	c->backoff_ms = BACKOFF_FIRST_MS;
}

/* Returns an open handle, or NULL while backing off. */
static struct xs_handle *conn_get(struct xs_conn *c, long long now)
{
	if (c->h != NULL)
		return c->h;
	if (now < c->retry_at_ms)
		return NULL;
	in_xenstore_call = 1;
	c->h = xs_open(0);
	in_xenstore_call = 0;
	if (c->h == NULL)
		conn_failed(c, now, "cannot connect to xenstore", errno);
	return c->h;
}

static bool conn_write(struct xs_conn *c, long long now, const char *key, const char *val, size_t len)
{
	struct xs_handle *h = conn_get(c, now);
	if (h == NULL)
		return false;
	in_xenstore_call = 1;
	bool ok = xs_write(h, XBT_NULL, key, val, (unsigned int)len);
	in_xenstore_call = 0;
	if (!ok) {
		char what[1200];
		snprintf(what, sizeof(what), "cannot write %s", key);
		conn_failed(c, now, what, errno);
		return false;
	}
	conn_ok(c);
	return true;
}

/* Reads a small decimal KiB value (e.g. memory/static-max); -1 when unavailable. */
static long long conn_read_kib(struct xs_conn *c, long long now, const char *key)
{
	struct xs_handle *h = conn_get(c, now);
	if (h == NULL)
		return -1;
	unsigned int len = 0;
	in_xenstore_call = 1;
	char *val = xs_read(h, XBT_NULL, key, &len);
	in_xenstore_call = 0;
	if (val == NULL)
		return -1;
	long long v = -1;
	if (xb_parse_uint(val, XB_KIB_MAX, &v) != 0)
		v = -1;
	free(val);
	return v;
}

/* --- when to publish ------------------------------------------------------------------------ */

static long long absdiff(long long a, long long b)
{
	return a > b ? a - b : b - a;
}

static long long swap_used(const struct xb_stats *s)
{
	return s->swap_total - s->swap_free;
}

/* Growth of a counter between two samples; a counter that vanished or went back counts as big. */
static long long growth(long long before, long long after)
{
	if (before == XB_UNKNOWN && after == XB_UNKNOWN)
		return 0;
	if (before == XB_UNKNOWN || after == XB_UNKNOWN || after < before)
		return XB_COUNTER_MAX;
	return after - before;
}

static const char *significant_change(const struct xb_stats *a, const struct xb_stats *b, const struct options *o)
{
	long long t = o->threshold_mem_kib;
	if (absdiff(a->mem_total, b->mem_total) >= t)
		return "MemTotal";
	if (absdiff(a->committed_as, b->committed_as) >= t)
		return "Committed_AS";
	if (absdiff(a->mem_free, b->mem_free) >= t)
		return "MemFree";
	if ((a->mem_available == XB_UNKNOWN) != (b->mem_available == XB_UNKNOWN) ||
	    absdiff(a->mem_available, b->mem_available) >= t)
		return "MemAvailable";
	if (absdiff(swap_used(a), swap_used(b)) >= t)
		return "swap used";
	if ((a->balloon_current == XB_UNKNOWN) != (b->balloon_current == XB_UNKNOWN) ||
	    absdiff(a->balloon_current, b->balloon_current) >= t)
		return "balloon";
	if (growth(a->oom_kill, b->oom_kill) > 0)
		return "oom_kill";
	/* Each term is at most 2^53, so the sum cannot overflow. */
	long long events = growth(a->pswpin, b->pswpin) + growth(a->pswpout, b->pswpout) +
			   growth(a->pgmajfault, b->pgmajfault) + growth(a->workingset_refault, b->workingset_refault);
	if (events > 0 && events >= o->threshold_events)
		return "paging";
	if ((a->psi_some_total_us == XB_UNKNOWN) != (b->psi_some_total_us == XB_UNKNOWN))
		return "pressure";
	long long stall = growth(a->psi_some_total_us, b->psi_some_total_us);
	if (stall > 0 && stall >= o->threshold_stall_us)
		return "pressure";
	return NULL;
}

/* --- selfballooning ------------------------------------------------------------------------- */

struct self_state {
	struct xb_self_params params;
	long long last_written_kib;
	bool warned;
};

static int write_target_kb(const char *sys_dir, long long kib)
{
	char path[4096], val[32];
	if (xb_join(path, sizeof(path), sys_dir, BALLOON_DIR "/target_kb") != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int n = snprintf(val, sizeof(val), "%lld\n", kib);
	ssize_t w = write(fd, val, (size_t)n);
	int saved = errno;
	close(fd);
	if (w != n) {
		errno = w < 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

static int self_setup(struct self_state *s, const struct options *o, const struct xb_stats *st, struct xs_conn *c)
{
	if (st->balloon_current == XB_UNKNOWN) {
		logmsg("--self needs the balloon driver's %s/%s/info/current_kb (is this a Xen guest with the "
		       "balloon driver loaded?)", o->sys_dir, BALLOON_DIR);
		return -1;
	}
	long long maxmem = o->self_maxmem_kib;
	const char *from = "--self-maxmem";
	if (maxmem <= 0 && o->publish && !o->print) {
		maxmem = conn_read_kib(c, xb_monotonic_ms(), "memory/static-max");
		from = "memory/static-max";
	}
	if (maxmem <= 0) {
		maxmem = st->balloon_current;
		from = "current memory (no static-max known)";
	}
	s->params = (struct xb_self_params){
		.reserve_kib = o->self_reserve_kib,
		.down = o->self_down,
		.up = o->self_up,
		.floor_kib = o->self_min_kib >= 0 ? o->self_min_kib : xb_xenlinux_min_kib(maxmem),
		.ceiling_kib = maxmem,
	};
	s->last_written_kib = -1;
	if (verbose)
		logmsg("self: maxmem %lld KiB (from %s), floor %lld KiB, reserve %lld KiB, down 1/%lld, up 1/%lld",
		       maxmem, from, s->params.floor_kib, s->params.reserve_kib, s->params.down, s->params.up);
	return 0;
}

static void self_step(struct self_state *s, const struct options *o, const struct xb_stats *st)
{
	if (st->balloon_current == XB_UNKNOWN)
		return;
	long long overhead = st->balloon_current - st->mem_total;
	long long next = xb_self_next_target(&s->params, st->committed_as, st->balloon_current, overhead);
	if (s->last_written_kib >= 0 && absdiff(next, s->last_written_kib) < SELF_MIN_STEP_KIB)
		return;
	if (write_target_kb(o->sys_dir, next) != 0) {
		if (!s->warned || verbose)
			logmsg("self: cannot write %s/%s/target_kb: %s", o->sys_dir, BALLOON_DIR, strerror(errno));
		s->warned = true;
		return;
	}
	s->warned = false;
	if (verbose)
		logmsg("self: Committed_AS %lld KiB, current %lld KiB -> target %lld KiB", st->committed_as,
		       st->balloon_current, next);
	s->last_written_kib = next;
}

/* --- main loop ------------------------------------------------------------------------------ */

static void sleep_ms(long long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	/* A signal ends the sleep early (no SA_RESTART); the caller checks stop_requested. */
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct options o;
	int rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	verbose = o.verbose;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct xs_conn conn = { .backoff_ms = BACKOFF_FIRST_MS };
	struct self_state self = { 0 };
	struct xb_stats last = { 0 }, cur;
	bool have_last = false, self_ready = false, collect_failing = false;
	long long seq = 0, last_publish_ms = 0;
	char record[XB_RECORD_MAX + 1];
	char err[512];
	int status = 0;

	while (!stop_requested) {
		long long tick_start = xb_monotonic_ms();
		if (xb_collect(o.proc_dir, o.sys_dir, &cur, err, sizeof(err)) != 0) {
			if (!collect_failing || verbose)
				logmsg("%s", err);
			collect_failing = true;
			if (o.once)
				return 1;
			goto next;
		}
		if (collect_failing)
			logmsg("reading statistics again");
		collect_failing = false;

		if (o.self) {
			if (!self_ready) {
				if (self_setup(&self, &o, &cur, &conn) != 0)
					return 1;
				self_ready = true;
			}
			self_step(&self, &o, &cur);
		}

		if (o.publish) {
			long long now = xb_monotonic_ms();
			const char *why = NULL;
			if (!have_last)
				why = "first";
			else if (now - last_publish_ms >= o.heartbeat_ms)
				why = "heartbeat";
			else
				why = significant_change(&last, &cur, &o);
			bool due = why != NULL && (!have_last || now - last_publish_ms >= MIN_PUBLISH_GAP_MS);
			if (verbose && why == NULL)
				logmsg("sample: no significant change");
			else if (verbose && !due)
				logmsg("sample: %s changed, held back by the rate cap", why);
			/* While xenstore is unreachable, conn_get is NULL until the backoff has passed. */
			if (due && !o.print && conn_get(&conn, now) == NULL) {
				due = false;
				if (o.once)
					status = 1;
			}
			if (due) {
				seq = seq >= XB_COUNTER_MAX ? 1 : seq + 1;
				int len = xb_format_v1(&cur, seq, record, sizeof(record));
				if (len < 0) {
					logmsg("internal error: record does not fit in %d bytes", XB_RECORD_MAX);
					return 70;
				}
				bool ok;
				if (o.print) {
					ok = fwrite(record, 1, (size_t)len, stdout) == (size_t)len && fflush(stdout) == 0;
					if (!ok)
						logmsg("cannot write to stdout: %s", strerror(errno));
				} else {
					ok = conn_write(&conn, now, o.key, record, (size_t)len);
				}
				if (ok) {
					last = cur;
					have_last = true;
					last_publish_ms = now;
					if (verbose)
						logmsg("published seq %lld (%s), %d bytes", seq, why, len);
				} else if (o.once) {
					status = 1;
				}
			}
		}
		if (o.once)
			break;
next:;
		long long elapsed = xb_monotonic_ms() - tick_start;
		if (elapsed < o.interval_ms && !stop_requested)
			sleep_ms(o.interval_ms - elapsed);
	}
	if (conn.h != NULL)
		xs_close(conn.h);
	if (stop_requested && verbose)
		logmsg("stopping on signal");
	return status;
}

/*
 * eatmem: the synthetic workload of the paper (Magenheimer 2008). Each round: malloc a chunk of
 * random size up to --max, write every page of it a random number of times, free it, sleep a
 * random time up to --sleep-max seconds. Forever, or for --rounds. The same --seed gives the
 * same sequence of chunks, writes and sleeps. --min narrows the chunk sizes (--min = --max: a
 * fixed chunk), --rate paces the writing (the chunk grows at most that fast, as a program's
 * memory grows) and --hold keeps each chunk for a while after writing it, so a test can watch a
 * guest grow by a known amount at a known pace and hold it for a known time. Optionally publishes the chunk it holds to
 * xenstore (data/eatmem/chunk, KiB; 0 once freed), as the paper's version did.
 *
 * Output, one line per round (stdout, line-buffered), after the chunk was freed:
 *   round=N chunk_kib=N pages=N writes=N sleep_s=N
 */
#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#define PROG "eatmem"
/* Chunks are whole 4 KiB units; touching goes by the system's page size. */
#define PAGE_KIB 4

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t in_xenstore_call;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	if (in_xenstore_call)
		_exit(0); /* libxenstore retries interrupted reads: a hung xenstored would hold us */
}

static void usage(FILE *out)
{
	fputs("usage: " PROG " [options]\n"
	      "The paper's workload: malloc a random chunk, write each page a random number of times,\n"
	      "free it, sleep a random time; repeat.\n"
	      "\n"
	      "  --max SIZE        largest chunk (default 512M; bare numbers are MiB)\n"
	      "  --min SIZE        smallest chunk (default 4K; --min = --max for a fixed chunk)\n"
	      "  --hold SEC        keep each chunk this long after writing it, before freeing it (default 0)\n"
	      "  --rate SIZE       write new pages at most this fast, per second (default: as fast as it can)\n"
	      "  --sleep-max SEC   longest sleep between rounds (default 63)\n"
	      "  --sleep-min SEC   shortest sleep (default 0)\n"
	      "  --writes-max N    each page is written 1..N times (default 16)\n"
	      "  --rounds N        stop after N rounds (default 0 = forever)\n"
	      "  --seed N          seed for a repeatable run (default: from the clock; printed)\n"
	      "  --publish         write the chunk held (KiB) to xenstore, 0 once freed\n"
	      "  --key PATH        xenstore key for --publish (default data/eatmem/chunk)\n"
	      "  --version, --help\n",
	      out);
}

static int bad_option(const char *opt, const char *want, const char *got)
{
	fprintf(stderr, PROG ": %s: expected %s, got '%s' (see --help)\n", opt, want, got);
	return 2;
}

struct publisher {
	const char *key;
	struct xs_handle *h;
	bool warned;
};

static void publish(struct publisher *p, long long kib)
{
	char val[32];
	if (p->key == NULL)
		return;
	in_xenstore_call = 1;
	if (p->h == NULL)
		p->h = xs_open(0);
	int n = snprintf(val, sizeof(val), "%lld", kib);
	bool ok = p->h != NULL && xs_write(p->h, XBT_NULL, p->key, val, (unsigned int)n);
	in_xenstore_call = 0;
	if (!ok) {
		/* The workload goes on without xenstore; try again next time. */
		if (!p->warned)
			fprintf(stderr, PROG ": cannot publish %s: %s; continuing without it\n", p->key, strerror(errno));
		p->warned = true;
		if (p->h != NULL) {
			xs_close(p->h);
			p->h = NULL;
		}
	} else if (p->warned) {
		fprintf(stderr, PROG ": publishing %s again\n", p->key);
		p->warned = false;
	}
}

/* --rate: before writing more, wait until `done_kib` is within the allowed pace since `start`. */
static void pace(const struct timespec *start, double done_kib, long long rate_kib)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double elapsed = (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
	double ahead = done_kib / (double)rate_kib - elapsed;
	if (ahead <= 0)
		return;
	struct timespec ts = { .tv_sec = (time_t)ahead, .tv_nsec = (long)((ahead - (double)(time_t)ahead) * 1e9) };
	while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Sleeps whole seconds; a signal cuts it short. */
static void sleep_s(long long s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = 0 };
	while (!stop_requested && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	enum { O_MAX = 1000, O_MIN, O_HOLD, O_RATE, O_SMAX, O_SMIN, O_WMAX, O_ROUNDS, O_SEED, O_PUBLISH, O_KEY, O_VERSION, O_HELP };
	static const struct option longopts[] = {
		{ "max", required_argument, NULL, O_MAX },
		{ "min", required_argument, NULL, O_MIN },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "rate", required_argument, NULL, O_RATE },
		{ "sleep-max", required_argument, NULL, O_SMAX },
		{ "sleep-min", required_argument, NULL, O_SMIN },
		{ "writes-max", required_argument, NULL, O_WMAX },
		{ "rounds", required_argument, NULL, O_ROUNDS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "publish", no_argument, NULL, O_PUBLISH },
		{ "key", required_argument, NULL, O_KEY },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	long long max_kib = 512 * 1024, min_kib = PAGE_KIB, hold_s = 0, rate_kib = 0, sleep_max = 63, sleep_min = 0, writes_max = 16, rounds = 0, seed = -1;
	bool do_publish = false;
	const char *key = "data/eatmem/chunk";
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_MAX:
			if (xb_parse_size_kib(optarg, 1LL << 32, &max_kib) != 0 || max_kib < PAGE_KIB)
				return bad_option("--max", "a size from 4K to 4T, such as 512M", optarg);
			break;
		case O_MIN:
			if (xb_parse_size_kib(optarg, 1LL << 32, &min_kib) != 0 || min_kib < PAGE_KIB)
				return bad_option("--min", "a size from 4K to 4T, such as 64M", optarg);
			break;
		case O_HOLD:
			if (xb_parse_uint(optarg, 86400, &hold_s) != 0)
				return bad_option("--hold", "whole seconds up to 86400", optarg);
			break;
		case O_RATE:
			if (xb_parse_size_kib(optarg, 1LL << 32, &rate_kib) != 0 || rate_kib < PAGE_KIB)
				return bad_option("--rate", "a size per second from 4K, such as 16M", optarg);
			break;
		case O_SMAX:
			if (xb_parse_uint(optarg, 86400, &sleep_max) != 0)
				return bad_option("--sleep-max", "whole seconds up to 86400", optarg);
			break;
		case O_SMIN:
			if (xb_parse_uint(optarg, 86400, &sleep_min) != 0)
				return bad_option("--sleep-min", "whole seconds up to 86400", optarg);
			break;
		case O_WMAX:
			if (xb_parse_uint(optarg, 1000000, &writes_max) != 0 || writes_max < 1)
				return bad_option("--writes-max", "a whole number from 1 to 1000000", optarg);
			break;
		case O_ROUNDS:
			if (xb_parse_uint(optarg, XB_COUNTER_MAX, &rounds) != 0)
				return bad_option("--rounds", "a whole number (0 = forever)", optarg);
			break;
		case O_SEED:
			if (xb_parse_uint(optarg, XB_COUNTER_MAX, &seed) != 0)
				return bad_option("--seed", "a whole number", optarg);
			break;
		case O_PUBLISH: do_publish = true; break;
		case O_KEY: key = optarg; break;
		case O_VERSION: printf(PROG " " XB_VERSION "\n"); return 0;
		case O_HELP: usage(stdout); return 0;
		default:
			fprintf(stderr, PROG ": unknown or incomplete option '%s' (see --help)\n", argv[optind - 1]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (sleep_min > sleep_max) {
		fprintf(stderr, PROG ": --sleep-min must not exceed --sleep-max\n");
		return 2;
	}
	if (min_kib > max_kib) {
		fprintf(stderr, PROG ": --min must not exceed --max\n");
		return 2;
	}
	if (seed < 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (long long)(((uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) & XB_COUNTER_MAX);
	}

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef M_MMAP_THRESHOLD
	/* Serve every chunk with its own mapping, so free() really gives it back to the kernel
	 * (glibc otherwise raises the threshold after the first free and keeps later chunks). */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif

	const long page = sysconf(_SC_PAGESIZE) > 0 ? sysconf(_SC_PAGESIZE) : 4096;
	struct publisher pub = { .key = do_publish ? key : NULL };
	uint64_t rng = (uint64_t)seed;
	long long done = 0;
	printf("eatmem: seed=%lld max_kib=%lld sleep_min_s=%lld sleep_max_s=%lld writes_max=%lld rounds=%lld", seed,
	       max_kib, sleep_min, sleep_max, writes_max, rounds);
	/* Only when asked for: the paper's runs print exactly what they always did. */
	if (min_kib != PAGE_KIB || hold_s != 0 || rate_kib != 0)
		printf(" min_kib=%lld hold_s=%lld rate_kib_s=%lld", min_kib, hold_s, rate_kib);
	printf("\n");

	while (!stop_requested && (rounds == 0 || done < rounds)) {
		/* With the default --min (one unit) this draws exactly what the paper's version drew. */
		long long chunk_kib =
			(long long)xb_rand_range(&rng, (uint64_t)((min_kib + PAGE_KIB - 1) / PAGE_KIB), (uint64_t)(max_kib / PAGE_KIB)) *
			PAGE_KIB;
		size_t bytes = (size_t)chunk_kib * 1024;
		long long pages = (long long)((bytes + (size_t)page - 1) / (size_t)page);
		/* volatile: the writes are the point; the compiler must not drop them before free(). */
		volatile unsigned char *mem = malloc(bytes);
		long long writes = 0;
		if (mem == NULL) {
			printf("round=%lld chunk_kib=%lld malloc_failed\n", done + 1, chunk_kib);
		} else {
			publish(&pub, chunk_kib);
			struct timespec start;
			clock_gettime(CLOCK_MONOTONIC, &start);
			for (long long i = 0; i < pages && !stop_requested; i++) {
				if (rate_kib > 0 && i % 64 == 0)
					pace(&start, (double)i * (double)page / 1024.0, rate_kib);
				long long n = (long long)xb_rand_range(&rng, 1, (uint64_t)writes_max);
				volatile unsigned char *pg = mem + (size_t)i * (size_t)page;
				size_t room = bytes - (size_t)i * (size_t)page; /* the last page may be partial */
				if (room > (size_t)page)
					room = (size_t)page;
				for (long long k = 0; k < n; k++)
					pg[((size_t)k * 64) % room] = (unsigned char)(i + k);
				writes += n;
			}
			if (hold_s > 0)
				sleep_s(hold_s);
			free((void *)mem);
			publish(&pub, 0);
		}
		if (stop_requested)
			break;
		long long nap = (long long)xb_rand_range(&rng, (uint64_t)sleep_min, (uint64_t)sleep_max);
		done++;
		if (mem != NULL)
			printf("round=%lld chunk_kib=%lld pages=%lld writes=%lld sleep_s=%lld\n", done, chunk_kib, pages,
			       writes, nap);
		if (rounds != 0 && done >= rounds)
			break;
		sleep_s(nap);
	}
	printf("eatmem: %s rounds=%lld\n", stop_requested ? "stopped" : "done", done);
	if (pub.h != NULL)
		xs_close(pub.h);
	return 0;
}

/*
 * Small helpers shared by the guest tools (xenballoon-report, eatmem): option values, the
 * monotonic clock, whole-file reads of /proc and /sys, and a tiny seeded PRNG.
 */
#ifndef XB_COMMON_H
#define XB_COMMON_H

/* The package version (the Makefile passes -DXB_VERSION from package.json); "dev" otherwise. */
#ifndef XB_VERSION
#define XB_VERSION "dev"
#endif

#include <stddef.h>
#include <stdint.h>

/* Largest integer a record may carry: JavaScript's Number.MAX_SAFE_INTEGER (2^53 - 1), so the
 * dom0 side reads every value exactly. */
#define XB_COUNTER_MAX 9007199254740991LL
/* Largest memory size (KiB) a record may carry: 1 PiB, more than any Xen host can address. */
#define XB_KIB_MAX (1LL << 40)

/*
 * Parses a size the way xl does: a bare number is MiB; suffixes K, M, G, T (binary, either
 * case, optional trailing "iB"/"B"). Stores KiB. Returns 0, or -1 for garbage, a fraction of a
 * KiB, or a value above max_kib.
 */
int xb_parse_size_kib(const char *s, long long max_kib, long long *out_kib);

/* Parses a non-negative decimal integer <= max. Returns 0 or -1. */
int xb_parse_uint(const char *s, long long max, long long *out);

/* Parses seconds with up to three decimals ("1", "0.25") into milliseconds <= max_ms. */
int xb_parse_seconds_ms(const char *s, long long max_ms, long long *out_ms);

/* Milliseconds on CLOCK_MONOTONIC. */
long long xb_monotonic_ms(void);

/*
 * Reads a whole file (procfs and sysfs report size 0, so this reads until EOF) into buf and
 * NUL-terminates it. Returns 0; or -1 with errno set (E2BIG when the file does not fit).
 */
int xb_read_file(const char *path, char *buf, size_t cap, size_t *len_out);

/* Joins dir and rel into out ("dir/rel"). Returns 0, or -1 when it does not fit. */
int xb_join(char *out, size_t cap, const char *dir, const char *rel);

/* splitmix64: a small, well-mixed generator; the same seed gives the same run everywhere. */
uint64_t xb_rand_next(uint64_t *state);
/* Uniform integer in [lo, hi] (inclusive), without modulo bias worth caring about here. */
uint64_t xb_rand_range(uint64_t *state, uint64_t lo, uint64_t hi);

#endif

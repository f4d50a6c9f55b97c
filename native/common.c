#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int parse_digits(const char **p, long long max, long long *out)
{
	const char *s = *p;
	long long v = 0;
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		int d = *s - '0';
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int xb_parse_uint(const char *s, long long max, long long *out)
{
	long long v;
	if (s == NULL || parse_digits(&s, max, &v) != 0 || *s != '\0')
		return -1;
	*out = v;
	return 0;
}

int xb_parse_size_kib(const char *s, long long max_kib, long long *out_kib)
{
	long long whole, frac = 0, frac_scale = 1;
	long long unit_kib = 1024; /* bare number: MiB, as xl reads memory= */
	if (s == NULL || parse_digits(&s, XB_COUNTER_MAX, &whole) != 0)
		return -1;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (frac_scale >= 1000000)
				return -1;
			frac = frac * 10 + (*s - '0');
			frac_scale *= 10;
		}
	}
	switch (*s) {
	case '\0': break;
	case 'k': case 'K': unit_kib = 1; s++; break;
	case 'm': case 'M': unit_kib = 1024; s++; break;
	case 'g': case 'G': unit_kib = 1024LL * 1024; s++; break;
	case 't': case 'T': unit_kib = 1024LL * 1024 * 1024; s++; break;
	default: return -1;
	}
	if (strcmp(s, "iB") == 0 || strcmp(s, "B") == 0)
		s += strlen(s);
	if (*s != '\0')
		return -1;
	if (whole > max_kib / unit_kib)
		return -1;
	long long kib = whole * unit_kib;
	long long frac_kib = frac * unit_kib;
	if (frac_kib % frac_scale != 0)
		return -1; /* not a whole number of KiB */
	kib += frac_kib / frac_scale;
	if (kib > max_kib)
		return -1;
	*out_kib = kib;
	return 0;
}

int xb_parse_seconds_ms(const char *s, long long max_ms, long long *out_ms)
{
	long long whole, frac = 0;
	int ndec = 0;
	if (s == NULL || parse_digits(&s, max_ms / 1000 + 1, &whole) != 0)
		return -1;
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (++ndec > 3)
				return -1;
			frac = frac * 10 + (*s - '0');
		}
		if (ndec == 0)
			return -1;
		for (int i = ndec; i < 3; i++)
			frac *= 10;
	}
	if (*s != '\0')
		return -1;
	long long ms = whole * 1000 + frac;
	if (ms > max_ms)
		return -1;
	*out_ms = ms;
	return 0;
}

long long xb_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int xb_read_file(const char *path, char *buf, size_t cap, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	for (;;) {
		if (len + 1 >= cap) {
			/* One more read tells a file that exactly fills the buffer from one that is longer. */
			char extra;
			ssize_t n = read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			int saved = n < 0 ? errno : E2BIG;
			close(fd);
			if (n == 0)
				break;
			errno = saved;
			return -1;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0) {
			close(fd);
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (len_out != NULL)
		*len_out = len;
	return 0;
}

int xb_join(char *out, size_t cap, const char *dir, const char *rel)
{
	int n = snprintf(out, cap, "%s/%s", dir, rel);
	return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

uint64_t xb_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t xb_rand_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
	uint64_t span = hi - lo + 1;
	if (span == 0) /* the whole 64-bit range */
		return xb_rand_next(state);
	return lo + xb_rand_next(state) % span;
}

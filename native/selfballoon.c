#include "selfballoon.h"

long long xb_xenlinux_min_kib(long long maxmem_kib)
{
	long long max_mib = maxmem_kib / 1024;
	long long min_mib;
	if (max_mib < 128)
		min_mib = 8 + max_mib / 2;
	else if (max_mib < 512)
		min_mib = 40 + max_mib / 4;
	else if (max_mib < 2048)
		min_mib = 104 + max_mib / 8;
	else
		min_mib = 296 + max_mib / 32;
	return min_mib * 1024;
}

long long xb_self_next_target(const struct xb_self_params *p, long long committed_as_kib, long long current_kib,
			      long long overhead_kib)
{
	long long goal = committed_as_kib + p->reserve_kib + (overhead_kib > 0 ? overhead_kib : 0);
	if (goal < p->floor_kib)
		goal = p->floor_kib;
	if (p->ceiling_kib > 0 && goal > p->ceiling_kib)
		goal = p->ceiling_kib;
	long long next;
	if (current_kib > goal)
		next = current_kib - (current_kib - goal) / (p->down > 0 ? p->down : 1);
	else
		next = current_kib + (goal - current_kib) / (p->up > 0 ? p->up : 1);
	if (next < p->floor_kib)
		next = p->floor_kib;
	if (p->ceiling_kib > 0 && next > p->ceiling_kib)
		next = p->ceiling_kib;
	return next;
}

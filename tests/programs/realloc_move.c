/*
 * realloc_move.c - a block that glibc's realloc moves with mremap after a
 * checkpoint keeps its write protection at an address never tracked; writes
 * there must work, and the moved block must be in the next checkpoint.
 * Prints a checksum of the block after each step; exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <checkpoint.h>

static unsigned long sum(const unsigned char *p, size_t n)
{
	unsigned long s = 0;
	for (size_t i = 0; i < n; i += 4096)
		s += p[i];
	return s;
}

int main(void)
{
	size_t small = 10 << 20, large = 40 << 20;
	unsigned char *p = malloc(small), *q;

	setvbuf(stdout, NULL, _IONBF, 0);
	memset(p, 1, small);
	void *blocker = malloc(1 << 20); /* so that realloc cannot grow in place */
	(void)blocker;
	printf("first checkpoint %d\n", checkpoint());
	q = realloc(p, large);
	printf("moved %d\n", p != q);
	memset(q + small, 2, large - small);
	q[0] = 3;
	int r = checkpoint();
	printf("second checkpoint %s sum %lu\n", r == CKPT_RESTARTED ? "restarted" : "taken",
	       sum(q, large));
	return 0;
}

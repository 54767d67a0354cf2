/*
 * palloc.c - a size-class allocator over the private region.
 *
 * A block is a 16-byte header (its class) followed by the payload.  Freed
 * blocks go on their class's list and are reused; the bump pointer never
 * moves back.  The region is MAP_NORESERVE, so only pages used cost memory.
 */
#include "palloc.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "sys.h"

#define NCLASSES 40
#define MIN_SHIFT 4

struct block {
	uint64_t cls;
	uint64_t magic;
};

#define BLOCK_MAGIC 0x636b70746d656d21UL

/*
 * The allocator's own bookkeeping lives at the start of the region, not in
 * this library's .bss: .bss is part of the image and is overwritten by a
 * restart while the restorer is still allocating.
 */
struct arena {
	uintptr_t bump;
	uintptr_t limit;
	void *free_list[NCLASSES];
};

#define A ((struct arena *)CKPT_PRIVATE_BASE)

int palloc_init(void)
{
	long r = sys_mmap((void *)CKPT_PRIVATE_BASE, CKPT_PRIVATE_SIZE,
			  PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			  -1, 0);
	if (r < 0)
		return (int)r;
	if ((uintptr_t)r != CKPT_PRIVATE_BASE) {
		/* Old kernels ignore MAP_FIXED_NOREPLACE and treat it as a hint. */
		sys_munmap((void *)r, CKPT_PRIVATE_SIZE);
		return -EEXIST;
	}
	A->bump = CKPT_PRIVATE_BASE + 4096;
	A->limit = CKPT_PRIVATE_BASE + CKPT_PRIVATE_SIZE;
	return 0;
}

static int class_of(size_t size)
{
	int c = 0;
	size_t cap = (size_t)1 << MIN_SHIFT;

	while (cap < size + sizeof(struct block)) {
		cap <<= 1;
		c++;
	}
	return c;
}

void *palloc(size_t size)
{
	int c = class_of(size);
	struct block *b;

	if (c >= NCLASSES)
		return NULL;
	if (A->free_list[c]) {
		b = A->free_list[c];
		A->free_list[c] = *(void **)(b + 1);
	} else {
		size_t cap = (size_t)1 << (c + MIN_SHIFT);
		/* Large blocks start on a page: stacks and I/O buffers like it. */
		uintptr_t at = A->bump;
		if (cap >= 4096)
			at = ((at + sizeof(*b) + 4095) & ~4095UL) - sizeof(*b);
		if (at + cap > A->limit || at + cap < at)
			return NULL;
		b = (struct block *)at;
		A->bump = at + cap;
	}
	b->cls = c;
	b->magic = BLOCK_MAGIC;
	return b + 1;
}

void *pcalloc(size_t size)
{
	void *p = palloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

void pfree(void *p)
{
	struct block *b;

	if (!p)
		return;
	b = (struct block *)p - 1;
	if (b->magic != BLOCK_MAGIC)
		return; /* not ours: never corrupt the lists over it */
	b->magic = 0;
	*(void **)p = A->free_list[b->cls];
	A->free_list[b->cls] = b;
}

void *prealloc(void *p, size_t size)
{
	struct block *b;
	size_t have;
	void *q;

	if (!p)
		return palloc(size);
	b = (struct block *)p - 1;
	have = ((size_t)1 << (b->cls + MIN_SHIFT)) - sizeof(*b);
	if (size <= have)
		return p;
	q = palloc(size);
	if (!q)
		return NULL;
	memcpy(q, p, have);
	pfree(p);
	return q;
}

size_t palloc_used(void)
{
	return A->bump - CKPT_PRIVATE_BASE;
}

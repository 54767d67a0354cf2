/*
 * crc_cache.c - per-page CRCs in a three-level radix tree on the private heap.
 *
 * Page numbers of a 48-bit address space have 36 bits: 12 bits per level.
 * A leaf holds 4096 CRCs and a bitmap of which are valid.
 */
#include "crc_cache.h"

#include <zlib.h>

#include "ckpt.h"
#include "palloc.h"

#define BITS 12
#define FAN (1u << BITS)

struct leaf {
	uint64_t valid[FAN / 64];
	uint32_t crc[FAN];
};

struct cache {
	long page_size;
	int page_shift;
	uint32_t zero_crc;
	uLong op_page;		/* crc32_combine_gen(page_size) */
	struct leaf **mid[FAN];
};

static struct cache *C; /* set once in the constructor, same in every process */

int crc_cache_init(long page_size)
{
	static const unsigned char zero[64];

	C = pcalloc(sizeof(*C));
	if (!C)
		return -1;
	C->page_size = page_size;
	while ((1L << C->page_shift) < page_size)
		C->page_shift++;
	/*
	 * Call each zlib function once here, in the constructor.  libz is bound
	 * lazily: its first call of its own exported crc32_z goes through its
	 * PLT, and ld.so writes the GOT and its own counters.  Inside a
	 * checkpoint that write would change memory after it was saved and
	 * before its CRC was taken.
	 */
	uLong z = crc32(0L, Z_NULL, 0);
	for (long n = 0; n < page_size; n += sizeof(zero))
		z = crc32(z, zero, sizeof(zero));
	C->zero_crc = (uint32_t)z;
	C->op_page = crc32_combine_gen(page_size);
	(void)crc32_combine_op(z, z, C->op_page);
	(void)crc32_combine(z, z, page_size);
	return 0;
}

static struct leaf *leaf_of(uintptr_t addr, bool create, unsigned *slot)
{
	uint64_t pn = addr >> C->page_shift;
	unsigned top = (pn >> (2 * BITS)) & (FAN - 1), mid = (pn >> BITS) & (FAN - 1);

	*slot = pn & (FAN - 1);
	if (!C->mid[top]) {
		if (!create || !(C->mid[top] = pcalloc(FAN * sizeof(struct leaf *))))
			return NULL;
	}
	if (!C->mid[top][mid]) {
		if (!create || !(C->mid[top][mid] = pcalloc(sizeof(struct leaf))))
			return NULL;
	}
	return C->mid[top][mid];
}

static void store(uintptr_t addr, uint32_t crc)
{
	unsigned s;
	struct leaf *l = leaf_of(addr, true, &s);

	if (l) { /* out of memory: the range CRC will read the page again */
		l->crc[s] = crc;
		l->valid[s / 64] |= 1ULL << (s % 64);
	}
}

void crc_cache_note_page(uintptr_t addr)
{
	store(addr, (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)addr, (uInt)C->page_size));
}

void crc_cache_note_zero(uintptr_t addr)
{
	store(addr, C->zero_crc);
}

uint32_t crc_cache_range(uintptr_t start, uintptr_t end)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	for (uintptr_t a = start; a < end; a += C->page_size) {
		unsigned s;
		struct leaf *l = leaf_of(a, false, &s);
		uint32_t pc;

		if (l && (l->valid[s / 64] & (1ULL << (s % 64)))) {
			pc = l->crc[s];
		} else {
			crc_cache_note_page(a);
			l = leaf_of(a, false, &s);
			pc = l ? l->crc[s]
			       : (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)a, (uInt)C->page_size);
		}
		crc = a == start ? pc : crc32_combine_op(crc, pc, C->op_page);
	}
	return (uint32_t)crc;
}

/*
 * track_mprotect.c - dirty tracking by write protection, at page granularity.
 *
 * After a checkpoint every page of the application's writable memory is made
 * read-only.  The first write to a page faults; the SIGSEGV handler makes
 * just that page writable again and lets the write proceed.
 *
 * Which pages were written is read back from /proc/self/maps at the next
 * checkpoint instead of from a list kept by the handler: a page is written
 * iff it is writable now.  That keeps the fault path to one lookup and one
 * mprotect, and it also catches memory that changed without a fault: a
 * mapping that libc unmapped and mapped again at the same place (malloc does,
 * through its internal mmap which no wrapper sees) comes back writable and
 * is saved whole.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>

#include "ckpt.h"
#include "log.h"
#include "palloc.h"
#include "sys.h"

static uintptr_t page_down(uintptr_t a) { return a & ~((uintptr_t)g->page_size - 1); }
static uintptr_t page_up(uintptr_t a) { return page_down(a + g->page_size - 1); }

static bool saveable(const struct vma *v)
{
	return v->special != VMA_KERNEL && v->special != VMA_PRIVATE &&
	       v->special != VMA_ALTSTACK;
}

/* The same mapping: same file (or both anonymous) at the same file offsets. */
static bool same_mapping(const struct vma *a, const struct vma *v)
{
	return a->dev == v->dev && a->ino == v->ino && a->shared == v->shared &&
	       (a->ino == 0 || a->offset - v->offset == (uint64_t)(a->start - v->start));
}

/*
 * Add to *writable the parts of read-only mapping v that we protected: they
 * lie in tracked memory and are still the mapping that was there when we
 * armed.  A part that fails the second test is a mapping that took the place
 * of tracked memory without our seeing it (ld.so mapping a library where
 * malloc had just unmapped a chunk) and is not the application's data.  The
 * kernel merges a protected page with a neighbour of the same protection (a
 * library's RELRO), so v may be only partly ours.
 */
static int add_protected(const struct vma *v, struct range_list **writable)
{
	struct range_list *list = v->prot & PROT_EXEC ? g->tracked_x : g->tracked;

	if ((v->prot & (PROT_READ | PROT_WRITE)) != PROT_READ)
		return 0;
	for (; list && list->range.start < v->end; list = list->next) {
		uintptr_t a = list->range.start > v->start ? list->range.start : v->start;
		uintptr_t b = list->range.end < v->end ? list->range.end : v->end;
		while (a < b) {
			int i = vma_find(&g->armed_maps, a);
			if (i < 0)
				break;
			const struct vma *armed = &g->armed_maps.v[i];
			uintptr_t e = armed->end < b ? armed->end : b;
			if (same_mapping(armed, v) && range_list_insert(writable, a, e, true))
				return -ENOMEM;
			a = e;
		}
	}
	return 0;
}

static int mp_collect(const struct vma_table *maps, struct range_list **writable,
		      struct range_list **save)
{
	for (int i = 0; i < maps->n; i++) {
		const struct vma *v = &maps->v[i];

		if (!saveable(v))
			continue;
		if (v->prot & PROT_WRITE) {
			/* Written since the last checkpoint, or new. */
			if (range_list_insert(writable, v->start, v->end, true) ||
			    range_list_insert(save, v->start, v->end, true))
				return -ENOMEM;
		} else if (g->armed && add_protected(v, writable)) {
			return -ENOMEM;
		}
	}
	return 0;
}

static int protect(uintptr_t start, uintptr_t end, int prot)
{
	long r = sys_mprotect((void *)start, end - start, prot);

	if (r < 0) {
		ckpt_perr((int)-r, "cannot write-protect %p-%p", (void *)start, (void *)end);
		return -1;
	}
	return 0;
}

static int mp_arm(struct range_list *writable, struct range_list *save,
		  const struct vma_table *maps)
{
	struct range_list *rw = NULL, *rwx = NULL;

	/* Split the writable memory by whether it is also executable (JIT
	   code): a fault must give such a page its execute bit back. */
	for (struct range_list *r = writable; r; r = r->next) {
		uintptr_t a = r->range.start;
		while (a < r->range.end) {
			int i = vma_find(maps, a);
			uintptr_t b = i >= 0 && maps->v[i].end < r->range.end ? maps->v[i].end : r->range.end;
			bool x = i >= 0 && (maps->v[i].prot & PROT_EXEC);
			if (range_list_insert(x ? &rwx : &rw, a, b, true))
				goto nomem;
			a = b;
		}
	}
	/* Only pages that were writable (just saved) need protecting again:
	   the rest are still read-only from the previous arm.  This is what
	   makes a checkpoint cost grow with the pages written, not the size. */
	for (struct range_list *s = save; s; s = s->next) {
		for (struct range_list *r = rw; r; r = r->next) {
			uintptr_t a = s->range.start > r->range.start ? s->range.start : r->range.start;
			uintptr_t b = s->range.end < r->range.end ? s->range.end : r->range.end;
			if (a < b && protect(a, b, PROT_READ))
				goto fail;
		}
		for (struct range_list *r = rwx; r; r = r->next) {
			uintptr_t a = s->range.start > r->range.start ? s->range.start : r->range.start;
			uintptr_t b = s->range.end < r->range.end ? s->range.end : r->range.end;
			if (a < b && protect(a, b, PROT_READ | PROT_EXEC))
				goto fail;
		}
	}
	range_list_free(&g->tracked);
	range_list_free(&g->tracked_x);
	g->tracked = rw;
	g->tracked_x = rwx;
	vma_table_free(&g->armed_maps);
	g->armed_maps = *maps; /* ownership moves to the tracker */
	g->armed = true;
	return 0;
nomem:
	ckpt_err("out of private memory while arming write protection");
fail:
	range_list_free(&rw);
	range_list_free(&rwx);
	return -1;
}

/*
 * glibc's realloc moves a large block with mremap, through an internal call
 * no wrapper sees, and the pages keep the read-only protection we gave them
 * at an address we never tracked.  The first write there would look like a
 * genuine fault and kill the process.  A write fault in private anonymous
 * memory that is exactly read-only (no library maps such memory; we protect
 * to exactly that) is taken for moved tracked memory: the whole mapping is
 * opened at once, and the next checkpoint saves it as new memory.  Memory the
 * application made read-only itself (mm_wrap.c records it) is never adopted:
 * a write there is the application's fault.
 */
static bool adopt_moved(uintptr_t addr)
{
	struct vma_table t;
	bool ok = false;

	if (maps_read(&t) < 0)
		return false;
	int i = vma_find(&t, addr);
	if (i >= 0 && !range_list_find(g->app_readonly, addr)) {
		const struct vma *v = &t.v[i];
		if (v->ino == 0 && !v->shared && v->special == VMA_PLAIN && v->prot == PROT_READ)
			ok = sys_mprotect((void *)v->start, v->end - v->start,
					  PROT_READ | PROT_WRITE) == 0;
	}
	vma_table_free(&t);
	return ok;
}

static bool mp_fault(uintptr_t addr, int si_code)
{
	uintptr_t page = page_down(addr);
	int prot;

	if (si_code != SEGV_ACCERR || !g->armed)
		return false;
	if (range_list_find(g->tracked, addr))
		prot = PROT_READ | PROT_WRITE;
	else if (range_list_find(g->tracked_x, addr))
		prot = PROT_READ | PROT_WRITE | PROT_EXEC;
	else
		return adopt_moved(addr);
	long r = sys_mprotect((void *)page, g->page_size, prot);
	if (r == -ENOMEM) {
		/* Too many mappings (vm.max_map_count): each lone writable page
		   splits one.  Open the whole tracked range; it is saved whole. */
		struct range_list *n = range_list_find(prot & PROT_EXEC ? g->tracked_x : g->tracked, addr);
		r = sys_mprotect((void *)n->range.start, n->range.end - n->range.start, prot);
	}
	return r == 0;
}

static void open_span(struct range_list *list, uintptr_t start, uintptr_t end, int prot)
{
	for (; list && list->range.start < end; list = list->next) {
		uintptr_t a = list->range.start > start ? list->range.start : start;
		uintptr_t b = list->range.end < end ? list->range.end : end;
		if (a < b)
			sys_mprotect((void *)a, b - a, prot);
	}
}

static void mp_prepare_write(uintptr_t addr, size_t len)
{
	if (!g->armed || len == 0)
		return;
	uintptr_t a = page_down(addr), b = page_up(addr + len);
	open_span(g->tracked, a, b, PROT_READ | PROT_WRITE);
	open_span(g->tracked_x, a, b, PROT_READ | PROT_WRITE | PROT_EXEC);
}

static void mp_remapped(uintptr_t start, uintptr_t end, int prot)
{
	uintptr_t a = page_down(start), b = page_up(end);

	/* Whatever is there now is not memory we protected. */
	range_list_remove(&g->tracked, a, b);
	range_list_remove(&g->tracked_x, a, b);
	if (prot >= 0 && (prot & (PROT_READ | PROT_WRITE)) == PROT_READ)
		range_list_insert(&g->app_readonly, a, b, false);
	else
		range_list_remove(&g->app_readonly, a, b);
}

static void mp_reset(void)
{
	range_list_free(&g->tracked);
	range_list_free(&g->tracked_x);
	vma_table_free(&g->armed_maps);
	g->armed = false;
}

const struct ckpt_tracker ckpt_tracker_mprotect = {
	.name = "mprotect",
	.collect = mp_collect,
	.arm = mp_arm,
	.fault = mp_fault,
	.prepare_write = mp_prepare_write,
	.remapped = mp_remapped,
	.reset = mp_reset,
};

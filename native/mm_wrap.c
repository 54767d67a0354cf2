/*
 * mm_wrap.c - the application's own changes to its address space.
 *
 * A page the core write-protected is one the application may write: the
 * SIGSEGV handler opens it again.  When the application itself makes memory
 * read-only (mprotect), unmaps it, or maps something else in its place, that
 * is no longer true, and a write there must end the program with SIGSEGV as
 * it would without the core.  These wrappers tell the tracker.  libc's
 * internal calls (malloc's mmap, ld.so's) do not come through here; the
 * tracker copes with those on its own (track_mprotect.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <sys/mman.h>

#include "ckpt.h"
#include "sys.h"

static void tell(void *addr, size_t len, int prot)
{
	if (!g || !g->active || len == 0)
		return;
	uint64_t mask = ckpt_block_signals();
	g->tracker->remapped((uintptr_t)addr, (uintptr_t)addr + len, prot);
	ckpt_restore_signals(mask);
}

CKPT_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = sys_mmap(addr, len, prot, flags, fd, off);

	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	tell((void *)r, len, prot);
	return (void *)r;
}

CKPT_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	return mmap(addr, len, prot, flags, fd, off);
}

CKPT_EXPORT int munmap(void *addr, size_t len)
{
	long r = sys_munmap(addr, len);

	if (r == 0)
		tell(addr, len, -1);
	return (int)ckpt_sys_ret(r);
}

CKPT_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	long r = sys_mprotect(addr, len, prot);

	if (r == 0)
		tell(addr, len, prot);
	return (int)ckpt_sys_ret(r);
}

CKPT_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *want = NULL;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		want = va_arg(ap, void *);
		va_end(ap);
	}
	long r = SYS6(SYS_mremap, old, old_len, new_len, flags, want, 0);
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return MAP_FAILED;
	}
	/* The pages keep their protection where they land; the tracker adopts
	   them on the first write (track_mprotect.c). */
	if ((void *)r != old || new_len < old_len)
		tell(old, old_len, -1);
	return (void *)r;
}

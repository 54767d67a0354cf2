/*
 * palloc.h - the checkpointer's private allocator.
 *
 * Everything the checkpointer allocates (its state, range lists, buffers,
 * its own context's stack) comes from one region mapped at a fixed address,
 * CKPT_PRIVATE_BASE, that is never write-protected and never saved.  Fixed,
 * because a restarted process must find its state pointer, saved in the
 * library's .bss as part of the image, pointing at its own fresh region
 * (DESIGN §4 trap 11).  Power-of-two size classes with free lists: O(1),
 * no locks, no libc.  Callers in application context block signals while
 * they allocate, since the SIGPROF checkpoint allocates too.
 */
#ifndef IPYCKPT_PALLOC_H
#define IPYCKPT_PALLOC_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_PRIVATE_BASE 0x6fff00000000UL
#define CKPT_PRIVATE_SIZE (1UL << 30)	/* reserved, not committed */

/* Map the region; 0, or -errno. */
int palloc_init(void);
void *palloc(size_t size);
void *pcalloc(size_t size);
void *prealloc(void *p, size_t size);
void pfree(void *p);
/* Bytes handed out from the region so far (for diagnostics). */
size_t palloc_used(void);

#endif

/*
 * unmapped_write - a write to unmapped memory still ends the program with
 * SIGSEGV under the checkpointer (seed test 2).
 *
 *   unmapped_write        writes to a page that was mapped (and
 *                         write-protected by a checkpoint) and then unmapped
 *   unmapped_write remap  the same page mapped again read-only at the same
 *                         address (MAP_FIXED): a write there is a protection
 *                         fault at an address the tracker once protected
 *   unmapped_write null   writes through a NULL pointer
 *
 * All take a checkpoint first (manual mode) and must die by signal 11.
 */
#include <string.h>
#include <sys/mman.h>

#include "seed_common.h"

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "munmap";
	char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char *target = page;

	if (page == MAP_FAILED)
		return 1;
	strcpy(page, "mapped, for now");
	take();				/* the page is now write-protected by the core */
	if (!strcmp(how, "null")) {
		target = NULL;
	} else {
		if (munmap(page, 4096))
			return 1;
		if (!strcmp(how, "remap") &&
		    mmap(page, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != page)
			return 1;
	}
	say("writing to unmapped memory (%s)\n", how);
	target[0] = 'X';
	say("the write succeeded\n");	/* must never print */
	return 0;
}

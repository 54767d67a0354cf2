/*
 * readonly_write - a write to read-only memory still ends the program with
 * SIGSEGV under the checkpointer (seed test 1): its fault handler must let
 * through only writes to pages it protected itself.
 *
 *   readonly_write           writes to a string constant (.rodata)
 *   readonly_write mprotect  writes to a page the program itself made
 *                            read-only after a checkpoint had protected it
 *                            (the page is in the tracker's lists, but the
 *                            read-only protection is now the program's)
 *
 * Both take a checkpoint first (manual mode) and must die by signal 11.
 */
#include <string.h>
#include <sys/mman.h>

#include "seed_common.h"

static const char constant[] = "read-only";

int main(int argc, char **argv)
{
	volatile char *target = (volatile char *)constant;

	if (argc > 1 && !strcmp(argv[1], "mprotect")) {
		char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			return 1;
		strcpy(page, "writable, for now");
		take();			/* the page is now write-protected by the core */
		if (mprotect(page, 4096, PROT_READ))
			return 1;
		target = page;
	} else {
		take();
	}
	say("writing to read-only memory\n");
	target[0] = 'X';
	say("the write succeeded: %c\n", target[0]);	/* must never print */
	return 0;
}

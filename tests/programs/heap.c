/*
 * heap - the checkpointer saves and restores the heap (seed test 5).
 *
 * A 2^28-byte malloc'd array holds the digits 0123456789 repeated and a
 * final NUL.  Ten passes then keep changing it, each pass one stripe of its
 * pages (every 20th page): passes 0-4 add 1 to every digit of stripes 0-4,
 * passes 5-9 add 9 to the same stripes, so every digit ends where it
 * started, and a restart that brings back a stale or partial heap (a page
 * from the wrong epoch) leaves wrong digits, which the final check reports
 * (exit status 1).  Manual mode checkpoints after filling and after passes
 * 2, 5 and 8; periodic mode whenever the timer fires.  Output, run straight
 * or restarted:
 *   start array: 0123456789
 *   end array:   5678901234
 * (2^28 - 2 = 268435454 is the last digit's index, and it ends with a 4).
 * Progress goes to stderr: "heap: pass N".
 */
#include <stdint.h>

#include "seed_common.h"

#define SIZE (1UL << 28)
#define PAGE 4096UL
#define PASSES 10

/* Add `add` (mod 10) to every digit on the pages whose number is s mod 20. */
static void add_to_stripe(char *array, unsigned s, int add)
{
	for (unsigned long i = 0; i < SIZE - 1;) {
		uintptr_t page = (uintptr_t)(array + i) / PAGE;
		unsigned long next = (page + 1) * PAGE - (uintptr_t)array;
		if (next > SIZE - 1)
			next = SIZE - 1;	/* leave the NUL alone */
		if (page % 20 == s)
			for (; i < next; i++)
				array[i] = '0' + (array[i] - '0' + add) % 10;
		i = next;
	}
}

int main(void)
{
	char *array = malloc(SIZE);

	if (!array)
		return 1;
	note("heap: filling\n");
	for (unsigned long i = 0; i < SIZE - 1; i++)
		array[i] = '0' + i % 10;
	array[SIZE - 1] = 0;
	say("start array: %.10s\n", array);
	take();
	for (int pass = 0; pass < PASSES; pass++) {
		add_to_stripe(array, pass % 5, pass < 5 ? 1 : 9);
		note("heap: pass %d\n", pass);
		if (pass % 3 == 2)
			take();
		delay(250);
	}
	for (unsigned long i = 0; i < SIZE - 1; i++)
		if (array[i] != '0' + (char)(i % 10)) {
			note("heap: wrong digit %c at %lu\n", array[i], i);
			return 1;
		}
	say("end array:   %s\n", array + SIZE - 11);
	free(array);
	return 0;
}

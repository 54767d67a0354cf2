/*
 * fib - the checkpointer saves and restores the stack (seed test 3).
 *
 * fib(50) by linear recursion, 50 frames deep.  Every partial result lives
 * in a frame (f and p below), and each frame carries 1 KiB of scratch filled
 * with a pattern of its depth, checked on the way back up, so the recursion
 * spans many stack pages.  At the bottom the program checkpoints (manual
 * mode) and spins 2 s of CPU time (periodic checkpoints fire there): a
 * restart from there must bring back all 50 frames to finish the sums.
 * stdout, run straight or restarted:  fib(50) = 12586269025
 * stderr: "fib: start", "fib: at depth 50"; exit status 1 if a frame is bad.
 */
#include <inttypes.h>
#include <stdint.h>

#include "seed_common.h"

#define SCRATCH 1024

/* fib(n); *prev = fib(n - 1). */
static uint64_t fib(int n, uint64_t *prev)
{
	volatile unsigned char scratch[SCRATCH];
	uint64_t f, p;

	if (n <= 1) {
		*prev = 0;
		note("fib: at depth 50\n");
		take();
		delay(2000);
		return 1;
	}
	for (int i = 0; i < SCRATCH; i++)
		scratch[i] = (unsigned char)(n * 7 + i);
	f = fib(n - 1, &p);
	for (int i = 0; i < SCRATCH; i++)
		if (scratch[i] != (unsigned char)(n * 7 + i)) {
			note("fib: frame of fib(%d) damaged at byte %d\n", n, i);
			exit(1);
		}
	*prev = f;
	return f + p;
}

int main(void)
{
	uint64_t prev;

	note("fib: start\n");
	uint64_t f = fib(50, &prev);
	say("fib(50) = %" PRIu64 "\n", f);
	return 0;
}

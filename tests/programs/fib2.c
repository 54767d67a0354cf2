/*
 * fib2 - the checkpointer handles a stack that grows after a checkpoint
 * (seed test 4).
 *
 * The program checkpoints first at a shallow depth (in main), then recurses
 * 50 frames deep with 8 KiB of scratch per frame, so the stack grows by
 * some 400 KiB past what the first checkpoint saw, and checkpoints again at
 * the bottom.  A restart from the first checkpoint must let the stack grow
 * again; a restart from the second must bring back a stack larger than the
 * new process has.  Each phase spins 1.5 s of CPU time for periodic mode.
 * stdout, run straight or restarted:  fib(50) = 12586269025
 * stderr: "fib2: start", "fib2: at depth 0", "fib2: at depth 50".
 */
#include <inttypes.h>
#include <stdint.h>

#include "seed_common.h"

#define SCRATCH 8192

/* fib(n); *prev = fib(n - 1). */
static uint64_t fib(int n, uint64_t *prev)
{
	volatile unsigned char scratch[SCRATCH];
	uint64_t f, p;

	if (n <= 1) {
		*prev = 0;
		note("fib2: at depth 50\n");
		take();
		delay(1500);
		return 1;
	}
	for (int i = 0; i < SCRATCH; i += 64)
		scratch[i] = (unsigned char)(n * 13 + i / 64);
	f = fib(n - 1, &p);
	for (int i = 0; i < SCRATCH; i += 64)
		if (scratch[i] != (unsigned char)(n * 13 + i / 64)) {
			note("fib2: frame of fib(%d) damaged at byte %d\n", n, i);
			exit(1);
		}
	*prev = f;
	return f + p;
}

int main(void)
{
	uint64_t prev;

	note("fib2: start\n");
	note("fib2: at depth 0\n");
	take();
	delay(1500);
	uint64_t f = fib(50, &prev);
	say("fib(50) = %" PRIu64 "\n", f);
	return 0;
}

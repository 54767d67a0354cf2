/*
 * dirty_heap - a SIGKILL in the middle of writing a checkpoint leaves the
 * previous one restorable (DESIGN §4 trap 7).
 *
 * 384 MiB of heap are rewritten completely before each of ROUNDS manual
 * checkpoints (every byte of round r is (i * 131 + r) & 0xff), so each
 * checkpoint writes some 384 MiB and takes a noticeable time: the test
 * kills the program while P.data.N is being written and P.map still names
 * epoch N-1.  A restart must resume from epoch N-1, where checkpoint()
 * returns CKPT_RESTARTED: it prints "restarted in round R" and carries on.
 * Before every round it checks that the memory holds the previous round's
 * bytes (exit status 1 if not), and ends with "done, all rounds checked".
 * Each round prints "round R" before its checkpoint.
 */
#include <stdint.h>

#include "seed_common.h"

#define SIZE (384UL << 20)
#define ROUNDS 4

static void fill(uint64_t *mem, int round)
{
	for (size_t i = 0; i < SIZE / 8; i++)
		mem[i] = i * 0x9e3779b97f4a7c15ULL + round;
}

static int check(const uint64_t *mem, int round)
{
	for (size_t i = 0; i < SIZE / 8; i++)
		if (mem[i] != i * 0x9e3779b97f4a7c15ULL + round) {
			note("dirty_heap: word %zu is wrong after round %d\n", i, round);
			return -1;
		}
	return 0;
}

int main(void)
{
	uint64_t *mem = malloc(SIZE);

	if (!mem)
		return 1;
	for (int round = 0; round < ROUNDS; round++) {
		if (round && check(mem, round - 1))
			return 1;
		fill(mem, round);
		say("round %d\n", round);
		if (take() == CKPT_RESTARTED)
			say("restarted in round %d\n", round);
	}
	if (check(mem, ROUNDS - 1))
		return 1;
	say("done, all rounds checked\n");
	return 0;
}

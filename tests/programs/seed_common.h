/*
 * seed_common.h - helpers shared by the seed's test programs.
 *
 * say()    prints one line and flushes it at once, so output written before a
 *          SIGKILL is neither lost (still in a stdio buffer) nor printed twice
 *          (a buffer saved in a checkpoint and flushed again after restart).
 * delay()  burns CPU time.  The periodic timer (CKPT_PERIOD) counts CPU time,
 *          so a program that slept would never be checkpointed.
 * take()   checkpoint(), stopping the program if it failed.
 * read_line() reads one line a byte at a time with read(2), so the file
 *          offset is exactly the program's position in the file: a restart
 *          must put it back there.
 */
#ifndef SEED_COMMON_H
#define SEED_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <checkpoint.h>

#define say(...) do { printf(__VA_ARGS__); fflush(stdout); } while (0)
#define note(...) do { fprintf(stderr, __VA_ARGS__); fflush(stderr); } while (0)

static inline long long cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/*
 * Spin for ms milliseconds of CPU time.  The time is summed in small steps:
 * a restarted process's CPU clock starts again near 0, and a step in which
 * the clock went backwards simply counts for nothing.
 */
static void __attribute__((noinline, unused)) delay(long ms)
{
	long long used = 0, last = cpu_ns();

	while (used < ms * 1000000LL) {
		for (volatile int i = 0; i < 20000; i++)
			;
		long long now = cpu_ns();
		if (now > last)
			used += now - last;
		last = now;
	}
}

/* CKPT_TAKEN, CKPT_RESTARTED or (periodic mode) CKPT_IGNORED. */
static inline int take(void)
{
	int r = checkpoint();

	if (r == CKPT_FAILED) {
		note("checkpoint failed: %s\n", ckpt_last_error());
		exit(1);
	}
	return r;
}

/* A line of fd into buf (NUL terminated, newline kept); its length, 0 at EOF. */
static inline size_t read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	char c;

	while (n + 1 < size && read(fd, &c, 1) == 1) {
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = 0;
	return n;
}

#endif

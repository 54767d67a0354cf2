/*
 * segv_handler - a SIGSEGV handler installed by the program after start-up
 * (as Python's faulthandler does) must neither break dirty tracking nor be
 * robbed of genuine faults (DESIGN §4 trap 5).
 *
 *   segv_handler           sigaction(SIGSEGV, SA_SIGINFO) in main
 *   segv_handler altstack  the same with SA_ONSTACK|SA_NODEFER, on a
 *                          sigaltstack() of its own in malloc'd memory,
 *                          exactly what faulthandler.enable() does
 *
 * After installing it: fill 64 KiB of .bss with pattern 1, checkpoint,
 * overwrite it with pattern 2 (write faults the core must handle, not the
 * handler), print "values written", checkpoint, spin 1.5 s of CPU time (the
 * test kills and restarts it there), check the values ("values ok"), then
 * write through NULL: the handler prints "handler: SIGSEGV at 0x0" and
 * _exit(42)s.  A fault reaching the handler early prints the same and
 * exits 42 before "values ok".
 */
#include <signal.h>
#include <string.h>

#include "seed_common.h"

#define WORDS (64 * 1024 / sizeof(long))

static long values[WORDS];

static void handler(int sig, siginfo_t *si, void *uc)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "handler: SIGSEGV at %p\n", si->si_addr);

	(void)sig;
	(void)uc;
	if (write(1, msg, n) < 0)
		_exit(43);
	_exit(42);
}

static void fill(long pattern)
{
	for (size_t i = 0; i < WORDS; i++)
		values[i] = pattern * (long)i;
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (argc > 1 && !strcmp(argv[1], "altstack")) {
		stack_t ss = { .ss_size = SIGSTKSZ * 4 };
		ss.ss_sp = malloc(ss.ss_size);
		if (!ss.ss_sp || sigaltstack(&ss, NULL))
			return 1;
		sa.sa_flags |= SA_ONSTACK | SA_NODEFER;
	}
	if (sigaction(SIGSEGV, &sa, NULL))
		return 1;
	fill(1);
	take();
	fill(2);
	say("values written\n");
	take();
	delay(1500);
	for (size_t i = 0; i < WORDS; i++)
		if (values[i] != 2 * (long)i) {
			say("values wrong at %zu\n", i);
			return 1;
		}
	say("values ok\n");
	*(volatile int *)NULL = 1;
	say("the NULL write succeeded\n");
	return 0;
}

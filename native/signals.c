/*
 * signals.c - the core's signal handlers and what the application sees of them.
 *
 * SIGSEGV: write faults on tracked pages are the tracker's; every other fault
 * (a write to read-only or unmapped memory, a bad pointer) is the
 * application's and goes to the disposition it set, so the program still dies
 * by signal 11, or its own handler (Python's faulthandler) still prints its
 * report.  DESIGN §4 trap 5: sigaction(SIGSEGV) by the application is wrapped
 * so that it records the application's handler instead of replacing ours, and
 * every checkpoint re-asserts ours in case something used the raw syscall.
 *
 * SIGPROF: the periodic checkpoint, on the alternate signal stack.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "ckpt.h"
#include "log.h"
#include "sys.h"

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);
static sigaction_fn real_sigaction;

static void to_ksig(const struct sigaction *a, struct ckpt_ksigaction *k)
{
	k->handler = (void *)a->sa_handler;
	k->flags = a->sa_flags;
	k->restorer = (void *)a->sa_restorer;
	memcpy(&k->mask, &a->sa_mask, sizeof(k->mask));
}

static void from_ksig(const struct ckpt_ksigaction *k, struct sigaction *a)
{
	memset(a, 0, sizeof(*a));
	a->sa_handler = (void (*)(int))k->handler;
	a->sa_flags = (int)k->flags;
	a->sa_restorer = (void (*)(void))k->restorer;
	memcpy(&a->sa_mask, &k->mask, sizeof(k->mask));
}

/* A fault that is not ours: hand it to what the application installed. */
static void chain_segv(int sig, siginfo_t *si, void *uc)
{
	struct sigaction app = g->app_segv;

	if (app.sa_handler == SIG_DFL || app.sa_handler == SIG_IGN) {
		/* Die as the program would have: a fault re-executes the
		   instruction on return; a sent signal is sent again. */
		struct ckpt_ksigaction dfl = g->our_segv;
		dfl.handler = SIG_DFL;
		dfl.flags &= ~SA_SIGINFO;
		sys_rt_sigaction(SIGSEGV, &dfl, NULL);
		if (si->si_code <= 0)
			sys_tgkill((int)sys_getpid(), (int)sys_gettid(), SIGSEGV);
		return;
	}
	if (app.sa_flags & SA_RESETHAND) {
		memset(&g->app_segv, 0, sizeof(g->app_segv));
		g->app_segv.sa_handler = SIG_DFL;
	}
	uint64_t old, mask;
	memcpy(&mask, &app.sa_mask, sizeof(mask));
	sys_rt_sigprocmask(SIG_BLOCK, &mask, &old);
	if (app.sa_flags & SA_SIGINFO)
		app.sa_sigaction(sig, si, uc);
	else
		app.sa_handler(sig);
	sys_rt_sigprocmask(SIG_SETMASK, &old, NULL);
}

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	if (g && g->tracker->fault((uintptr_t)si->si_addr, si->si_code))
		return;
	chain_segv(sig, si, uc);
}

static void prof_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	if (!g->active || g->in_checkpoint || sys_getpid() != g->pid)
		return;
	ckpt_take_from(uc);
}

int ckpt_signals_init(void)
{
	struct sigaction sa;
	struct ckpt_ksigaction k;

	real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (!real_sigaction) {
		ckpt_err("cannot find libc's sigaction");
		return -1;
	}
	/* The application's SIGSEGV disposition so far (normally SIG_DFL). */
	real_sigaction(SIGSEGV, NULL, &g->app_segv);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	/* SA_NODEFER: the application's own handler, called from ours, may
	   write to a protected page and fault again. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGPROF);
	if (real_sigaction(SIGSEGV, &sa, NULL)) {
		ckpt_perr(errno, "cannot install the SIGSEGV handler");
		return -1;
	}
	sys_rt_sigaction(SIGSEGV, NULL, &k);
	g->our_segv = k;

	return 0;
}

/*
 * Periodic checkpoints: the SIGPROF handler and a timer of CPU time.  Raw
 * system calls: a restart calls this after the image has replaced libc's
 * state.  The restorer trampoline is libc's, as our SIGSEGV action has it.
 */
int ckpt_periodic_start(int period)
{
	struct ckpt_ksigaction k = {
		.handler = (void *)prof_handler,
		.flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | CKPT_SA_RESTORER,
		.restorer = g->our_segv.restorer,
		/* everything but the synchronous faults */
		.mask = ~((1ULL << (SIGSEGV - 1)) | (1ULL << (SIGBUS - 1))),
	};
	struct itimerval it = {
		.it_interval = { .tv_sec = period },
		.it_value = { .tv_sec = period },
	};
	long r = sys_rt_sigaction(SIGPROF, &k, NULL);

	if (r == 0)
		r = sys_setitimer(ITIMER_PROF, &it, NULL);
	if (r < 0) {
		ckpt_perr((int)-r, "cannot start periodic checkpoints every %d s", period);
		return -1;
	}
	g->our_prof = k;
	return 0;
}

CKPT_EXPORT int ckpt_set_period(int seconds)
{
	struct itimerval off = { { 0, 0 }, { 0, 0 } };

	if (!g || !g->active) {
		errno = ENOSYS;
		return -1;
	}
	if (seconds < 0) {
		errno = EINVAL;
		return -1;
	}
	uint64_t mask = ckpt_block_signals();
	int rc = 0;
	if (seconds > 0)
		rc = ckpt_periodic_start(seconds);
	else
		sys_setitimer(ITIMER_PROF, &off, NULL);
	if (!rc)
		g->period = seconds;
	ckpt_restore_signals(mask);
	if (rc)
		errno = EINVAL;
	return rc;
}

void ckpt_segv_reassert(void)
{
	struct ckpt_ksigaction cur;

	if (sys_rt_sigaction(SIGSEGV, NULL, &cur) < 0 || cur.handler == g->our_segv.handler)
		return;
	/* Installed behind our back with the raw syscall: adopt it as the
	   application's handler and put ours back in front of it. */
	ckpt_debug(1, "SIGSEGV handler %p replaced ours; chaining to it", cur.handler);
	from_ksig(&cur, &g->app_segv);
	sys_rt_sigaction(SIGSEGV, &g->our_segv, NULL);
}

/* DESIGN §4 trap 2: dispositions live in the kernel, so they go in the sidecar. */
int ckpt_signals_save(struct ckpt_sig_rec *recs, int max)
{
	int n = 0;

	for (int s = 1; s <= 64 && n < max; s++) {
		struct ckpt_ksigaction k;

		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (s == SIGSEGV)
			to_ksig(&g->app_segv, &k);
		else if (s == SIGPROF && g->period > 0)
			continue; /* ours, set up again by the constructor */
		else if (sys_rt_sigaction(s, NULL, &k) < 0)
			continue;
		if (k.handler == SIG_DFL && k.flags == 0)
			continue;
		recs[n].signo = s;
		recs[n].reserved = 0;
		recs[n].handler = (uintptr_t)k.handler;
		recs[n].flags = k.flags;
		recs[n].restorer = (uintptr_t)k.restorer;
		recs[n].mask = k.mask;
		n++;
	}
	return n;
}

void ckpt_signals_restore(const struct ckpt_sig_rec *recs, int n)
{
	for (int i = 0; i < n; i++) {
		struct ckpt_ksigaction k = {
			.handler = (void *)(uintptr_t)recs[i].handler,
			.flags = recs[i].flags,
			.restorer = (void *)(uintptr_t)recs[i].restorer,
			.mask = recs[i].mask,
		};
		if (recs[i].signo == SIGSEGV)
			from_ksig(&k, &g->app_segv);
		else if (!(recs[i].signo == SIGPROF && g->period > 0))
			sys_rt_sigaction(recs[i].signo, &k, NULL);
	}
}

/* ---- what the application calls ---------------------------------------- */

CKPT_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (!real_sigaction)
		real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
	if (g && g->active && (sig == SIGSEGV || (sig == SIGPROF && g->period > 0))) {
		if (sig == SIGPROF) {
			/* The periodic timer is ours; an application handler
			   would never run, so say so instead of pretending. */
			if (act && act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN) {
				ckpt_err("SIGPROF is used for periodic checkpoints (CKPT_PERIOD=%d); "
					 "the application's SIGPROF handler is not installed", g->period);
				errno = EBUSY;
				return -1;
			}
			if (old) {
				memset(old, 0, sizeof(*old));
				old->sa_handler = SIG_DFL;
			}
			return 0;
		}
		uint64_t mask = ckpt_block_signals();
		if (old)
			*old = g->app_segv;
		if (act)
			g->app_segv = *act;
		ckpt_restore_signals(mask);
		return 0;
	}
	return real_sigaction(sig, act, old);
}

/*
 * Our alternate signal stack must stay installed: a fault on a protected page
 * is handled on it, and a stack the application allocates (faulthandler
 * mallocs one) lies in memory that may itself be write-protected, where the
 * kernel cannot build a signal frame and kills the process.  The
 * application's request is recorded and reported back, and its handlers run
 * on our stack.
 */
CKPT_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	if (!g || !g->active)
		return (int)ckpt_sys_ret(sys_sigaltstack(ss, old));
	if (ss && !(ss->ss_flags & SS_DISABLE) && ss->ss_size < (size_t)MINSIGSTKSZ) {
		errno = ENOMEM;
		return -1;
	}
	uint64_t mask = ckpt_block_signals();
	stack_t prev = g->app_altstack;
	if (ss)
		g->app_altstack = *ss;
	ckpt_restore_signals(mask);
	if (old) {
		if (!prev.ss_sp && !prev.ss_size)
			prev.ss_flags = SS_DISABLE;
		*old = prev;
	}
	return 0;
}

/* glibc's signal() calls its internal sigaction, which the wrapper above
   would not see; give it BSD semantics as glibc does. */
CKPT_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction sa, old;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, sig);
	if (sigaction(sig, &sa, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

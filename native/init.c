/*
 * init.c - the constructor: configuration, the checkpointer's own resources,
 * and the decision to start afresh or restart.
 *
 * The seed's order, with the reasons it matters:
 *   1. read CKPT_* (bad values stop the program before main, status 2);
 *   2. map the private heap at its fixed address and put the state there;
 *   3. map the alternate signal stack at its fixed address;
 *   4. install the SIGSEGV (and, with a period, SIGPROF) handler;
 *   5. hide the core from child processes (DESIGN §4 trap 18);
 *   6. restart if CKPT_RESTART is set (restore.c; does not return), else
 *      start the SIGPROF timer and let main run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "crc_cache.h"
#include "log.h"
#include "palloc.h"
#include "sys.h"

#define EXIT_CONFIG 2

struct ckpt_state *g;

uint64_t ckpt_now_ns(void)
{
	struct timespec ts;
	sys_clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t ckpt_block_signals(void)
{
	/* Everything but the synchronous faults: a blocked SIGSEGV from a real
	   fault would kill the process instead of reaching the tracker. */
	uint64_t all = ~((1ULL << (SIGSEGV - 1)) | (1ULL << (SIGBUS - 1)) |
			 (1ULL << (SIGILL - 1)) | (1ULL << (SIGFPE - 1)) |
			 (1ULL << (SIGTRAP - 1)));
	uint64_t old = 0;
	sys_rt_sigprocmask(SIG_BLOCK, &all, &old);
	return old;
}

void ckpt_restore_signals(uint64_t old)
{
	sys_rt_sigprocmask(SIG_SETMASK, &old, NULL);
}

/* P<suffix>, or P<suffix>.N when epoch >= 0. */
int ckpt_path(char *buf, size_t size, const char *suffix, long epoch)
{
	if (epoch >= 0)
		return ckpt_fmt(buf, size, "%s%s.%ld", g->prefix, suffix, epoch);
	return ckpt_fmt(buf, size, "%s%s", g->prefix, suffix);
}

static _Noreturn void config_error(void)
{
	sys_exit_group(EXIT_CONFIG);
}

static void read_config(void)
{
	const char *prefix = getenv("CKPT_PREFIX");
	const char *period = getenv("CKPT_PERIOD");
	const char *debug = getenv("CKPT_DEBUG");

	if (!prefix || !*prefix) {
		ckpt_err("CKPT_PREFIX is %s; set it to the path prefix of the checkpoint files, "
			 "e.g. CKPT_PREFIX=$PWD/ckpt/app", prefix ? "empty" : "not set");
		config_error();
	}
	if (strlen(prefix) >= MAXFILENAME - 32) {
		ckpt_err("CKPT_PREFIX is longer than %d characters", MAXFILENAME - 32);
		config_error();
	}
	ckpt_fmt(g->prefix, sizeof(g->prefix), "%s", prefix);
	g->restart = getenv("CKPT_RESTART") != NULL;
	if (period && *period && !g->restart) {
		long v = 0;
		const char *p = period;
		for (; *p >= '0' && *p <= '9' && v <= 1000000000; p++)
			v = v * 10 + (*p - '0');
		if (*p || p == period || v > 1000000000) {
			ckpt_err("CKPT_PERIOD must be a whole number of seconds, 0 or more (0: only "
				 "on-demand checkpoints); got '%s'", period);
			config_error();
		}
		g->period = (int)v;
	}
	const char *notify = getenv("CKPT_NOTIFY");
	if (notify && *notify) {
		int sig = 0;
		const char *p = notify;
		for (; *p >= '0' && *p <= '9' && sig < 100; p++)
			sig = sig * 10 + (*p - '0');
		if (*p || sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP ||
		    sig == SIGSEGV || sig == SIGPROF) {
			ckpt_err("CKPT_NOTIFY must be a signal number (1-64, not SIGKILL, SIGSTOP, "
				 "SIGSEGV or SIGPROF); got '%s'", notify);
			config_error();
		}
		g->notify_signal = sig;
	}
	if (debug)
		g->debug = *debug >= '2' && *debug <= '9' ? *debug - '0' : 1;
	const char *pre = getenv("LD_PRELOAD");
	ckpt_fmt(g->preload, sizeof(g->preload), "%s", pre ? pre : "");
}

/* Remove the core's own entry from LD_PRELOAD, keeping any others. */
static void drop_from_preload(void)
{
	const char *pre = getenv("LD_PRELOAD");
	char keep[MAXFILENAME];
	size_t n = 0;

	if (!pre || !strstr(pre, "libcheckpoint"))
		return;
	for (const char *p = pre; *p;) {
		size_t len = strcspn(p, ": ");
		if (len && !memmem(p, len, "libcheckpoint", 13) && n + len + 2 < sizeof(keep)) {
			if (n)
				keep[n++] = ':';
			memcpy(keep + n, p, len);
			n += len;
		}
		p += len;
		p += strspn(p, ": ");
	}
	keep[n] = 0;
	if (n)
		setenv("LD_PRELOAD", keep, 1);
	else
		unsetenv("LD_PRELOAD");
}

/*
 * DESIGN §4 trap 18: programs this one starts (system(), a shell, pip) get
 * neither the preload nor the variables, or they would checkpoint themselves
 * into our files.  Removed from environ after reading: the restored process
 * has its own copy of environ from the image anyway.
 */
static void hide_from_children(void)
{
	static const char *const vars[] = { "CKPT_PREFIX", "CKPT_PERIOD", "CKPT_RESTART",
					    "CKPT_DEBUG", "CKPT_EXE", "CKPT_NOTIFY", NULL };
	for (int i = 0; vars[i]; i++)
		unsetenv(vars[i]);
	drop_from_preload();
}

/*
 * DESIGN §4 trap 13.  glibc registers an rseq area inside the thread
 * descriptor; the kernel writes the current CPU into it on every preemption.
 * Once we write-protect that page the kernel's write fails and it kills the
 * process with SIGSEGV.  Unregister it: glibc then asks the kernel for the CPU
 * instead.  The new process of a restart does the same before the image's
 * descriptor is copied over its own.
 */
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

static void unregister_rseq(void)
{
	if (&__rseq_size == NULL || __rseq_size == 0)
		return;
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	/* glibc registers 32 bytes even where __rseq_size says 20 */
	if (sys_rseq(area, 32, 1 /* RSEQ_FLAG_UNREGISTER */, 0x53053053) < 0)
		sys_rseq(area, __rseq_size, 1, 0x53053053);
}

/*
 * The thread descriptor caches the thread id (glibc uses it for recursive
 * mutex owners and pthread_kill).  After a restart the image's descriptor
 * holds the old process's id.  Find the field once, by value.
 */
static void find_tid_offset(void)
{
	pid_t tid = (pid_t)sys_gettid();
	const char *tp = __builtin_thread_pointer();

	g->tid_offset = -1;
	for (long off = 0x200; off < 0x1000; off += sizeof(pid_t))
		if (*(const pid_t *)(tp + off) == tid) {
			g->tid_offset = off;
			return;
		}
}

void ckpt_fix_thread_descriptor(void)
{
	if (g->tid_offset >= 0)
		*(pid_t *)((char *)__builtin_thread_pointer() + g->tid_offset) = (pid_t)sys_gettid();
}

/*
 * DESIGN §4 trap 8: a checkpoint is the whole memory of the process.  A
 * directory the core has to create for it is made 0700 (files are 0600
 * whatever the umask, see writer.c).  An existing directory is the user's
 * choice and is left as it is.  Checked at start so that a typo in
 * CKPT_PREFIX stops the program now, not at its first checkpoint hours later.
 */
static void ensure_directory(void)
{
	char dir[MAXFILENAME];
	char *slash;
	struct stat st;

	ckpt_fmt(dir, sizeof(dir), "%s", g->prefix);
	slash = strrchr(dir, '/');
	if (!slash)
		return; /* the working directory */
	*(slash == dir ? slash + 1 : slash) = 0;
	if (sys_fstatat(AT_FDCWD, dir, &st, 0) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			ckpt_err("CKPT_PREFIX=%s: %s is not a directory", g->prefix, dir);
			config_error();
		}
		return;
	}
	long r = sys_mkdirat(AT_FDCWD, dir, 0700);
	if (r < 0) {
		ckpt_perr((int)-r, "CKPT_PREFIX=%s: cannot create the directory %s", g->prefix, dir);
		config_error();
	}
}

static void setup_altstack(void)
{
	long r = sys_mmap((void *)CKPT_ALTSTACK_BASE, CKPT_ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (r != (long)CKPT_ALTSTACK_BASE) {
		ckpt_perr(r < 0 ? (int)-r : EEXIST, "cannot map the signal stack at %p",
			  (void *)CKPT_ALTSTACK_BASE);
		config_error();
	}
	stack_t ss = { .ss_sp = (void *)CKPT_ALTSTACK_BASE, .ss_size = CKPT_ALTSTACK_SIZE };
	r = sys_sigaltstack(&ss, NULL);
	if (r < 0) {
		ckpt_perr((int)-r, "cannot install the signal stack");
		config_error();
	}
}

/*
 * CKPT_EXE names the program the core is for.  A shell script, `env` or a
 * pyenv shim on the way to it loads the core too (LD_PRELOAD); there it
 * must do nothing at all, and above all keep the variables for the real one.
 */
static bool meant_for_this_program(void)
{
	const char *want = getenv("CKPT_EXE");
	char exe[MAXFILENAME];
	long n;

	if (!want || !*want)
		return true;
	n = sys_readlinkat(AT_FDCWD, "/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return true;
	exe[n] = 0;
	return strcmp(exe, want) == 0;
}

__attribute__((constructor)) static void initialize_checkpointer(void)
{
	int r;

	if (!meant_for_this_program())
		return;
	r = palloc_init();

	if (r < 0) {
		ckpt_perr(-r, "cannot map the checkpointer's private heap at %p",
			  (void *)CKPT_PRIVATE_BASE);
		config_error();
	}
	/* The first allocation: the same address in every process, which is
	   what lets the image's copy of `g` point at this process's state. */
	g = pcalloc(sizeof(*g));
	g->page_size = sysconf(_SC_PAGESIZE);
	g->tracker = &ckpt_tracker_mprotect;
	g->restarted_from = (uint64_t)-1;
	g->sealed_epoch = (uint64_t)-1;
	g->pid = sys_getpid();
	read_config();

	if (!g->restart && !(sys_personality(0xffffffff) & ADDR_NO_RANDOMIZE)) {
		ckpt_err("address space randomization is on, so no checkpoint of this run could "
			 "ever be restarted; run it under `setarch --addr-no-randomize` (or "
			 "`ipyckpt run`)");
		config_error();
	}
	if (!g->restart)
		ensure_directory();
	g->ckpt_stack = palloc(CKPT_STACK_SIZE);
	if (!g->ckpt_stack || crc_cache_init(g->page_size)) {
		ckpt_err("out of private memory at start");
		config_error();
	}
	setup_altstack();
	if (ckpt_signals_init())
		config_error();
	hide_from_children();
	unregister_rseq();
	find_tid_offset();

	if (g->restart)
		ckpt_restart();

	if (g->period > 0 && ckpt_periodic_start(g->period))
		config_error();
	g->active = true;
	ckpt_debug(1, "ready: prefix %s, %s, tracker %s", g->prefix,
		   g->period ? "periodic" : "on-demand checkpoints", g->tracker->name);
}

CKPT_EXPORT int ckpt_get_status(struct ckpt_status *st)
{
	memset(st, 0, sizeof(*st));
	if (!g || !g->active)
		return -1;
	st->active = 1;
	st->period = g->period;
	st->epoch = g->epoch;
	st->checkpoints = g->taken;
	st->restarted_from = g->restarted_from;
	st->last_bytes = g->last_bytes;
	st->last_pages = g->last_pages;
	st->last_ns = g->last_ns;
	st->dirty_pages = ckpt_count_dirty();
	ckpt_fmt(st->prefix, sizeof(st->prefix), "%s", g->prefix);
	return 0;
}

CKPT_EXPORT const char *ckpt_last_error(void)
{
	return g ? g->errmsg : "ipyckpt's core is not running in this process";
}

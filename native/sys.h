/*
 * sys.h - raw Linux system calls for the checkpointer (x86_64).
 *
 * Why not libc: the checkpointer runs inside SIGSEGV/SIGPROF handlers and, on
 * restart, while the memory that holds libc's own state (errno lives in the
 * thread's TLS block, stdio in libc's .data) is being overwritten under it.
 * A libc wrapper that sets errno would write into a page that is either
 * write-protected (DESIGN §4 trap 10) or being restored (trap 11).  These
 * wrappers touch no memory but their arguments and return -errno, the way
 * musl's internal __syscall does; only ckpt_sys_ret() turns that into errno,
 * and only application-context code may call it.
 */
#ifndef IPYCKPT_SYS_H
#define IPYCKPT_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

#if !defined(__x86_64__)
#error "ipyckpt's core is written for x86_64 Linux (the seed's platform)"
#endif

static inline long ckpt_syscall6(long n, long a, long b, long c, long d,
				 long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define SYS6(n, a, b, c, d, e, f)                                              \
	ckpt_syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), \
		      (long)(f))
#define SYS3(n, a, b, c) SYS6(n, a, b, c, 0, 0, 0)

/* The kernel's struct sigaction (not glibc's: the mask is 8 bytes).  With
   CKPT_SA_RESTORER the kernel returns from a handler through restorer. */
#define CKPT_SA_RESTORER 0x04000000
struct ckpt_ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
};

static inline long sys_read(int fd, void *b, size_t n) { return SYS3(SYS_read, fd, b, n); }
static inline long sys_write(int fd, const void *b, size_t n) { return SYS3(SYS_write, fd, b, n); }
static inline long sys_pread(int fd, void *b, size_t n, off_t o) { return SYS6(SYS_pread64, fd, b, n, o, 0, 0); }
static inline long sys_pwrite(int fd, const void *b, size_t n, off_t o) { return SYS6(SYS_pwrite64, fd, b, n, o, 0, 0); }
static inline long sys_openat(int dfd, const char *p, int fl, int mode) { return SYS6(SYS_openat, dfd, p, fl, mode, 0, 0); }
static inline long sys_close(int fd) { return SYS3(SYS_close, fd, 0, 0); }
static inline long sys_lseek(int fd, off_t o, int wh) { return SYS3(SYS_lseek, fd, o, wh); }
static inline long sys_fsync(int fd) { return SYS3(SYS_fsync, fd, 0, 0); }
static inline long sys_ftruncate(int fd, off_t len) { return SYS3(SYS_ftruncate, fd, len, 0); }
static inline long sys_dup3(int o, int n, int fl) { return SYS3(SYS_dup3, o, n, fl); }
static inline long sys_fstat(int fd, void *st) { return SYS3(SYS_fstat, fd, st, 0); }
static inline long sys_fstatat(int dfd, const char *p, void *st, int fl) { return SYS6(SYS_newfstatat, dfd, p, st, fl, 0, 0); }
static inline long sys_fchmod(int fd, int mode) { return SYS3(SYS_fchmod, fd, mode, 0); }
static inline long sys_mkdirat(int dfd, const char *p, int mode) { return SYS3(SYS_mkdirat, dfd, p, mode); }
static inline long sys_renameat(int od, const char *o, int nd, const char *n) { return SYS6(SYS_renameat, od, o, nd, n, 0, 0); }
static inline long sys_linkat(int od, const char *o, int nd, const char *n, int fl) { return SYS6(SYS_linkat, od, o, nd, n, fl, 0); }
static inline long sys_unlinkat(int dfd, const char *p, int fl) { return SYS3(SYS_unlinkat, dfd, p, fl); }
static inline long sys_readlinkat(int dfd, const char *p, char *b, size_t n) { return SYS6(SYS_readlinkat, dfd, p, b, n, 0, 0); }
static inline long sys_getdents64(int fd, void *b, size_t n) { return SYS3(SYS_getdents64, fd, b, n); }
static inline long sys_getcwd(char *b, size_t n) { return SYS3(SYS_getcwd, b, n, 0); }
static inline long sys_chdir(const char *p) { return SYS3(SYS_chdir, p, 0, 0); }
static inline long sys_umask(int m) { return SYS3(SYS_umask, m, 0, 0); }
static inline long sys_mmap(void *a, size_t l, int pr, int fl, int fd, off_t o) { return SYS6(SYS_mmap, a, l, pr, fl, fd, o); }
static inline long sys_munmap(void *a, size_t l) { return SYS3(SYS_munmap, a, l, 0); }
static inline long sys_mprotect(void *a, size_t l, int pr) { return SYS3(SYS_mprotect, a, l, pr); }
static inline long sys_madvise(void *a, size_t l, int adv) { return SYS3(SYS_madvise, a, l, adv); }
static inline long sys_brk(void *a) { return SYS3(SYS_brk, a, 0, 0); }
static inline long sys_rt_sigaction(int s, const struct ckpt_ksigaction *a, struct ckpt_ksigaction *o) { return SYS6(SYS_rt_sigaction, s, a, o, 8, 0, 0); }
static inline long sys_rt_sigprocmask(int how, const uint64_t *s, uint64_t *o) { return SYS6(SYS_rt_sigprocmask, how, s, o, 8, 0, 0); }
static inline long sys_sigaltstack(const void *ss, void *old) { return SYS3(SYS_sigaltstack, ss, old, 0); }
static inline long sys_setitimer(int w, const void *nv, void *ov) { return SYS3(SYS_setitimer, w, nv, ov); }
static inline long sys_getitimer(int w, void *v) { return SYS3(SYS_getitimer, w, v, 0); }
static inline long sys_clock_gettime(int clk, void *ts) { return SYS3(SYS_clock_gettime, clk, ts, 0); }
static inline long sys_getpid(void) { return SYS3(SYS_getpid, 0, 0, 0); }
static inline long sys_gettid(void) { return SYS3(SYS_gettid, 0, 0, 0); }
static inline long sys_tgkill(int p, int t, int s) { return SYS3(SYS_tgkill, p, t, s); }
static inline long sys_personality(unsigned long p) { return SYS3(SYS_personality, p, 0, 0); }
static inline long sys_prlimit(int res, const void *nv, void *ov) { return SYS6(SYS_prlimit64, 0, res, nv, ov, 0, 0); }
static inline long sys_rseq(void *r, uint32_t len, int fl, uint32_t sig) { return SYS6(SYS_rseq, r, len, fl, sig, 0, 0); }
static inline _Noreturn void sys_exit_group(int st)
{
	for (;;)
		SYS3(SYS_exit_group, st, 0, 0);
}

/* Turn a raw -errno return into the libc convention; application context only. */
long ckpt_sys_ret(long r);

#endif

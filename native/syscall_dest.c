/*
 * syscall_dest.c - calls in which the kernel writes into application memory.
 *
 * DESIGN §4 trap 1: a write by the kernel into a write-protected page does not
 * fault, it fails with EFAULT.  read(fd, buf, n) into a buffer untouched since
 * the last checkpoint would return -1/EFAULT (Python: "OSError: [Errno 14]
 * Bad address").  Each wrapper here opens its destination for writing first
 * (the pages become dirty, as a fault would have made them) and then calls the
 * real libc function, so its semantics (cancellation, errno, fallbacks) stay
 * libc's.
 *
 * In periodic mode SIGPROF is held off between opening the pages and the
 * call: a checkpoint in between would protect them again.  A blocking read
 * burns no CPU time, so it does not hold back the CPU-time timer either.
 *
 * libc's own internal calls (stdio's read into its buffer, readdir's
 * getdents) do not pass through these symbols; their buffers are opened from
 * the FILE and DIR they belong to.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <dlfcn.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "sys.h"

/* Exported by glibc, called by getc()-style macros, not declared by stdio.h. */
extern int __uflow(FILE *);
extern int __underflow(FILE *);
extern int _IO_getc(FILE *);

#define NO_MASK UINT64_MAX

static uint64_t dest_begin(void)
{
	uint64_t old = NO_MASK, prof = 1ULL << (SIGPROF - 1);

	if (!g || !g->active)
		return NO_MASK;
	if (g->period > 0)
		sys_rt_sigprocmask(SIG_BLOCK, &prof, &old);
	return old;
}

static void dest(const void *p, size_t len)
{
	if (p && len && g && g->armed)
		g->tracker->prepare_write((uintptr_t)p, len);
}

static void dest_end(uint64_t old)
{
	if (old != NO_MASK)
		sys_rt_sigprocmask(SIG_SETMASK, &old, NULL);
}

#define REAL(name)                                                             \
	static __typeof__(name) *real;                                         \
	if (!real)                                                             \
		real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* A wrapper with one destination of len bytes at ptr. */
#define WRAP1(ret, name, params, args, ptr, len)                                \
	CKPT_EXPORT ret name params                                            \
	{                                                                      \
		REAL(name);                                                    \
		uint64_t mask_ = dest_begin();                                 \
		dest(ptr, len);                                                \
		ret ret_ = real args;                                          \
		dest_end(mask_);                                               \
		return ret_;                                                   \
	}

WRAP1(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n), b, n)
WRAP1(ssize_t, pread, (int fd, void *b, size_t n, off_t o), (fd, b, n, o), b, n)
WRAP1(ssize_t, pread64, (int fd, void *b, size_t n, off64_t o), (fd, b, n, o), b, n)
WRAP1(ssize_t, recv, (int fd, void *b, size_t n, int fl), (fd, b, n, fl), b, n)
WRAP1(ssize_t, getdents64, (int fd, void *b, size_t n), (fd, b, n), b, n)
WRAP1(ssize_t, getrandom, (void *b, size_t n, unsigned fl), (b, n, fl), b, n)
WRAP1(ssize_t, readlink, (const char *restrict p, char *restrict b, size_t n), (p, b, n), b, n)
WRAP1(ssize_t, readlinkat, (int d, const char *restrict p, char *restrict b, size_t n), (d, p, b, n), b, n)
WRAP1(int, stat, (const char *restrict p, struct stat *restrict b), (p, b), b, sizeof(*b))
WRAP1(int, lstat, (const char *restrict p, struct stat *restrict b), (p, b), b, sizeof(*b))
WRAP1(int, fstat, (int fd, struct stat *b), (fd, b), b, sizeof(*b))
WRAP1(int, fstatat, (int d, const char *restrict p, struct stat *restrict b, int fl), (d, p, b, fl), b, sizeof(*b))
WRAP1(int, stat64, (const char *restrict p, struct stat64 *restrict b), (p, b), b, sizeof(*b))
WRAP1(int, lstat64, (const char *restrict p, struct stat64 *restrict b), (p, b), b, sizeof(*b))
WRAP1(int, fstat64, (int fd, struct stat64 *b), (fd, b), b, sizeof(*b))
WRAP1(int, fstatat64, (int d, const char *restrict p, struct stat64 *restrict b, int fl), (d, p, b, fl), b, sizeof(*b))
WRAP1(int, statx, (int d, const char *restrict p, int fl, unsigned m, struct statx *restrict b), (d, p, fl, m, b), b, sizeof(*b))
WRAP1(int, uname, (struct utsname *b), (b), b, sizeof(*b))
WRAP1(int, pipe, (int fds[2]), (fds), fds, 2 * sizeof(int))
WRAP1(int, pipe2, (int fds[2], int fl), (fds, fl), fds, 2 * sizeof(int))
WRAP1(int, socketpair, (int d, int t, int p, int sv[2]), (d, t, p, sv), sv, 2 * sizeof(int))
WRAP1(int, poll, (struct pollfd *f, nfds_t n, int t), (f, n, t), f, n * sizeof(*f))
WRAP1(int, epoll_wait, (int e, struct epoll_event *ev, int n, int t), (e, ev, n, t), ev, n > 0 ? n * sizeof(*ev) : 0)
WRAP1(pid_t, waitpid, (pid_t p, int *st, int o), (p, st, o), st, sizeof(*st))
WRAP1(pid_t, wait, (int *st), (st), st, sizeof(*st))
WRAP1(int, clock_gettime, (clockid_t c, struct timespec *t), (c, t), t, sizeof(*t))
WRAP1(int, clock_getres, (clockid_t c, struct timespec *t), (c, t), t, sizeof(*t))
WRAP1(int, nanosleep, (const struct timespec *q, struct timespec *rem), (q, rem), rem, sizeof(*rem))
WRAP1(int, getrusage, (int who, struct rusage *u), (who, u), u, sizeof(*u))
WRAP1(int, getrlimit, (__rlimit_resource_t r, struct rlimit *l), (r, l), l, sizeof(*l))
WRAP1(int, sigpending, (sigset_t *s), (s), s, sizeof(*s))

/*
 * The signal mask cannot go through dest_begin/dest_end: putting the mask
 * back afterwards would undo the very call.  So the call is done here, with
 * SIGPROF held off from reading the mask to setting it, and the old mask is
 * stored by a plain write (a fault on a protected page is the tracker's).
 * As glibc does, the application cannot block its two internal signals.
 */
static int mask_call(int how, const sigset_t *set, sigset_t *old)
{
	uint64_t prof = 1ULL << (SIGPROF - 1), before, want, req;
	const uint64_t internal = (1ULL << 31) | (1ULL << 32); /* SIGCANCEL, SIGSETXID */

	if (set && how != SIG_BLOCK && how != SIG_UNBLOCK && how != SIG_SETMASK)
		return EINVAL;
	sys_rt_sigprocmask(SIG_BLOCK, &prof, &before);
	want = before;
	if (set) {
		memcpy(&req, set, sizeof(req));
		req &= ~internal;
		want = how == SIG_BLOCK ? before | req : how == SIG_UNBLOCK ? before & ~req : req;
	}
	if (old)
		memcpy(old, &before, sizeof(before)); /* the kernel's 64 signals */
	sys_rt_sigprocmask(SIG_SETMASK, &want, NULL);
	return 0;
}

CKPT_EXPORT int pthread_sigmask(int how, const sigset_t *restrict set, sigset_t *restrict old)
{
	REAL(pthread_sigmask);
	if (!g || !g->active)
		return real(how, set, old);
	return mask_call(how, set, old);
}

CKPT_EXPORT int sigprocmask(int how, const sigset_t *restrict set, sigset_t *restrict old)
{
	REAL(sigprocmask);
	if (!g || !g->active)
		return real(how, set, old);
	int err = mask_call(how, set, old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Several destinations. */

static void dest_iov(const struct iovec *iov, int n)
{
	for (int i = 0; i < n; i++)
		dest(iov[i].iov_base, iov[i].iov_len);
}

CKPT_EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	REAL(readv);
	uint64_t m = dest_begin();
	dest_iov(iov, n);
	ssize_t r = real(fd, iov, n);
	dest_end(m);
	return r;
}

CKPT_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int n, off_t o)
{
	REAL(preadv);
	uint64_t m = dest_begin();
	dest_iov(iov, n);
	ssize_t r = real(fd, iov, n, o);
	dest_end(m);
	return r;
}

CKPT_EXPORT ssize_t preadv64(int fd, const struct iovec *iov, int n, off64_t o)
{
	REAL(preadv64);
	uint64_t m = dest_begin();
	dest_iov(iov, n);
	ssize_t r = real(fd, iov, n, o);
	dest_end(m);
	return r;
}

CKPT_EXPORT ssize_t recvfrom(int fd, void *restrict b, size_t n, int fl, struct sockaddr *restrict a,
		 socklen_t *restrict al)
{
	REAL(recvfrom);
	uint64_t m = dest_begin();
	dest(b, n);
	if (al) {
		dest(al, sizeof(*al));
		dest(a, *al);
	}
	ssize_t r = real(fd, b, n, fl, a, al);
	dest_end(m);
	return r;
}

CKPT_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int fl)
{
	REAL(recvmsg);
	uint64_t m = dest_begin();
	dest(msg, sizeof(*msg));
	dest(msg->msg_name, msg->msg_namelen);
	dest(msg->msg_control, msg->msg_controllen);
	dest_iov(msg->msg_iov, (int)msg->msg_iovlen);
	ssize_t r = real(fd, msg, fl);
	dest_end(m);
	return r;
}

/* accept, accept4, getsockname, getpeername: an address and its length. */
#define WRAP_ADDR(name, params, args)                                          \
	CKPT_EXPORT int name params                                            \
	{                                                                      \
		REAL(name);                                                    \
		uint64_t mask_ = dest_begin();                                 \
		if (al) {                                                      \
			dest(al, sizeof(*al));                                 \
			dest(a, *al);                                          \
		}                                                              \
		int ret_ = real args;                                          \
		dest_end(mask_);                                               \
		return ret_;                                                   \
	}

WRAP_ADDR(accept, (int fd, struct sockaddr *restrict a, socklen_t *restrict al), (fd, a, al))
WRAP_ADDR(accept4, (int fd, struct sockaddr *restrict a, socklen_t *restrict al, int fl), (fd, a, al, fl))
WRAP_ADDR(getsockname, (int fd, struct sockaddr *restrict a, socklen_t *restrict al), (fd, a, al))
WRAP_ADDR(getpeername, (int fd, struct sockaddr *restrict a, socklen_t *restrict al), (fd, a, al))

CKPT_EXPORT int getsockopt(int fd, int lvl, int opt, void *restrict v, socklen_t *restrict vl)
{
	REAL(getsockopt);
	uint64_t m = dest_begin();
	if (vl) {
		dest(vl, sizeof(*vl));
		dest(v, *vl);
	}
	int r = real(fd, lvl, opt, v, vl);
	dest_end(m);
	return r;
}

CKPT_EXPORT int select(int n, fd_set *restrict r, fd_set *restrict w, fd_set *restrict e, struct timeval *restrict t)
{
	REAL(select);
	size_t len = n > 0 ? ((size_t)n + 7) / 8 : 0;
	uint64_t m = dest_begin();
	dest(r, len);
	dest(w, len);
	dest(e, len);
	dest(t, sizeof(*t));
	int rc = real(n, r, w, e, t);
	dest_end(m);
	return rc;
}

CKPT_EXPORT pid_t wait4(pid_t p, int *st, int o, struct rusage *u)
{
	REAL(wait4);
	uint64_t m = dest_begin();
	dest(st, sizeof(*st));
	dest(u, sizeof(*u));
	pid_t r = real(p, st, o, u);
	dest_end(m);
	return r;
}

CKPT_EXPORT int clock_nanosleep(clockid_t c, int fl, const struct timespec *q, struct timespec *rem)
{
	REAL(clock_nanosleep);
	uint64_t m = dest_begin();
	dest(rem, sizeof(*rem));
	int r = real(c, fl, q, rem);
	dest_end(m);
	return r;
}

CKPT_EXPORT char *getcwd(char *b, size_t n)
{
	REAL(getcwd);
	uint64_t m = dest_begin();
	/* getcwd(NULL, 0) mallocs the buffer inside libc: open it afterwards
	   is too late, so ask for the name into a buffer of ours. */
	if (!b && g && g->armed) {
		char tmp[4096];
		char *r = real(tmp, sizeof(tmp));
		dest_end(m);
		return r ? strdup(r) : NULL;
	}
	dest(b, n);
	char *r = real(b, n);
	dest_end(m);
	return r;
}

/* ---- libc's own buffers -------------------------------------------------- */

/* readdir refills the DIR's buffer with an internal getdents. */
static void dest_dir(DIR *d)
{
	if (d && g && g->armed)
		dest(d, malloc_usable_size(d));
}

CKPT_EXPORT struct dirent *readdir(DIR *d)
{
	REAL(readdir);
	uint64_t m = dest_begin();
	dest_dir(d);
	struct dirent *r = real(d);
	dest_end(m);
	return r;
}

CKPT_EXPORT struct dirent64 *readdir64(DIR *d)
{
	REAL(readdir64);
	uint64_t m = dest_begin();
	dest_dir(d);
	struct dirent64 *r = real(d);
	dest_end(m);
	return r;
}

/* stdio refills a FILE's buffer with an internal read. */
static void dest_file(FILE *f)
{
	static int (*doallocbuf)(FILE *);

	if (!f || !g || !g->armed)
		return;
	if (!f->_IO_buf_base) {
		/* Allocate the buffer now, in user mode, so it can be opened. */
		if (!doallocbuf)
			doallocbuf = (int (*)(FILE *))dlsym(RTLD_NEXT, "_IO_doallocbuf");
		if (doallocbuf)
			doallocbuf(f);
	}
	if (f->_IO_buf_base && f->_IO_buf_end > f->_IO_buf_base)
		dest(f->_IO_buf_base, f->_IO_buf_end - f->_IO_buf_base);
}

#define WRAP_FILE(ret, name, params, args, f, ptr, len)                         \
	CKPT_EXPORT ret name params                                            \
	{                                                                      \
		REAL(name);                                                    \
		uint64_t mask_ = dest_begin();                                 \
		dest_file(f);                                                  \
		dest(ptr, len);                                                \
		ret ret_ = real args;                                          \
		dest_end(mask_);                                               \
		return ret_;                                                   \
	}

/* Some of these are also macros in <stdio.h> at -O2. */
#undef fread_unlocked
#undef getc
#undef fgetc

WRAP_FILE(size_t, fread, (void *restrict p, size_t s, size_t n, FILE *restrict f), (p, s, n, f), f, p, s * n)
WRAP_FILE(size_t, fread_unlocked, (void *restrict p, size_t s, size_t n, FILE *restrict f), (p, s, n, f), f, p, s * n)
WRAP_FILE(char *, fgets, (char *restrict s, int n, FILE *restrict f), (s, n, f), f, s, n > 0 ? (size_t)n : 0)
WRAP_FILE(int, fgetc, (FILE *f), (f), f, NULL, 0)
WRAP_FILE(int, getc, (FILE *f), (f), f, NULL, 0)
WRAP_FILE(int, _IO_getc, (FILE *f), (f), f, NULL, 0)
WRAP_FILE(int, __uflow, (FILE *f), (f), f, NULL, 0)
WRAP_FILE(int, __underflow, (FILE *f), (f), f, NULL, 0)
WRAP_FILE(ssize_t, getdelim, (char **restrict l, size_t *restrict n, int d, FILE *restrict f), (l, n, d, f), f, NULL, 0)
WRAP_FILE(ssize_t, getline, (char **restrict l, size_t *restrict n, FILE *restrict f), (l, n, f), f, NULL, 0)

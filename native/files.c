/*
 * files.c - the files a checkpoint knows: open/openat/creat/close wrappers.
 *
 * The seed: every file opened through open is tracked with its absolute path,
 * flags and descriptor, and a file opened for writing is forced into append
 * mode, so that truncating it back to the checkpoint's offset on restart undoes
 * exactly what was written after the checkpoint.  Only regular files are
 * tracked: pipes, sockets and devices cannot be reopened.  Offsets are read
 * with lseek at checkpoint time rather than followed through read/lseek
 * wrappers, so no call that moves an offset can be missed; and because writers
 * append, an lseek of theirs cannot move where data lands.  fopen is not
 * tracked (the seed leaves it out; glibc opens through an internal call).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "log.h"
#include "palloc.h"
#include "sys.h"

long ckpt_sys_ret(long r)
{
	if (r < 0 && r > -4096) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static int grow(int fd)
{
	int cap = g->files_cap ? g->files_cap : 64;
	struct ckpt_file *f;

	while (cap <= fd)
		cap *= 2;
	f = prealloc(g->files, cap * sizeof(*f));
	if (!f)
		return -1;
	memset(f + g->files_cap, 0, (cap - g->files_cap) * sizeof(*f));
	g->files = f;
	g->files_cap = cap;
	return 0;
}

static void untrack(int fd)
{
	if (fd >= 0 && fd < g->files_cap && g->files[fd].used) {
		pfree(g->files[fd].path);
		memset(&g->files[fd], 0, sizeof(g->files[fd]));
	}
}

/* Record fd, opened with flags; writers are switched to append mode. */
int ckpt_file_track(int fd, int flags)
{
	struct stat st;
	char link[64], path[MAXFILENAME];
	uint64_t mask = ckpt_block_signals();
	int rc = 0;

	untrack(fd);
	if (sys_fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		goto out;
	/* The kernel's name for it: absolute, whatever path and dirfd said. */
	ckpt_fmt(link, sizeof(link), "/proc/self/fd/%d", fd);
	long n = sys_readlinkat(AT_FDCWD, link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		goto out;
	path[n] = 0;
	if ((flags & O_ACCMODE) != O_RDONLY && !(flags & O_APPEND)) {
		long fl = SYS3(SYS_fcntl, fd, F_GETFL, 0);
		if (fl >= 0)
			SYS3(SYS_fcntl, fd, F_SETFL, fl | O_APPEND);
		flags |= O_APPEND;
	}
	if (fd >= g->files_cap && grow(fd)) {
		rc = -1;
		goto out;
	}
	g->files[fd].path = palloc(n + 1);
	if (!g->files[fd].path) {
		rc = -1;
		goto out;
	}
	memcpy(g->files[fd].path, path, n + 1);
	g->files[fd].used = true;
	g->files[fd].flags = flags;
	g->files[fd].dev = st.st_dev;
	g->files[fd].ino = st.st_ino;
out:
	ckpt_restore_signals(mask);
	if (rc)
		ckpt_err("out of private memory tracking %s; it will not be restored", path);
	return rc;
}

/* Forget descriptors that now name something else (dup2 over them, a close
   through a path no wrapper sees).  Called by the writer. */
void ckpt_files_prune(void)
{
	for (int fd = 0; fd < g->files_cap; fd++) {
		struct stat st;
		if (!g->files[fd].used)
			continue;
		if (sys_fstat(fd, &st) < 0 || st.st_dev != g->files[fd].dev || st.st_ino != g->files[fd].ino)
			untrack(fd);
	}
}

static int do_open(int dfd, const char *path, int flags, int mode)
{
	long fd = sys_openat(dfd, path, flags, mode);

	if (fd < 0)
		return (int)ckpt_sys_ret(fd);
	if (g && g->active)
		ckpt_file_track((int)fd, flags);
	return (int)fd;
}

static int mode_arg(int flags, va_list ap)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

CKPT_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

CKPT_EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, mode);
}

CKPT_EXPORT int openat(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dfd, path, flags, mode);
}

CKPT_EXPORT int openat64(int dfd, const char *path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int mode = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dfd, path, flags, mode);
}

CKPT_EXPORT int creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, (int)mode);
}

CKPT_EXPORT int creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, (int)mode);
}

CKPT_EXPORT int close(int fd)
{
	if (g && fd >= 0 && fd < g->files_cap && g->files[fd].used) {
		uint64_t mask = ckpt_block_signals();
		untrack(fd);
		ckpt_restore_signals(mask);
	}
	/* Never retried on EINTR: the descriptor is gone either way. */
	return (int)ckpt_sys_ret(sys_close(fd));
}

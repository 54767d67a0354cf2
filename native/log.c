/*
 * log.c - async-signal-safe formatting and error messages.
 */
#include "log.h"

#include <errno.h>
#include <stdint.h>

#include "ckpt.h"
#include "sys.h"

static size_t put_num(char *out, size_t room, unsigned long long v, int base,
		      int neg)
{
	char tmp[24];
	size_t n = 0, w = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg && w < room)
		out[w++] = '-';
	while (n && w < room)
		out[w++] = tmp[--n];
	return w;
}

int ckpt_vfmt(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t w = 0;

	if (size == 0)
		return 0;
	for (const char *p = fmt; *p && w + 1 < size; p++) {
		if (*p != '%') {
			buf[w++] = *p;
			continue;
		}
		int lng = 0;
		p++;
		while (*p == 'l' || *p == 'z') {
			lng = 1;
			p++;
		}
		size_t room = size - 1 - w;
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			while (*s && w + 1 < size)
				buf[w++] = *s++;
			break;
		}
		case 'c':
			buf[w++] = (char)va_arg(ap, int);
			break;
		case 'd':
		case 'i': {
			long long v = lng ? va_arg(ap, long) : va_arg(ap, int);
			w += put_num(buf + w, room, v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10, v < 0);
			break;
		}
		case 'u':
			w += put_num(buf + w, room, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 0);
			break;
		case 'x':
			w += put_num(buf + w, room, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 0);
			break;
		case 'o':
			w += put_num(buf + w, room, lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 8, 0);
			break;
		case 'p':
			if (room >= 2) {
				buf[w++] = '0';
				buf[w++] = 'x';
				w += put_num(buf + w, room - 2, (uintptr_t)va_arg(ap, void *), 16, 0);
			}
			break;
		case '%':
			buf[w++] = '%';
			break;
		default: /* unknown conversion: print it as is */
			buf[w++] = '%';
			if (*p && w + 1 < size)
				buf[w++] = *p;
			if (!*p)
				p--;
		}
	}
	buf[w] = 0;
	return (int)w;
}

int ckpt_fmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = ckpt_vfmt(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

const char *ckpt_errstr(int err)
{
	switch (err) {
	case EPERM: return "Operation not permitted";
	case ENOENT: return "No such file or directory";
	case EIO: return "Input/output error";
	case EBADF: return "Bad file descriptor";
	case ENOMEM: return "Cannot allocate memory";
	case EACCES: return "Permission denied";
	case EFAULT: return "Bad address";
	case EBUSY: return "Device or resource busy";
	case EEXIST: return "File exists";
	case ENOTDIR: return "Not a directory";
	case EISDIR: return "Is a directory";
	case EINVAL: return "Invalid argument";
	case EMFILE: return "Too many open files";
	case EFBIG: return "File too large";
	case ENOSPC: return "No space left on device";
	case EROFS: return "Read-only file system";
	case ENAMETOOLONG: return "File name too long";
	case EDQUOT: return "Disk quota exceeded";
	case ESTALE: return "Stale file handle";
	case EXDEV: return "Invalid cross-device link";
	default: return "error";
	}
}

static void emit(char *msg, int n)
{
	/* stderr may be a pipe that is gone; nothing sensible to do then. */
	while (n > 0) {
		long r = sys_write(2, msg, n);
		if (r == -EINTR)
			continue;
		if (r <= 0)
			break;
		msg += r;
		n -= r;
	}
}

static void vlog(int keep, int err, const char *fmt, va_list ap)
{
	char msg[1024];
	int n = ckpt_fmt(msg, sizeof(msg), "ipyckpt: ");

	n += ckpt_vfmt(msg + n, sizeof(msg) - n, fmt, ap);
	if (err > 0)
		n += ckpt_fmt(msg + n, sizeof(msg) - n, ": %s (errno %d)", ckpt_errstr(err), err);
	if (keep && g)
		ckpt_fmt(g->errmsg, sizeof(g->errmsg), "%s", msg + 9);
	if (n < (int)sizeof(msg) - 1)
		msg[n++] = '\n';
	emit(msg, n);
}

void ckpt_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(1, 0, fmt, ap);
	va_end(ap);
}

void ckpt_perr(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(1, err, fmt, ap);
	va_end(ap);
}

void ckpt_debug(int level, const char *fmt, ...)
{
	va_list ap;

	if (!g || g->debug < level)
		return;
	va_start(ap, fmt);
	vlog(0, 0, fmt, ap);
	va_end(ap);
}

/*
 * log.h - async-signal-safe messages on stderr.
 *
 * The core never uses stdio: it runs inside signal handlers and must not
 * mix its buffers with the application's (DESIGN §4 trap 10).  ckpt_fmt is a
 * small vsnprintf over a caller's buffer; the loggers write(2) the result.
 * Formats: %s %c %d %i %u %x %o %p and the l/z length modifiers, %%.
 */
#ifndef IPYCKPT_LOG_H
#define IPYCKPT_LOG_H

#include <stdarg.h>
#include <stddef.h>

int ckpt_vfmt(char *buf, size_t size, const char *fmt, va_list ap);
int ckpt_fmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A short description of a positive errno value, without locale or libc state. */
const char *ckpt_errstr(int err);

/* "ipyckpt: <msg>\n" on stderr; also kept as the last error (ckpt_last_error). */
void ckpt_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As ckpt_err, followed by ": <description of err>" (err > 0, as errno). */
void ckpt_perr(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Diagnostics, only when CKPT_DEBUG is at least level. */
void ckpt_debug(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

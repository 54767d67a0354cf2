/*
 * maps.c - parse /proc/self/maps into a table on the private heap.
 *
 * Read in fixed chunks with raw syscalls: the file can hold tens of
 * thousands of lines when write protection has split the address space into
 * many small mappings, and nothing here may touch application memory.
 */
#include "maps.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include "ckpt.h"
#include "palloc.h"
#include "sys.h"

static uint64_t hex(const char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			return v;
	}
}

static uint64_t dec(const char **p)
{
	uint64_t v = 0;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = v * 10 + (**p - '0');
	return v;
}

static int push(struct vma_table *t, const struct vma *v)
{
	if (t->n == t->cap) {
		int cap = t->cap ? t->cap * 2 : 256;
		struct vma *nv = prealloc(t->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		t->v = nv;
		t->cap = cap;
	}
	t->v[t->n++] = *v;
	return 0;
}

static char *pstrdup(const char *s, size_t n)
{
	char *d = palloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

/* "start-end perms offset maj:min inode   path" */
static int parse_line(struct vma_table *t, const char *p, const char *eol)
{
	struct vma v;
	uint64_t maj, min;

	memset(&v, 0, sizeof(v));
	v.start = hex(&p);
	p++;
	v.end = hex(&p);
	p++;
	v.prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) |
		 (p[2] == 'x' ? PROT_EXEC : 0);
	v.shared = p[3] == 's';
	p += 5;
	v.offset = hex(&p);
	p++;
	maj = hex(&p);
	p++;
	min = hex(&p);
	v.dev = makedev(maj, min);
	p++;
	v.ino = dec(&p);
	while (p < eol && *p == ' ')
		p++;
	if (p < eol) {
		v.path = pstrdup(p, eol - p);
		if (!v.path)
			return -ENOMEM;
		if (!strcmp(v.path, "[heap]"))
			v.special = VMA_HEAP;
		else if (!strcmp(v.path, "[stack]"))
			v.special = VMA_STACK;
		else if (!strcmp(v.path, "[vdso]") || !strcmp(v.path, "[vvar]") ||
			 !strcmp(v.path, "[vsyscall]") || !strcmp(v.path, "[uprobes]") ||
			 !strncmp(v.path, "[vvar_", 6))
			v.special = VMA_KERNEL;
	}
	if (v.start >= CKPT_PRIVATE_BASE && v.end <= CKPT_PRIVATE_BASE + CKPT_PRIVATE_SIZE)
		v.special = VMA_PRIVATE;
	else if (v.start >= CKPT_ALTSTACK_BASE && v.end <= CKPT_ALTSTACK_BASE + CKPT_ALTSTACK_SIZE)
		v.special = VMA_ALTSTACK;
	return push(t, &v);
}

int maps_read(struct vma_table *t)
{
	enum { CHUNK = 65536 };
	char *buf = palloc(CHUNK);
	long fd, n, have = 0;
	int rc = 0;

	t->v = NULL;
	t->n = t->cap = 0;
	if (!buf)
		return -ENOMEM;
	fd = sys_openat(AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		pfree(buf);
		return (int)fd;
	}
	for (;;) {
		n = sys_read(fd, buf + have, CHUNK - have);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			rc = (int)n;
			break;
		}
		have += n;
		char *line = buf, *end = buf + have, *eol;
		while ((eol = memchr(line, '\n', end - line))) {
			rc = parse_line(t, line, eol);
			if (rc)
				goto out;
			line = eol + 1;
		}
		have = end - line;
		memmove(buf, line, have);
		if (n == 0)
			break;
		if (have == CHUNK) { /* a line longer than the buffer */
			rc = -EINVAL;
			break;
		}
	}
out:
	sys_close(fd);
	pfree(buf);
	if (rc) {
		vma_table_free(t);
		return rc;
	}
	/* The kernel names [stack] only the piece that holds the initial stack
	   pointer; once write protection splits the stack, the pieces below it
	   look anonymous.  They are the stack all the same. */
	for (int i = t->n - 1; i > 0; i--)
		if (t->v[i].special == VMA_STACK && t->v[i - 1].end == t->v[i].start &&
		    t->v[i - 1].ino == 0 && t->v[i - 1].special == VMA_PLAIN && !t->v[i - 1].shared)
			t->v[i - 1].special = VMA_STACK;
	return 0;
}

void vma_table_free(struct vma_table *t)
{
	for (int i = 0; i < t->n; i++)
		pfree(t->v[i].path);
	pfree(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

int vma_find(const struct vma_table *t, uintptr_t addr)
{
	int lo = 0, hi = t->n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (addr < t->v[mid].start)
			hi = mid - 1;
		else if (addr >= t->v[mid].end)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

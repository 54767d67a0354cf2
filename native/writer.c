/*
 * writer.c - taking a checkpoint.
 *
 * checkpoint() and the SIGPROF handler save the application's context and
 * switch to the checkpointer's own context and stack (the seed: nothing of the
 * checkpointer may run on the application's stack, which is being saved).
 * There, with every asynchronous signal blocked:
 *
 *   1. refuse if the process has more than one thread (DESIGN §4 trap 6);
 *   2. read the mappings and ask the tracker what was written;
 *   3. write P.data.N: those pages, minus pristine ones (trap 19), fsync;
 *      and P.relro.N: relocated read-only pages (trap 15), fsync;
 *   4. write P.state.N (trap 2, 3, 12, 17, 19), fsync;
 *   5. write P.map.N with the CRC of every writable range, fsync;
 *   6. link it to P.map atomically and fsync the directory: the COMMIT POINT
 *      (trap 7).  A crash at any moment before leaves the previous P.map,
 *      whose files were all fsynced before it was committed, restorable;
 *   7. write-protect the saved pages again and go back to the application.
 *
 * Everything here uses raw system calls and the private heap only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <zlib.h>

#include "ckpt.h"
#include "crc_cache.h"
#include "log.h"
#include "palloc.h"
#include "sys.h"

/* ---- small helpers ----------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		long r = sys_write(fd, p, len > (1UL << 30) ? (1UL << 30) : len);
		if (r == -EINTR)
			continue;
		if (r < 0)
			return (int)r;
		if (r == 0)
			return -EIO;
		p += r;
		len -= r;
	}
	return 0;
}

/*
 * Every image file is a new inode: a file of the same name may exist from a
 * timeline a restart abandoned, and P.map may be a hard link to it.
 * Truncating it in place would rewrite the committed P.map non-atomically.
 */
static int open_image(const char *path)
{
	sys_unlinkat(AT_FDCWD, path, 0);
	long fd = sys_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0)
		sys_fchmod((int)fd, 0600); /* trap 8: whatever the umask */
	return (int)fd;
}

/* fsync, close; the first error wins. */
static int finish_file(int fd, int rc)
{
	if (!rc) {
		long r = sys_fsync(fd);
		if (r < 0)
			rc = (int)r;
	}
	sys_close(fd);
	return rc;
}

uint32_t ckpt_crc(uintptr_t start, uintptr_t end)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	while (start < end) {
		size_t n = end - start > (1UL << 30) ? (1UL << 30) : end - start;
		crc = crc32(crc, (const Bytef *)start, (uInt)n);
		start += n;
	}
	return (uint32_t)crc;
}

static long count_threads(char *names, size_t size)
{
	char buf[4096];
	long fd = sys_openat(AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	long n = 0, w = 0;

	if (fd < 0)
		return fd;
	names[0] = 0;
	for (;;) {
		long len = sys_getdents64((int)fd, buf, sizeof(buf));
		if (len <= 0)
			break;
		for (long off = 0; off < len;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d = (void *)(buf + off);
			off += d->reclen;
			if (d->name[0] == '.')
				continue;
			n++;
			/* "1234 python, 1240 OpenBLAS" from .../task/<tid>/comm */
			char path[64], comm[32] = "";
			ckpt_fmt(path, sizeof(path), "/proc/self/task/%s/comm", d->name);
			long cfd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
			if (cfd >= 0) {
				long r = sys_read((int)cfd, comm, sizeof(comm) - 1);
				comm[r > 0 ? r : 0] = 0;
				if (r > 0 && comm[r - 1] == '\n')
					comm[r - 1] = 0;
				sys_close((int)cfd);
			}
			w += ckpt_fmt(names + w, size - w, "%s%s %s", w ? ", " : "", d->name, comm);
		}
	}
	sys_close((int)fd);
	return n;
}

/* ---- trap 19: pages that need not be written ------------------------------ */

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)

/*
 * Split save into pages to write and pristine pages: private anonymous
 * pages never touched (zeros) and private file pages never written (equal to
 * the file).  The restorer gets the same kind of mapping back, so it only
 * has to drop whatever the new process has there (MADV_DONTNEED).  The
 * pristine ranges are listed in P.state.N so that a restart never takes
 * such a page from an older epoch.
 */
static int split_pristine(struct range_list *save, const struct vma_table *maps,
			  struct range_list **data, struct range_list **pristine)
{
	enum { BATCH = 4096 };
	uint64_t *pm = palloc(BATCH * sizeof(uint64_t));
	long fd = sys_openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	int rc = 0;

	if (!pm || fd < 0) {
		/* Without pagemap everything is data: larger, still correct. */
		for (struct range_list *s = save; s && !rc; s = s->next)
			rc = range_list_insert(data, s->range.start, s->range.end, false);
		goto out;
	}
	for (struct range_list *s = save; s && !rc; s = s->next) {
		uintptr_t a = s->range.start;
		while (a < s->range.end && !rc) {
			int i = vma_find(maps, a);
			bool can_skip = i >= 0 && !maps->v[i].shared;
			uintptr_t lim = i >= 0 && maps->v[i].end < s->range.end ? maps->v[i].end : s->range.end;
			if (!can_skip) {
				rc = range_list_insert(data, a, lim, false);
				a = lim;
				continue;
			}
			bool file = maps->v[i].ino != 0;
			size_t pages = (lim - a) / g->page_size;
			if (pages > BATCH)
				pages = BATCH;
			long r = sys_pread((int)fd, pm, pages * 8, (a / g->page_size) * 8);
			if (r < (long)(pages * 8)) {
				rc = range_list_insert(data, a, a + pages * g->page_size, false);
				a += pages * g->page_size;
				continue;
			}
			for (size_t p = 0; p < pages && !rc; p++) {
				uint64_t e = pm[p];
				bool untouched = !(e & (PM_PRESENT | PM_SWAPPED));
				bool clean_file = file && (e & PM_PRESENT) && (e & PM_FILE);
				uintptr_t pa = a + p * g->page_size;
				bool skip = untouched || clean_file;
				rc = range_list_insert(skip ? pristine : data, pa, pa + g->page_size, false);
				if (skip && !file)
					crc_cache_note_zero(pa);
				else if (skip) /* the file's bytes; reading keeps it pristine */
					crc_cache_note_page(pa);
			}
			a += pages * g->page_size;
		}
	}
out:
	if (fd >= 0)
		sys_close((int)fd);
	pfree(pm);
	return rc ? -ENOMEM : 0;
}

/*
 * trap 15: a library's GOT is relocated by ld.so and then made read-only
 * (PT_GNU_RELRO).  Such pages of a read-only private file mapping are no
 * longer the file's bytes, and nothing else saves them: they are not
 * writable.  pagemap tells them apart: an anonymous (copied-on-write) page
 * inside a file mapping.
 */
static int collect_sealed(const struct vma_table *maps, struct range_list *writable,
			  struct range_list **sealed)
{
	enum { BATCH = 512 };
	uint64_t pm[BATCH];
	long fd = sys_openat(AT_FDCWD, "/proc/self/pagemap", O_RDONLY | O_CLOEXEC, 0);
	int rc = 0;

	if (fd < 0)
		return 0; /* without pagemap, nothing to find: see the restart's CRCs */
	for (int i = 0; i < maps->n && !rc; i++) {
		const struct vma *v = &maps->v[i];
		if (!v->ino || v->shared || v->special != VMA_PLAIN ||
		    (v->prot & (PROT_READ | PROT_WRITE)) != PROT_READ ||
		    range_list_covers(writable, v->start, v->end))
			continue;
		for (uintptr_t a = v->start; a < v->end && !rc;) {
			size_t pages = (v->end - a) / g->page_size;
			if (pages > BATCH)
				pages = BATCH;
			if (sys_pread((int)fd, pm, pages * 8, (a / g->page_size) * 8) != (long)(pages * 8))
				break;
			for (size_t p = 0; p < pages && !rc; p++) {
				uintptr_t pa = a + p * g->page_size;
				bool copied = (pm[p] & PM_SWAPPED) ||
					      ((pm[p] & PM_PRESENT) && !(pm[p] & PM_FILE));
				if (copied && !range_list_find(writable, pa))
					rc = range_list_insert(sealed, pa, pa + g->page_size, false);
			}
			a += pages * g->page_size;
		}
	}
	sys_close((int)fd);
	return rc ? -ENOMEM : 0;
}

/* ---- the files of one checkpoint -------------------------------------------- */

/* Range records each followed by its bytes: P.data.N, and P.relro.N. */
static int write_records(const char *path, struct range_list *data, bool note_crc,
			 uint64_t *bytes)
{
	int fd = open_image(path), rc = 0;

	if (fd < 0)
		return fd;
	*bytes = 0;
	for (struct range_list *d = data; d && !rc; d = d->next) {
		struct ckpt_range_rec rec;
		memset(&rec, 0, sizeof(rec));
		rec.start = d->range.start;
		rec.end = d->range.end;
		rc = write_all(fd, &rec, sizeof(rec));
		if (!rc)
			rc = write_all(fd, (const void *)rec.start, rec.end - rec.start);
		for (uintptr_t a = rec.start; note_crc && !rc && a < rec.end; a += g->page_size)
			crc_cache_note_page(a);
		*bytes += rec.end - rec.start;
	}
	return finish_file(fd, rc);
}

static bool same_ranges(struct range_list *a, struct range_list *b)
{
	for (; a && b; a = a->next, b = b->next)
		if (a->range.start != b->range.start || a->range.end != b->range.end)
			return false;
	return !a && !b;
}

/*
 * P.relro.N.  Relocated read-only pages hardly ever change once the
 * libraries are loaded; when the pages and their content are those of the
 * previous epoch of this process, the file is that epoch's, hard-linked.
 */
static int write_sealed(const char *path, struct range_list *sealed)
{
	uint32_t crc = 0;
	uint64_t bytes;
	char prev[MAXFILENAME + 32];
	int r;

	for (struct range_list *s = sealed; s; s = s->next)
		crc = (uint32_t)crc32(crc, (const Bytef *)s->range.start,
				      (uInt)(s->range.end - s->range.start));
	if (g->sealed_epoch == g->epoch - 1 && g->epoch > 0 && crc == g->sealed_crc &&
	    same_ranges(sealed, g->sealed)) {
		ckpt_path(prev, sizeof(prev), ".relro", (long)g->sealed_epoch);
		sys_unlinkat(AT_FDCWD, path, 0);
		if (sys_linkat(AT_FDCWD, prev, AT_FDCWD, path, 0) == 0)
			goto done;
	}
	r = write_records(path, sealed, false, &bytes);
	if (r)
		return r;
done:
	range_list_free(&g->sealed);
	g->sealed = sealed;	/* kept; the caller must not free it */
	g->sealed_crc = crc;
	g->sealed_epoch = g->epoch;
	return 0;
}

/* A growable byte buffer on the private heap. */
struct buf {
	char *p;
	size_t len, cap;
	int err;
};

static void *buf_add(struct buf *b, const void *src, size_t n)
{
	if (b->err)
		return NULL;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *p = prealloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	void *at = b->p + b->len;
	if (src)
		memcpy(at, src, n);
	else
		memset(at, 0, n);
	b->len += n;
	return at;
}

static int32_t str_add(struct buf *strtab, const char *s)
{
	size_t off = strtab->len;

	if (!s)
		return CKPT_NO_STRING;
	if (!buf_add(strtab, s, strlen(s) + 1))
		return CKPT_NO_STRING;
	return (int32_t)off;
}

static uint32_t vma_kind(const struct vma *v)
{
	switch (v->special) {
	case VMA_HEAP: return CKPT_VMA_HEAP;
	case VMA_STACK: return CKPT_VMA_STACK;
	case VMA_ALTSTACK: return CKPT_VMA_ALTSTACK;
	default: return v->ino ? CKPT_VMA_FILE : CKPT_VMA_ANON;
	}
}

/*
 * The end of the piece of v starting at a that is uniformly inside or outside
 * the application's writable memory, and which of the two it is.  A mapping
 * as the kernel shows it can be part writable, part not: a library's RELRO
 * page merges with its .data page once we write-protect that one.
 */
static uintptr_t writable_piece(const struct vma *v, uintptr_t a, struct range_list *writable,
				bool *inside)
{
	struct range_list *r = writable;

	while (r && r->range.end <= a)
		r = r->next;
	*inside = r && r->range.start <= a;
	uintptr_t b = *inside ? r->range.end : (r ? r->range.start : v->end);
	return b < v->end ? b : v->end;
}

static int write_state(const char *path, const struct vma_table *maps,
		       struct range_list *writable, struct range_list *pristine)
{
	struct buf out = { 0 }, strtab = { 0 };
	struct ckpt_state_header h;
	struct stat st;
	int rc;

	memset(&h, 0, sizeof(h));
	h.magic = CKPT_STATE_MAGIC;
	h.version = CKPT_STATE_VERSION;
	h.header_size = sizeof(h);
	h.epoch = g->epoch;
	h.page_size = g->page_size;
	h.altstack_start = CKPT_ALTSTACK_BASE;
	h.altstack_end = CKPT_ALTSTACK_BASE + CKPT_ALTSTACK_SIZE;
	h.private_start = CKPT_PRIVATE_BASE;
	h.private_end = CKPT_PRIVATE_BASE + CKPT_PRIVATE_SIZE;

	/* trap 3: umask can only be read by setting it. */
	h.umask = (uint32_t)sys_umask(022);
	sys_umask((int)h.umask);
	char cwd[MAXFILENAME];
	h.cwd = sys_getcwd(cwd, sizeof(cwd)) > 0 ? str_add(&strtab, cwd) : CKPT_NO_STRING;

	/* trap 17: what decides where things land. */
	char exe[MAXFILENAME];
	long n = sys_readlinkat(AT_FDCWD, "/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	h.exe = str_add(&strtab, exe);
	if (sys_fstatat(AT_FDCWD, "/proc/self/exe", &st, 0) == 0) {
		h.exe_dev = st.st_dev;
		h.exe_ino = st.st_ino;
		h.exe_size = st.st_size;
		h.exe_mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	}
	h.preload = g->preload[0] ? str_add(&strtab, g->preload) : CKPT_NO_STRING;
	struct rlimit rl;
	if (sys_prlimit(RLIMIT_STACK, NULL, &rl) == 0)
		h.rlimit_stack = rl.rlim_cur;
	for (int i = 0; i < maps->n; i++) {
		const struct vma *v = &maps->v[i];
		if (v->path && !strcmp(v->path, "[vdso]")) {
			h.vdso_start = v->start;
			h.vdso_end = v->end;
		} else if (v->path && !strcmp(v->path, "[vvar]")) {
			h.vvar_start = v->start;
			h.vvar_end = v->end;
		}
	}
	buf_add(&out, &h, sizeof(h));

	struct stat fst = { 0 };
	for (int i = 0; i < maps->n; i++) {
		const struct vma *v = &maps->v[i];
		if (v->special == VMA_KERNEL || v->special == VMA_PRIVATE)
			continue;
		/* trap 4: the identity of each mapped file, one stat per file */
		if (v->ino && (fst.st_ino != v->ino || fst.st_dev != v->dev) &&
		    sys_fstatat(AT_FDCWD, v->path, &fst, 0) < 0)
			memset(&fst, 0, sizeof(fst));
		bool same = v->ino && fst.st_ino == v->ino && fst.st_dev == v->dev;
		int32_t path = v->ino ? str_add(&strtab, v->path) : CKPT_NO_STRING;
		/* One record per piece, with the protection the application gave
		   it: PROT_WRITE back on pages we write-protected. */
		for (uintptr_t a = v->start, b; a < v->end; a = b) {
			bool inside;
			b = writable_piece(v, a, writable, &inside);
			struct ckpt_vma_rec r = {
				.start = a, .end = b,
				.offset = v->ino ? v->offset + (a - v->start) : 0,
				.dev = v->dev, .ino = v->ino,
				.size = same ? (uint64_t)fst.st_size : 0,
				.mtime_ns = same ? fst.st_mtim.tv_sec * 1000000000LL + fst.st_mtim.tv_nsec : 0,
				.prot = (uint32_t)(v->prot | (inside ? PROT_WRITE : 0)),
				.kind = vma_kind(v),
				.path = path,
				.flags = v->shared ? CKPT_VMAF_SHARED : 0,
			};
			buf_add(&out, &r, sizeof(r));
			h.vma_cnt++;
		}
	}

	struct ckpt_sig_rec sigs[64];
	h.sig_cnt = ckpt_signals_save(sigs, 64);
	buf_add(&out, sigs, h.sig_cnt * sizeof(sigs[0]));

	for (int fd = 0; fd < g->files_cap; fd++) {
		if (!g->files[fd].used || sys_fstat(fd, &st) < 0)
			continue;
		struct ckpt_file_id id = {
			.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
			.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
		};
		buf_add(&out, &id, sizeof(id));
		h.fid_cnt++;
	}

	for (struct range_list *p = pristine; p; p = p->next) {
		struct ckpt_pristine_rec r = { .start = p->range.start, .end = p->range.end };
		buf_add(&out, &r, sizeof(r));
		h.pristine_cnt++;
	}

	h.strtab_size = (uint32_t)strtab.len;
	buf_add(&out, strtab.p, strtab.len);
	rc = out.err ? out.err : strtab.err;
	if (!rc) {
		memcpy(out.p, &h, sizeof(h));
		h.crc32 = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)out.p, (uInt)out.len);
		memcpy(out.p, &h, sizeof(h));
		int fd = open_image(path);
		rc = fd < 0 ? fd : finish_file(fd, write_all(fd, out.p, out.len));
	}
	pfree(out.p);
	pfree(strtab.p);
	return rc;
}

static int write_map(const char *path, struct range_list *ranges, void *interrupted)
{
	struct buf out = { 0 };
	struct ckpt_map_header h;
	int rc;

	memset(&h, 0, sizeof(h));
	h.period = g->period;
	h.epoch = g->epoch;
	h.brk = (uintptr_t)sys_brk(NULL);
	h.stack = interrupted ? ((ucontext_t *)interrupted)->uc_mcontext.gregs[REG_RSP]
			      : g->app_ctx.uc_mcontext.gregs[REG_RSP];
	h.ctx = g->app_ctx;
	h.range_cnt = (int)range_list_count(ranges);
	h.maxfd = -1;
	buf_add(&out, &h, sizeof(h));

	for (struct range_list *r = ranges; r; r = r->next) {
		struct ckpt_range_rec rec;
		memset(&rec, 0, sizeof(rec));
		rec.start = r->range.start;
		rec.end = r->range.end;
		rec.crc32 = crc_cache_range(rec.start, rec.end);
		rec.write_protect = r->range.write_protect;
		buf_add(&out, &rec, sizeof(rec));
	}
	for (int fd = 0; fd < g->files_cap; fd++) {
		if (!g->files[fd].used)
			continue;
		struct ckpt_file_rec *f = buf_add(&out, NULL, sizeof(*f));
		if (!f)
			break;
		ckpt_fmt(f->name, sizeof(f->name), "%s", g->files[fd].path);
		f->flags = g->files[fd].flags;
		f->fd = fd;
		long off = sys_lseek(fd, 0, SEEK_CUR);
		f->offset = off < 0 ? 0 : off;
		h.file_cnt++;
		h.maxfd = fd;
	}
	rc = out.err;
	if (!rc) {
		memcpy(out.p, &h, sizeof(h));
		int fd = open_image(path);
		rc = fd < 0 ? fd : finish_file(fd, write_all(fd, out.p, out.len));
	}
	pfree(out.p);
	return rc;
}

/* Make P.map the map of this epoch, atomically (DESIGN §4 trap 7). */
static int commit_map(const char *map_n)
{
	char tmp[MAXFILENAME + 32], map[MAXFILENAME + 32], dir[MAXFILENAME];
	long r;

	ckpt_path(map, sizeof(map), ".map", -1);
	ckpt_path(tmp, sizeof(tmp), ".map.tmp", -1);
	sys_unlinkat(AT_FDCWD, tmp, 0);
	r = sys_linkat(AT_FDCWD, map_n, AT_FDCWD, tmp, 0);
	if (r < 0)
		return (int)r;
	/* ---- COMMIT POINT: from here on, a restart sees this epoch. ---- */
	r = sys_renameat(AT_FDCWD, tmp, AT_FDCWD, map);
	if (r < 0)
		return (int)r;
	/* The rename is durable only once the directory is. */
	ckpt_fmt(dir, sizeof(dir), "%s", map);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = 0;
	else
		ckpt_fmt(dir, sizeof(dir), ".");
	long dfd = sys_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (dfd >= 0) {
		sys_fsync((int)dfd);
		sys_close((int)dfd);
	}
	return 0;
}

/* ---- the checkpoint ------------------------------------------------------- */

/* A failed epoch leaves nothing behind: its files were never committed, and a
   full disk needs the room back. */
static void discard_epoch(void)
{
	static const char *const kinds[] = { ".data", ".relro", ".state", ".map" };
	char path[MAXFILENAME + 32];

	for (int i = 0; i < 4; i++) {
		ckpt_path(path, sizeof(path), kinds[i], (long)g->epoch);
		sys_unlinkat(AT_FDCWD, path, 0);
	}
	ckpt_path(path, sizeof(path), ".map.tmp", -1);
	sys_unlinkat(AT_FDCWD, path, 0);
}

/*
 * The part of the main stack below the stack pointer holds no live data, and
 * it is where libc keeps the buffers that its internal system calls fill
 * (a struct stat, a sigaction, a path): pages there that are write-protected
 * would make those calls fail with EFAULT (trap 1) behind every wrapper's
 * back.  So the 32 KiB below it stay writable; the next checkpoint saves what
 * was written there, as for any writable page.  The x86-64 red zone counts
 * as live.
 */
#define STACK_TIP_OPEN (32UL * 1024)

static void leave_stack_tip_open(struct range_list **tracked, const struct vma_table *maps,
				 void *interrupted)
{
	uintptr_t sp = interrupted ? ((ucontext_t *)interrupted)->uc_mcontext.gregs[REG_RSP]
				   : g->app_ctx.uc_mcontext.gregs[REG_RSP];
	int i = vma_find(maps, sp);

	if (i < 0 || maps->v[i].special != VMA_STACK)
		return;
	uintptr_t tip = (sp - 128) & ~((uintptr_t)g->page_size - 1);
	uintptr_t low = tip - STACK_TIP_OPEN > maps->v[i].start ? tip - STACK_TIP_OPEN : maps->v[i].start;
	if (tip > low)
		range_list_remove(tracked, low, tip);
}

/*
 * Pages of a private file mapping that lie wholly past the end of its file
 * (the file shrank after it was mapped) raise SIGBUS when touched, in the
 * checkpointer as in the application.  They hold nothing and cannot be
 * restored either: they are left out of the image.
 */
static int leave_out_past_eof(const struct vma_table *maps, struct range_list **writable,
			      struct range_list **save)
{
	for (int i = 0; i < maps->n; i++) {
		const struct vma *v = &maps->v[i];
		struct stat st;

		if (!v->ino || v->special != VMA_PLAIN || !range_list_find(*writable, v->start) ||
		    sys_fstatat(AT_FDCWD, v->path, &st, 0) < 0 || st.st_ino != v->ino)
			continue;
		uint64_t eof = ((uint64_t)st.st_size + g->page_size - 1) & ~((uint64_t)g->page_size - 1);
		if (v->offset + (v->end - v->start) <= eof)
			continue;
		uintptr_t cut = eof > v->offset ? v->start + (eof - v->offset) : v->start;
		ckpt_debug(1, "leaving out %p-%p: past the end of %s", (void *)cut, (void *)v->end,
			   v->path);
		if (range_list_remove(writable, cut, v->end) || range_list_remove(save, cut, v->end))
			return -ENOMEM;
	}
	return 0;
}

/*
 * Only the process started under the core, and only while it has a single
 * thread (DESIGN §4 trap 6): an image holds one context, and other threads'
 * stacks and locks would come back in a state no one can resume.
 */
static bool may_checkpoint(void)
{
	char names[512];
	long threads;

	if (sys_getpid() != g->pid) {
		/* A fork child shares the prefix; its image would replace the
		   parent's.  Only the process started under the core checkpoints. */
		g->errnum = EPERM;
		ckpt_err("cannot checkpoint in a child process (pid %ld) forked from the one "
			 "started under the core (pid %ld)", sys_getpid(), g->pid);
		return false;
	}
	threads = count_threads(names, sizeof(names));
	/* A thread just joined may still be leaving the kernel's task list
	   (pthread_join returns when its tid is cleared, a little before the
	   task is gone).  Give such threads a moment before refusing. */
	for (int tries = 0; threads > 1 && tries < 20; tries++) {
		struct timespec ts = { 0, 2500000 };
		SYS3(SYS_nanosleep, &ts, NULL, 0);
		threads = count_threads(names, sizeof(names));
	}
	if (threads > 1) {
		g->errnum = EBUSY;
		ckpt_err("cannot checkpoint: the process has %ld threads (%s) and a checkpoint "
			 "can hold only one; stop the others first (for numpy and friends set "
			 "OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1)", threads, names);
		return false;
	}
	return true;
}

static int write_checkpoint(void *interrupted)
{
	struct vma_table maps = { 0 };
	struct range_list *writable = NULL, *save = NULL, *data = NULL, *pristine = NULL;
	struct range_list *sealed = NULL;
	char path[MAXFILENAME + 32], map_n[MAXFILENAME + 32];
	uint64_t t0 = ckpt_now_ns(), bytes = 0;
	int rc = -1;
	long r;

	if (!may_checkpoint())
		return -1;
	ckpt_segv_reassert();
	ckpt_files_prune();

	r = maps_read(&maps);
	if (r < 0) {
		g->errnum = (int)-r;
		ckpt_perr((int)-r, "cannot read /proc/self/maps");
		return -1;
	}
	if (g->tracker->collect(&maps, &writable, &save) ||
	    leave_out_past_eof(&maps, &writable, &save) ||
	    range_list_insert(&writable, CKPT_ALTSTACK_BASE, CKPT_ALTSTACK_BASE + CKPT_ALTSTACK_SIZE, false) ||
	    range_list_insert(&save, CKPT_ALTSTACK_BASE, CKPT_ALTSTACK_BASE + CKPT_ALTSTACK_SIZE, false) ||
	    split_pristine(save, &maps, &data, &pristine) ||
	    collect_sealed(&maps, writable, &sealed)) {
		g->errnum = ENOMEM;
		ckpt_err("out of private memory while planning epoch %lu", (unsigned long)g->epoch);
		goto out;
	}

	ckpt_path(path, sizeof(path), ".data", (long)g->epoch);
	r = write_records(path, data, true, &bytes);
	if (!r) {
		ckpt_path(path, sizeof(path), ".relro", (long)g->epoch);
		r = write_sealed(path, sealed);
	}
	if (!r) {
		ckpt_path(path, sizeof(path), ".state", (long)g->epoch);
		r = write_state(path, &maps, writable, pristine);
	}
	if (!r) {
		ckpt_path(map_n, sizeof(map_n), ".map", (long)g->epoch);
		ckpt_fmt(path, sizeof(path), "%s", map_n);
		r = write_map(map_n, writable, interrupted);
	}
	if (!r) {
		ckpt_path(path, sizeof(path), ".map", -1);
		r = commit_map(map_n);
	}
	if (r < 0) {
		g->errnum = (int)-r;
		ckpt_perr((int)-r, "cannot write %s; epoch %lu not taken, the previous "
			  "checkpoint is intact", path, (unsigned long)g->epoch);
		discard_epoch();
		goto out;
	}

	/* Committed.  Protect what was saved so the next epoch sees writes. */
	struct range_list *tracked = NULL;
	for (struct range_list *w = writable; w; w = w->next)
		if (w->range.write_protect &&
		    range_list_insert(&tracked, w->range.start, w->range.end, true))
			break;
	leave_stack_tip_open(&tracked, &maps, interrupted);
	if (g->tracker->arm(tracked, save, &maps)) {
		/* Nothing may stay protected that the tracker does not know about,
		   or the next write there would look like a genuine fault. */
		for (struct range_list *w = tracked; w; w = w->next)
			sys_mprotect((void *)w->range.start, w->range.end - w->range.start,
				     PROT_READ | PROT_WRITE);
		g->tracker->reset();
		ckpt_err("epoch %lu is on disk, but write protection failed; the next "
			 "checkpoint will save all memory", (unsigned long)g->epoch);
		vma_table_free(&maps);
	}
	maps.v = NULL; /* owned by the tracker now */
	range_list_free(&tracked);

	g->last_bytes = bytes;
	g->last_pages = bytes / g->page_size;
	g->last_ns = ckpt_now_ns() - t0;
	ckpt_debug(1, "epoch %lu: saved %lu pages (%lu bytes) in %lu us; %lu pristine pages skipped, "
		      "%lu ranges, private heap %lu KiB",
		   (unsigned long)g->epoch, (unsigned long)g->last_pages, (unsigned long)bytes,
		   (unsigned long)(g->last_ns / 1000),
		   (unsigned long)(range_list_bytes(pristine) / g->page_size),
		   (unsigned long)range_list_count(writable), (unsigned long)(palloc_used() >> 10));
	if (g->debug >= 2)
		for (struct range_list *d = data; d; d = d->next)
			ckpt_debug(2, "  saved %p-%p (%lu pages)", (void *)d->range.start,
				   (void *)d->range.end,
				   (unsigned long)((d->range.end - d->range.start) / g->page_size));
	g->epoch++;
	g->taken++;
	rc = 0;
out:
	if (maps.v)
		vma_table_free(&maps);
	range_list_free(&writable);
	range_list_free(&save);
	range_list_free(&data);
	range_list_free(&pristine);
	if (sealed != g->sealed)
		range_list_free(&sealed);
	return rc;
}

static void ckpt_main(void)
{
	g->result = write_checkpoint(g->interrupted) == 0 ? CKPT_TAKEN : CKPT_FAILED;
	setcontext(&g->app_ctx);
}

int ckpt_take_from(void *interrupted)
{
	uint64_t old = ckpt_block_signals();
	int rc;

	g->in_checkpoint = true;
	g->resumed = false;
	g->result = CKPT_FAILED;
	g->errnum = 0;
	g->interrupted = interrupted;
	getcontext(&g->ckpt_ctx);
	g->ckpt_ctx.uc_stack.ss_sp = g->ckpt_stack;
	g->ckpt_ctx.uc_stack.ss_size = CKPT_STACK_SIZE;
	g->ckpt_ctx.uc_link = NULL;
	makecontext(&g->ckpt_ctx, ckpt_main, 0);
	/* The context saved here is the one a restart resumes: it comes back
	   from this swapcontext with g->resumed set by the restorer. */
	swapcontext(&g->app_ctx, &g->ckpt_ctx);

	g->in_checkpoint = false;
	rc = g->resumed ? CKPT_RESTARTED : g->result;
	ckpt_restore_signals(old);
	return rc;
}

CKPT_EXPORT int ckpt_take(void)
{
	int rc;

	if (!g || !g->active) {
		errno = ENOSYS;
		return CKPT_FAILED;
	}
	rc = ckpt_take_from(NULL);
	if (rc == CKPT_FAILED)
		errno = g->errnum ? g->errnum : EIO;
	return rc;
}

CKPT_EXPORT int checkpoint(void)
{
	if (g && g->active && g->period > 0)
		return CKPT_IGNORED; /* the seed: periodic mode ignores requests */
	return ckpt_take();
}

uint64_t ckpt_count_dirty(void)
{
	struct vma_table maps;
	struct range_list *writable = NULL, *save = NULL;
	uint64_t pages = 0;
	uint64_t old = ckpt_block_signals();

	if (maps_read(&maps) == 0) {
		if (g->tracker->collect(&maps, &writable, &save) == 0)
			pages = range_list_bytes(save) / g->page_size;
		vma_table_free(&maps);
	}
	range_list_free(&writable);
	range_list_free(&save);
	ckpt_restore_signals(old);
	return pages;
}

/*
 * restore.c - restarting a process from its latest checkpoint.
 *
 * Algorithm.  The constructor calls ckpt_restart() when CKPT_RESTART is set,
 * after the private heap, the alternate signal stack and the handlers exist
 * and before main.  In two phases:
 *
 *  Phase 1, on the constructor's stack, changing nothing: read P.map and
 *  the sidecars of every epoch the restore will need into the private heap
 *  and validate every record (trap 8): owner and mode of the files, sizes
 *  that match record counts, sorted page-aligned ranges, the CRC of each
 *  sidecar.  Check that this process's layout can match the image's (trap 12,
 *  17): ASLR off, the same executable, preload, stack limit and vdso.  Plan
 *  the address space: every mapping of the image must be here already, of
 *  the same kind and backing, or be creatable; a library file that changed
 *  or vanished is refused (trap 4); P.relro.N must be whole (trap 15).  Check the tracked files.  Walk the
 *  .data.N record headers backwards to prove that every page of every
 *  writable range will be found.  Any failure: a message naming what is
 *  wrong and exit status 3, with nothing changed.
 *
 *  Phase 2, on a private stack (trap 11: the application's stack is part of
 *  the image and is about to be overwritten): set brk (trap 9), create the
 *  missing mappings, put back their relocated read-only pages (trap 15),
 *  copy the pages in from the newest epoch backwards, each page once, drop
 *  pristine pages (trap 19), verify the CRC of every writable range; only
 *  then reopen the files at their descriptors and offsets (a refused restart
 *  leaves the program's files alone), put back signal dispositions, cwd
 *  and umask (traps 2, 3), fix glibc's cached tid (trap 13), then resume
 *  the saved context.  Nothing here keeps
 *  state in this library's .data/.bss, which the image overwrites; all of
 *  it is in the private heap.  A CRC mismatch at this point ends the process
 *  (status 3) rather than resume a corrupted image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ckpt.h"
#include "log.h"
#include "palloc.h"
#include "sys.h"

#define EXIT_RESTORE 3

/* One epoch's sidecar, as read and checked in phase 1. */
struct epoch_state {
	struct ckpt_state_header h;
	char *raw;			/* the whole file */
	struct ckpt_vma_rec *vmas;
	struct ckpt_sig_rec *sigs;
	struct ckpt_file_id *fids;
	struct ckpt_pristine_rec *pristine;
	char *strtab;
};

/* Everything phase 2 needs, on the private heap. */
struct plan {
	struct ckpt_map_header map;
	struct ckpt_range_rec *ranges;
	struct ckpt_file_rec *files;
	struct range_list *ranges_list;	/* writable ranges of the image */
	struct epoch_state *epochs;	/* index: epoch; only the needed ones */
	uint64_t oldest;		/* the oldest epoch the walk reaches */
	struct vma_table cur;		/* this process's mappings at the start */
	char errpath[MAXFILENAME + 32];
};

static _Noreturn void refuse(void)
{
	ckpt_err("restart refused; nothing was changed.  Fix the cause, or run "
		 "without CKPT_RESTART to start afresh");
	sys_exit_group(EXIT_RESTORE);
}

static const char *str_at(const struct epoch_state *e, int32_t off)
{
	if (off < 0 || (uint32_t)off >= e->h.strtab_size)
		return NULL;
	return e->strtab + off;
}

/* ---- phase 1: read and validate --------------------------------------- */

/* Read a whole image file; refuses files that others could have written. */
static char *read_image(const char *path, size_t *len)
{
	struct stat st;
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	char *buf;

	if (fd < 0) {
		ckpt_perr((int)-fd, "cannot open %s", path);
		return NULL;
	}
	if (sys_fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ckpt_err("%s is not a regular file", path);
		goto fail;
	}
	/* trap 8: the image decides what this process becomes. */
	if (st.st_uid != getuid() || (st.st_mode & 022)) {
		ckpt_err("%s is owned by uid %u with mode %o; a checkpoint must belong to "
			 "you (uid %u) and be writable by no one else", path,
			 (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)getuid());
		goto fail;
	}
	buf = palloc(st.st_size + 1);
	if (!buf) {
		ckpt_err("%s: %ld bytes do not fit the private heap", path, (long)st.st_size);
		goto fail;
	}
	for (size_t got = 0; got < (size_t)st.st_size;) {
		long r = sys_pread((int)fd, buf + got, st.st_size - got, got);
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			ckpt_perr(r < 0 ? (int)-r : EIO, "cannot read %s", path);
			goto fail;
		}
		got += r;
	}
	sys_close((int)fd);
	*len = st.st_size;
	return buf;
fail:
	sys_close((int)fd);
	return NULL;
}

static int check_ranges(const char *path, const struct ckpt_range_rec *r, int n)
{
	uintptr_t page = g->page_size - 1;

	for (int i = 0; i < n; i++) {
		if (r[i].start >= r[i].end || (r[i].start & page) || (r[i].end & page)) {
			ckpt_err("%s: range %d (%p-%p) is empty or not page aligned", path, i,
				 (void *)r[i].start, (void *)r[i].end);
			return -1;
		}
		if (i && r[i].start < r[i - 1].end) {
			ckpt_err("%s: range %d (%p-%p) is out of order or overlaps the one before", path,
				 i, (void *)r[i].start, (void *)r[i].end);
			return -1;
		}
		if (r[i].end > CKPT_PRIVATE_BASE && r[i].start < CKPT_PRIVATE_BASE + CKPT_PRIVATE_SIZE) {
			ckpt_err("%s: range %p-%p overlaps the checkpointer's private region", path,
				 (void *)r[i].start, (void *)r[i].end);
			return -1;
		}
	}
	return 0;
}

static int load_map(struct plan *p)
{
	char path[MAXFILENAME + 32];
	size_t len, need;
	char *raw;

	ckpt_path(path, sizeof(path), ".map", -1);
	raw = read_image(path, &len);
	if (!raw)
		return -1;
	if (len < sizeof(p->map)) {
		ckpt_err("%s is truncated: %lu bytes, less than its %lu-byte header", path,
			 (unsigned long)len, (unsigned long)sizeof(p->map));
		return -1;
	}
	memcpy(&p->map, raw, sizeof(p->map));
	need = sizeof(p->map) + (size_t)p->map.range_cnt * sizeof(struct ckpt_range_rec) +
	       (size_t)p->map.file_cnt * sizeof(struct ckpt_file_rec);
	if (p->map.range_cnt < 0 || p->map.file_cnt < 0 || p->map.period < 0 || len != need) {
		ckpt_err("%s: %lu bytes do not hold %d ranges and %d files (%lu expected)", path,
			 (unsigned long)len, p->map.range_cnt, p->map.file_cnt, (unsigned long)need);
		return -1;
	}
	p->ranges = (struct ckpt_range_rec *)(raw + sizeof(p->map));
	p->files = (struct ckpt_file_rec *)(p->ranges + p->map.range_cnt);
	if (check_ranges(path, p->ranges, p->map.range_cnt))
		return -1;
	for (int i = 0; i < p->map.range_cnt; i++)
		if (range_list_insert(&p->ranges_list, p->ranges[i].start, p->ranges[i].end,
				      p->ranges[i].write_protect))
			return -1;
	for (int i = 0; i < p->map.file_cnt; i++) {
		struct ckpt_file_rec *f = &p->files[i];
		if (!memchr(f->name, 0, sizeof(f->name)) || f->name[0] != '/' || f->fd < 0 ||
		    f->fd > p->map.maxfd || f->offset < 0) {
			ckpt_err("%s: file record %d is malformed", path, i);
			return -1;
		}
	}
	return 0;
}

static int load_state(uint64_t epoch, struct epoch_state *e)
{
	char path[MAXFILENAME + 32];
	size_t len, need;
	uint32_t crc;

	ckpt_path(path, sizeof(path), ".state", (long)epoch);
	e->raw = read_image(path, &len);
	if (!e->raw)
		return -1;
	if (len < sizeof(e->h)) {
		ckpt_err("%s is truncated (%lu bytes)", path, (unsigned long)len);
		return -1;
	}
	memcpy(&e->h, e->raw, sizeof(e->h));
	if (e->h.magic != CKPT_STATE_MAGIC || e->h.version != CKPT_STATE_VERSION ||
	    e->h.header_size != sizeof(e->h)) {
		ckpt_err("%s is not a version %d ipyckpt state file", path, CKPT_STATE_VERSION);
		return -1;
	}
	need = sizeof(e->h) + (size_t)e->h.vma_cnt * sizeof(struct ckpt_vma_rec) +
	       (size_t)e->h.sig_cnt * sizeof(struct ckpt_sig_rec) +
	       (size_t)e->h.fid_cnt * sizeof(struct ckpt_file_id) +
	       (size_t)e->h.pristine_cnt * sizeof(struct ckpt_pristine_rec) + e->h.strtab_size;
	if (len != need) {
		ckpt_err("%s: %lu bytes, its counts say %lu", path, (unsigned long)len, (unsigned long)need);
		return -1;
	}
	((struct ckpt_state_header *)e->raw)->crc32 = 0;
	crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)e->raw, (uInt)len);
	if (crc != e->h.crc32) {
		ckpt_err("%s is corrupted (CRC %x, expected %x)", path, crc, e->h.crc32);
		return -1;
	}
	if (e->h.epoch != epoch || e->h.page_size != (uint64_t)g->page_size) {
		ckpt_err("%s belongs to epoch %lu with %lu-byte pages, not epoch %lu with %ld",
			 path, (unsigned long)e->h.epoch, (unsigned long)e->h.page_size,
			 (unsigned long)epoch, g->page_size);
		return -1;
	}
	e->vmas = (struct ckpt_vma_rec *)(e->raw + sizeof(e->h));
	e->sigs = (struct ckpt_sig_rec *)(e->vmas + e->h.vma_cnt);
	e->fids = (struct ckpt_file_id *)(e->sigs + e->h.sig_cnt);
	e->pristine = (struct ckpt_pristine_rec *)(e->fids + e->h.fid_cnt);
	e->strtab = (char *)(e->pristine + e->h.pristine_cnt);
	if (e->h.strtab_size && e->strtab[e->h.strtab_size - 1] != 0) {
		ckpt_err("%s: string table is not terminated", path);
		return -1;
	}
	return 0;
}

/* trap 12, 17: a restart whose address space cannot match is refused. */
static int check_layout(const struct epoch_state *e, const struct vma_table *cur)
{
	struct rlimit rl;
	struct stat st;
	const char *exe = str_at(e, e->h.exe);
	const char *pre = str_at(e, e->h.preload);

	if (!(sys_personality(0xffffffff) & ADDR_NO_RANDOMIZE)) {
		ckpt_err("address space randomization is on; a restart must run under "
			 "`setarch --addr-no-randomize` (or `ipyckpt restart`)");
		return -1;
	}
	if (sys_fstatat(AT_FDCWD, "/proc/self/exe", &st, 0) < 0 ||
	    st.st_dev != e->h.exe_dev || st.st_ino != e->h.exe_ino || (uint64_t)st.st_size != e->h.exe_size ||
	    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != e->h.exe_mtime_ns) {
		ckpt_err("the checkpoint was taken by %s, and this process runs another or a "
			 "changed executable", exe ? exe : "?");
		return -1;
	}
	if (strcmp(pre ? pre : "", g->preload)) {
		ckpt_err("LD_PRELOAD differs: the checkpoint had '%s', this process has '%s'",
			 pre ? pre : "", g->preload);
		return -1;
	}
	if (sys_prlimit(RLIMIT_STACK, NULL, &rl) == 0 && rl.rlim_cur != e->h.rlimit_stack) {
		ckpt_err("the stack size limit differs (checkpoint: %lu, now: %lu); it moves where "
			 "libraries are mapped.  Restart with `ulimit -s` as it was",
			 (unsigned long)e->h.rlimit_stack, (unsigned long)rl.rlim_cur);
		return -1;
	}
	for (int i = 0; i < cur->n; i++) {
		const struct vma *v = &cur->v[i];
		if (!v->path)
			continue;
		if ((!strcmp(v->path, "[vdso]") && (v->start != e->h.vdso_start || v->end != e->h.vdso_end)) ||
		    (!strcmp(v->path, "[vvar]") && (v->start != e->h.vvar_start || v->end != e->h.vvar_end))) {
			ckpt_err("the kernel's %s is at %p-%p, the checkpoint's was elsewhere; was the "
				 "machine rebooted into another kernel?", v->path, (void *)v->start,
				 (void *)v->end);
			return -1;
		}
	}
	return 0;
}

static const char *kind_name(uint32_t kind)
{
	static const char *const names[] = { "anonymous memory", "a file mapping", "the heap",
					     "the stack", "the signal stack" };
	return kind < 5 ? names[kind] : "?";
}

static bool same_backing(const struct ckpt_vma_rec *r, const struct vma *v)
{
	if (r->kind == CKPT_VMA_ALTSTACK)
		return v->special == VMA_ALTSTACK;
	if (r->kind == CKPT_VMA_STACK)
		return v->special == VMA_STACK;
	if (r->kind == CKPT_VMA_HEAP)
		return v->special == VMA_HEAP || (v->ino == 0 && v->special == VMA_PLAIN);
	if (r->kind == CKPT_VMA_FILE)
		/* the same file, and the same file offset at each address
		   (the two may be split into pieces at different places) */
		return v->dev == r->dev && v->ino == r->ino &&
		       v->offset - r->offset == (uint64_t)(v->start - r->start);
	return v->ino == 0 && v->special == VMA_PLAIN;
}

/* trap 4: mappings the image has and this process has not, checked now. */
static int check_mappings(const struct epoch_state *e, const struct vma_table *cur)
{
	for (uint32_t i = 0; i < e->h.vma_cnt; i++) {
		const struct ckpt_vma_rec *r = &e->vmas[i];
		bool missing = false;

		if (r->start >= r->end || (r->start | r->end) % g->page_size || (i && r->start < e->vmas[i - 1].end)) {
			ckpt_err("state of epoch %lu: mapping %u is malformed", (unsigned long)e->h.epoch, i);
			return -1;
		}
		for (uintptr_t a = r->start; a < r->end;) {
			int k = vma_find(cur, a);
			if (k < 0) {
				missing = true;
				/* skip to the next mapping of this process, or the end */
				uintptr_t next = r->end;
				for (int j = 0; j < cur->n; j++)
					if (cur->v[j].start > a) {
						next = cur->v[j].start < r->end ? cur->v[j].start : r->end;
						break;
					}
				a = next;
				continue;
			}
			if (!same_backing(r, &cur->v[k])) {
				const char *path = str_at(e, r->path);
				ckpt_err("layout mismatch at %p: the checkpoint had %s%s%s there, this "
					 "process has %s; it was started differently (interpreter, "
					 "preload, environment)", (void *)a, kind_name(r->kind),
					 path ? " of " : "", path ? path : "",
					 cur->v[k].path ? cur->v[k].path : "anonymous memory");
				return -1;
			}
			a = cur->v[k].end;
		}
		if (r->kind == CKPT_VMA_FILE && (missing || !i || e->vmas[i - 1].ino != r->ino)) {
			const char *path = str_at(e, r->path);
			struct stat st;
			if (!path || sys_fstatat(AT_FDCWD, path, &st, 0) < 0) {
				ckpt_err("%s, mapped at %p when the checkpoint was taken, is gone",
					 path ? path : "a file", (void *)r->start);
				return -1;
			}
			if (st.st_dev != r->dev || st.st_ino != r->ino || (uint64_t)st.st_size != r->size ||
			    st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != r->mtime_ns) {
				ckpt_err("%s changed since the checkpoint (reinstalled or rebuilt?); "
					 "the image's view of it would not match.  Put the old one back "
					 "or start afresh", path);
				return -1;
			}
		}
	}
	return 0;
}

static const struct ckpt_file_id *file_id(const struct epoch_state *e, int fd)
{
	for (uint32_t i = 0; i < e->h.fid_cnt; i++)
		if (e->fids[i].fd == fd)
			return &e->fids[i];
	return NULL;
}

/*
 * How long a file written by the program was at the checkpoint: the part of
 * it a restart keeps.  The seed truncates at the file offset, which is the
 * end of the file for a program that only appends (every writer is switched
 * to O_APPEND).  The size recorded in the sidecar is the same there, and also
 * right for a program that wrote through mmap, ftruncate'd, or sought back
 * to read: cutting at the offset would destroy what it held at the checkpoint.
 */
static uint64_t written_size(const struct ckpt_file_rec *f, const struct ckpt_file_id *id)
{
	return id ? id->size : (uint64_t)f->offset;
}

static int check_files(const struct plan *p, const struct epoch_state *e)
{
	for (int i = 0; i < p->map.file_cnt; i++) {
		const struct ckpt_file_rec *f = &p->files[i];
		const struct ckpt_file_id *id = file_id(e, f->fd);
		bool writer = (f->flags & O_ACCMODE) != O_RDONLY;
		struct stat st;

		if (sys_fstatat(AT_FDCWD, f->name, &st, 0) < 0) {
			ckpt_err("%s (descriptor %d at the checkpoint) is gone", f->name, f->fd);
			return -1;
		}
		if (writer && (uint64_t)st.st_size < written_size(f, id)) {
			ckpt_err("%s is shorter (%ld bytes) than at the checkpoint (%lu); it was "
				 "changed by something else", f->name, (long)st.st_size,
				 (unsigned long)written_size(f, id));
			return -1;
		}
		if (!writer && id && (st.st_dev != id->dev || st.st_ino != id->ino ||
				      (uint64_t)st.st_size != id->size ||
				      st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != id->mtime_ns)) {
			ckpt_err("%s changed since the checkpoint (size %lu -> %ld); the program "
				 "would read different data than it did", f->name,
				 (unsigned long)id->size, (long)st.st_size);
			return -1;
		}
	}
	return 0;
}

/*
 * Walk the .data.N headers from the newest epoch back, as phase 2 will,
 * until every writable byte is found; load each epoch's sidecar on the way.
 */
static int plan_walk(struct plan *p)
{
	struct range_list *found = NULL;
	int rc = -1;

	p->epochs = pcalloc((p->map.epoch + 1) * sizeof(*p->epochs));
	if (!p->epochs)
		return -1;
	for (uint64_t ep = p->map.epoch + 1; ep-- > 0;) {
		char path[MAXFILENAME + 32];
		struct stat st;
		struct epoch_state *e = &p->epochs[ep];
		long fd;

		if (ep != p->map.epoch && range_list_covers_all(found, p->ranges_list))
			break;
		if (load_state(ep, e))
			goto out;
		ckpt_path(path, sizeof(path), ".data", (long)ep);
		fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0) {
			ckpt_perr((int)-fd, "cannot open %s, needed to restore epoch %lu", path,
				  (unsigned long)p->map.epoch);
			goto out;
		}
		sys_fstat((int)fd, &st);
		if (st.st_uid != getuid() || (st.st_mode & 022)) {
			ckpt_err("%s is not yours or is writable by others", path);
			sys_close((int)fd);
			goto out;
		}
		for (off_t off = 0; off < st.st_size;) {
			struct ckpt_range_rec r;
			if (sys_pread((int)fd, &r, sizeof(r), off) != sizeof(r) ||
			    check_ranges(path, &r, 1) ||
			    off + (off_t)sizeof(r) + (off_t)(r.end - r.start) > st.st_size) {
				ckpt_err("%s is damaged at offset %ld (truncated or a bad record)", path, (long)off);
				sys_close((int)fd);
				goto out;
			}
			if (range_list_insert(&found, r.start, r.end, false))
				goto out;
			off += sizeof(r) + (r.end - r.start);
		}
		sys_close((int)fd);
		for (uint32_t i = 0; i < e->h.pristine_cnt; i++)
			if (range_list_insert(&found, e->pristine[i].start, e->pristine[i].end, false))
				goto out;
		p->oldest = ep;
	}
	if (!range_list_covers_all(found, p->ranges_list)) {
		ckpt_err("the data files do not hold all memory of epoch %lu; a .data file is "
			 "missing or from another run", (unsigned long)p->map.epoch);
		goto out;
	}
	rc = 0;
out:
	range_list_free(&found);
	return rc;
}

/* The mapping of the image holding [a, b), or NULL. */
static const struct ckpt_vma_rec *image_vma(const struct epoch_state *e, uintptr_t a, uintptr_t b)
{
	for (uint32_t i = 0; i < e->h.vma_cnt; i++)
		if (e->vmas[i].start <= a && b <= e->vmas[i].end)
			return &e->vmas[i];
	return NULL;
}

/* trap 15: P.relro.N must be whole, and only hold pages of read-only file
   mappings of the image. */
static int check_relro(const struct plan *p, const struct epoch_state *e)
{
	char path[MAXFILENAME + 32];
	struct stat st;
	long fd;
	int rc = -1;

	ckpt_path(path, sizeof(path), ".relro", (long)p->map.epoch);
	fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		ckpt_perr((int)-fd, "cannot open %s", path);
		return -1;
	}
	sys_fstat((int)fd, &st);
	if (st.st_uid != getuid() || (st.st_mode & 022)) {
		ckpt_err("%s is not yours or is writable by others", path);
		goto out;
	}
	for (off_t off = 0; off < st.st_size;) {
		struct ckpt_range_rec r;
		const struct ckpt_vma_rec *v;
		if (sys_pread((int)fd, &r, sizeof(r), off) != sizeof(r) || check_ranges(path, &r, 1) ||
		    off + (off_t)sizeof(r) + (off_t)(r.end - r.start) > st.st_size ||
		    !(v = image_vma(e, r.start, r.end)) || v->kind != CKPT_VMA_FILE ||
		    (v->prot & PROT_WRITE)) {
			ckpt_err("%s is damaged at offset %ld", path, (long)off);
			goto out;
		}
		off += sizeof(r) + (r.end - r.start);
	}
	rc = 0;
out:
	sys_close((int)fd);
	return rc;
}

/* ---- phase 2: rebuild ----------------------------------------------------- */

static _Noreturn void fail_after_change(void)
{
	ckpt_err("restart failed after memory was changed; the process cannot go on.  The "
		 "checkpoint files are untouched: fix the cause and restart again");
	sys_exit_group(EXIT_RESTORE);
}

static void restore_files(struct plan *p, const struct epoch_state *e)
{
	for (int i = 0; i < p->map.file_cnt; i++) {
		struct ckpt_file_rec *f = &p->files[i];
		const struct ckpt_file_id *id = file_id(e, f->fd);
		/* O_TRUNC/O_CREAT/O_EXCL did their work the first time; again they
		   would destroy what the checkpoint wrote. */
		int flags = f->flags & ~(O_TRUNC | O_CREAT | O_EXCL);
		long fd = sys_openat(AT_FDCWD, f->name, flags, 0);
		if (fd < 0) {
			ckpt_perr((int)-fd, "cannot reopen %s", f->name);
			fail_after_change();
		}
		if (fd != f->fd) {
			sys_dup3((int)fd, f->fd, flags & O_CLOEXEC);
			sys_close((int)fd);
		}
		struct stat st;
		/* Only when it grew: an ftruncate to the same size would still
		   change its mtime, and a file that is also mapped is checked by
		   its mtime on the next restart (check_mappings). */
		if ((f->flags & O_ACCMODE) != O_RDONLY && sys_fstat(f->fd, &st) == 0 &&
		    (uint64_t)st.st_size != written_size(f, id))
			sys_ftruncate(f->fd, (off_t)written_size(f, id));
		sys_lseek(f->fd, f->offset, SEEK_SET);
		ckpt_file_track(f->fd, f->flags);
	}
}

static int prot_of(const struct ckpt_vma_rec *r)
{
	return (int)(r->prot & (PROT_READ | PROT_WRITE | PROT_EXEC));
}

/* Grow the main stack down to addr the way the kernel grows it for the
   program: by touching each page from the top down. */
static void grow_stack(uintptr_t from, uintptr_t to)
{
	for (uintptr_t a = from; a > to;) {
		a -= g->page_size;
		*(volatile char *)a = 0;
	}
}

static void rebuild_mappings(struct plan *p, const struct epoch_state *e)
{
	long r;

	/* trap 9: the break first, so the heap range exists to copy into. */
	r = sys_brk((void *)p->map.brk);
	if ((uintptr_t)r != p->map.brk) {
		ckpt_err("cannot set the program break to %p (got %p)", (void *)p->map.brk, (void *)r);
		fail_after_change();
	}
	for (uint32_t i = 0; i < e->h.vma_cnt; i++) {
		const struct ckpt_vma_rec *v = &e->vmas[i];
		for (uintptr_t a = v->start; a < v->end;) {
			int k = vma_find(&p->cur, a);
			if (k >= 0) {
				a = p->cur.v[k].end;
				continue;
			}
			uintptr_t b = v->end;
			for (int j = 0; j < p->cur.n; j++)
				if (p->cur.v[j].start > a) {
					if (p->cur.v[j].start < b)
						b = p->cur.v[j].start;
					break;
				}
			int prot = prot_of(v) | PROT_READ;
			if (v->kind == CKPT_VMA_STACK) {
				grow_stack(b, a);
			} else if (v->kind == CKPT_VMA_FILE) {
				const char *path = str_at(e, v->path);
				long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
				r = fd < 0 ? fd : sys_mmap((void *)a, b - a, prot,
					  ((v->flags & CKPT_VMAF_SHARED) ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED_NOREPLACE,
					  (int)fd, v->offset + (a - v->start));
				if (fd >= 0)
					sys_close((int)fd);
				if (r != (long)a) {
					ckpt_perr(r < 0 ? (int)-r : EEXIST, "cannot map %s at %p", path, (void *)a);
					fail_after_change();
				}
			} else if (v->kind != CKPT_VMA_HEAP) {
				r = sys_mmap((void *)a, b - a, prot,
					     ((v->flags & CKPT_VMAF_SHARED) ? MAP_SHARED : MAP_PRIVATE) |
					     MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
				if (r != (long)a) {
					ckpt_perr(r < 0 ? (int)-r : EEXIST, "cannot map %lu bytes at %p",
						  (unsigned long)(b - a), (void *)a);
					fail_after_change();
				}
			}
			a = b;
		}
	}
	/* Every writable range must take writes while it is copied in. */
	for (int i = 0; i < p->map.range_cnt; i++) {
		struct ckpt_range_rec *rr = &p->ranges[i];
		for (uint32_t j = 0; j < e->h.vma_cnt; j++) {
			const struct ckpt_vma_rec *v = &e->vmas[j];
			uintptr_t a = v->start > rr->start ? v->start : rr->start;
			uintptr_t b = v->end < rr->end ? v->end : rr->end;
			if (a < b)
				sys_mprotect((void *)a, b - a, prot_of(v) | PROT_READ | PROT_WRITE);
		}
	}
}

static void copy_in(int fd, const char *path, off_t off, uintptr_t a, uintptr_t b);

/* Put back relocated read-only pages, through a temporary mprotect. */
static void restore_relro(struct plan *p, const struct epoch_state *e)
{
	char path[MAXFILENAME + 32];
	struct stat st;

	ckpt_path(path, sizeof(path), ".relro", (long)p->map.epoch);
	long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0 || sys_fstat((int)fd, &st) < 0) {
		ckpt_perr(fd < 0 ? (int)-fd : EIO, "cannot open %s", path);
		fail_after_change();
	}
	for (off_t off = 0; off < st.st_size;) {
		struct ckpt_range_rec r;
		const struct ckpt_vma_rec *v;
		if (sys_pread((int)fd, &r, sizeof(r), off) != sizeof(r) ||
		    !(v = image_vma(e, r.start, r.end))) {
			ckpt_err("%s changed during the restart", path);
			fail_after_change();
		}
		sys_mprotect((void *)r.start, r.end - r.start, PROT_READ | PROT_WRITE);
		copy_in((int)fd, path, off + sizeof(r), r.start, r.end);
		sys_mprotect((void *)r.start, r.end - r.start, prot_of(v));
		off += sizeof(r) + (r.end - r.start);
	}
	sys_close((int)fd);
}

/* Copy [a, b) of the record at data offset off in. */
static void copy_in(int fd, const char *path, off_t off, uintptr_t a, uintptr_t b)
{
	while (a < b) {
		long r = sys_pread(fd, (void *)a, b - a, off);
		if (r == -EINTR)
			continue;
		if (r <= 0) {
			ckpt_perr(r < 0 ? (int)-r : EIO, "cannot read %s at %ld into %p", path, (long)off,
				  (void *)a);
			fail_after_change();
		}
		a += r;
		off += r;
	}
}

/* The parts of [a, b) inside the image's ranges and not yet restored. */
typedef void (*span_fn)(uintptr_t a, uintptr_t b, void *arg);

static void for_each_new(struct plan *p, struct range_list **done, uintptr_t a, uintptr_t b,
			 span_fn fn, void *arg)
{
	for (struct range_list *m = p->ranges_list; m && m->range.start < b; m = m->next) {
		uintptr_t s = m->range.start > a ? m->range.start : a;
		uintptr_t e = m->range.end < b ? m->range.end : b;
		if (s >= e)
			continue;
		/* subtract what a newer epoch already restored */
		uintptr_t x = s;
		for (struct range_list *d = *done; d && d->range.start < e && x < e; d = d->next) {
			if (d->range.end <= x)
				continue;
			if (d->range.start > x)
				fn(x, d->range.start < e ? d->range.start : e, arg);
			x = d->range.end;
		}
		if (x < e)
			fn(x, e, arg);
	}
	if (range_list_insert(done, a, b, false))
		fail_after_change();
}

struct copy_arg {
	int fd;
	const char *path;
	off_t rec_data;
	uintptr_t rec_start;
	uint64_t *pages;
};

static void copy_span(uintptr_t a, uintptr_t b, void *arg)
{
	struct copy_arg *c = arg;
	copy_in(c->fd, c->path, c->rec_data + (off_t)(a - c->rec_start), a, b);
	*c->pages += (b - a) / g->page_size;
}

static void drop_span(uintptr_t a, uintptr_t b, void *arg)
{
	(void)arg;
	/* zeros for anonymous memory, the file's bytes for a private file map */
	sys_madvise((void *)a, b - a, MADV_DONTNEED);
}

static uint64_t copy_memory(struct plan *p)
{
	struct range_list *done = NULL;
	uint64_t pages = 0;

	for (uint64_t ep = p->map.epoch + 1; ep-- > p->oldest;) {
		char path[MAXFILENAME + 32];
		struct stat st;
		struct epoch_state *e = &p->epochs[ep];

		ckpt_path(path, sizeof(path), ".data", (long)ep);
		long fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0 || sys_fstat((int)fd, &st) < 0) {
			ckpt_perr(fd < 0 ? (int)-fd : EIO, "cannot open %s", path);
			fail_after_change();
		}
		struct copy_arg c = { .fd = (int)fd, .path = path, .pages = &pages };
		for (off_t off = 0; off < st.st_size;) {
			struct ckpt_range_rec r;
			if (sys_pread((int)fd, &r, sizeof(r), off) != sizeof(r)) {
				ckpt_err("%s changed during the restart", path);
				fail_after_change();
			}
			c.rec_data = off + sizeof(r);
			c.rec_start = r.start;
			for_each_new(p, &done, r.start, r.end, copy_span, &c);
			off += sizeof(r) + (r.end - r.start);
		}
		sys_close((int)fd);
		for (uint32_t i = 0; i < e->h.pristine_cnt; i++)
			for_each_new(p, &done, e->pristine[i].start, e->pristine[i].end, drop_span, NULL);
	}
	range_list_free(&done);
	return pages;
}

static void verify_crcs(struct plan *p)
{
	int bad = 0;

	for (int i = 0; i < p->map.range_cnt; i++) {
		struct ckpt_range_rec *r = &p->ranges[i];
		uint32_t crc = ckpt_crc(r->start, r->end);
		if (crc != r->crc32) {
			ckpt_err("CRC mismatch in %p-%p: %x, the map says %x", (void *)r->start,
				 (void *)r->end, crc, r->crc32);
			bad++;
		}
	}
	if (bad) {
		ckpt_err("%d of %d ranges do not match their checksum: the image is damaged or "
			 "was changed after it was written; not resuming it", bad, p->map.range_cnt);
		sys_exit_group(EXIT_RESTORE);
	}
}

/* Anonymous memory the application had made read-only stays its own. */
static void note_readonly(const struct epoch_state *e)
{
	for (uint32_t i = 0; i < e->h.vma_cnt; i++) {
		const struct ckpt_vma_rec *v = &e->vmas[i];
		if (v->kind == CKPT_VMA_ANON && (v->prot & (PROT_READ | PROT_WRITE)) == PROT_READ)
			g->tracker->remapped(v->start, v->end, (int)v->prot);
	}
}

static void restore_main(void)
{
	/* The plan is reached through g, whose value the image's copy of this
	   library's .bss holds too: the private region is at a fixed address. */
	struct plan *p = g->restore_plan;
	struct epoch_state *e = &p->epochs[p->map.epoch];
	uint64_t t0 = ckpt_now_ns(), pages;

	rebuild_mappings(p, e);
	restore_relro(p, e);
	pages = copy_memory(p);
	verify_crcs(p);
	/* Only now, with the image known good, anything outside this process:
	   a refused restart must not have cut the program's output files. */
	restore_files(p, e);
	note_readonly(e);

	g->period = p->map.period; /* the saved period wins over CKPT_PERIOD */
	ckpt_signals_restore(e->sigs, (int)e->h.sig_cnt);
	const char *cwd = str_at(e, e->h.cwd);
	if (cwd && sys_chdir(cwd) < 0)
		ckpt_err("cannot go back to the working directory %s; staying in the current one", cwd);
	sys_umask((int)e->h.umask);
	/* trap 16: the canary and pointer guard came back with the image's
	   thread descriptor, as the image's frames need; this file is built
	   without the stack protector (setup.py) for that reason. */
	ckpt_fix_thread_descriptor();

	g->epoch = p->map.epoch + 1;
	g->restarted_from = p->map.epoch;
	/* trap 14: the pid changed; the core's own notion follows, and nothing
	   else of the core cached it.  Programs that did (multiprocessing) learn
	   of the restart through CKPT_NOTIFY or checkpoint()'s return value. */
	g->pid = sys_getpid();
	g->resumed = true;
	g->in_checkpoint = false;
	if (g->period > 0 && ckpt_periodic_start(g->period))
		fail_after_change();
	ckpt_debug(1, "restored epoch %lu: %lu pages from epochs %lu..%lu in %lu us; next epoch %lu",
		   (unsigned long)p->map.epoch, (unsigned long)pages, (unsigned long)p->map.epoch,
		   (unsigned long)p->oldest, (unsigned long)((ckpt_now_ns() - t0) / 1000),
		   (unsigned long)g->epoch);

	g->app_ctx = p->map.ctx;
	/* getcontext points fpregs into the ucontext itself; ours moved. */
	g->app_ctx.uc_mcontext.fpregs = &g->app_ctx.__fpregs_mem;
	g->active = true;
	/* Pending until the saved context's mask unblocks it, then delivered to
	   the handler the image installed: the program learns of the restart. */
	if (g->notify_signal)
		sys_tgkill((int)g->pid, (int)sys_gettid(), g->notify_signal);
	setcontext(&g->app_ctx);
	ckpt_err("cannot resume the saved context");
	sys_exit_group(EXIT_RESTORE);
}

void ckpt_restart(void)
{
	struct plan *p = pcalloc(sizeof(*p));
	ucontext_t here;
	void *stack = palloc(CKPT_STACK_SIZE);

	if (!p || !stack) {
		ckpt_err("out of private memory");
		refuse();
	}
	if (load_map(p))
		refuse();
	if (maps_read(&p->cur) < 0) {
		ckpt_err("cannot read /proc/self/maps");
		refuse();
	}
	if (plan_walk(p))
		refuse();
	struct epoch_state *e = &p->epochs[p->map.epoch];
	if (check_layout(e, &p->cur) || check_mappings(e, &p->cur) || check_relro(p, e) ||
	    check_files(p, e))
		refuse();
	/*
	 * Phase 2 runs on the private stack: the application's is overwritten.
	 * And with every signal held off until the saved context's own mask
	 * takes over: a handler run now would run application code in a half
	 * restored process, and on the alternate stack, over the SIGPROF frame
	 * the image returns through.  (CKPT_NOTIFY's signal waits there too.)
	 */
	ckpt_block_signals();
	g->restore_plan = p;
	getcontext(&g->ckpt_ctx);
	g->ckpt_ctx.uc_stack.ss_sp = stack;
	g->ckpt_ctx.uc_stack.ss_size = CKPT_STACK_SIZE;
	g->ckpt_ctx.uc_link = NULL;
	makecontext(&g->ckpt_ctx, restore_main, 0);
	swapcontext(&here, &g->ckpt_ctx);
	sys_exit_group(EXIT_RESTORE); /* not reached */
}

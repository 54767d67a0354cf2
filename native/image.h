/*
 * image.h - the on-disk layout of a checkpoint, declared once.
 *
 * The writer (writer.c), the restorer (restore.c) and `ipyckpt inspect`
 * (through cffi, see ipyckpt/_build_layout.py) all take the layout from this
 * file; nothing retypes it.  Keep it parseable by cffi: when CKPT_CDEF is
 * defined it must contain nothing but plain declarations.
 *
 * Files of a checkpoint with prefix P (the seed's two kinds first):
 *
 *   P.map      header, range_cnt range records, file_cnt file records.
 *              Byte-for-byte the seed's layout: on x86_64 glibc the header
 *              is 1016 bytes with ctx at offset 48, a range record 24 bytes,
 *              a file record 4112 bytes.  Replaced atomically (the commit
 *              point of a checkpoint); a hard link to P.map.N of its epoch.
 *   P.data.N   the memory written in epoch N: a sequence of range records
 *              (crc32 and write_protect unused, zero) each followed by
 *              end-start bytes.  Epoch 0, and the first epoch after a
 *              restart, hold all writable memory; any other epoch exactly
 *              the pages written since the previous one.
 *
 * Sidecars (never mixed into the two above):
 *
 *   P.map.N    the .map of epoch N, kept so that an older epoch stays
 *              restorable.
 *   P.state.N  what a restart needs beyond the seed's map: every mapping
 *              with its backing file, the signal dispositions, cwd, umask,
 *              the identity of tracked files and the facts that fix the
 *              address-space layout (vdso, stack limit, executable).
 *              Layout: struct ckpt_state_header, vma_cnt ckpt_vma_rec,
 *              sig_cnt ckpt_sig_rec, fid_cnt ckpt_file_id, pristine_cnt
 *              ckpt_pristine_rec, then strtab_size bytes of NUL-terminated
 *              strings that records point into.
 *   P.relro.N  pages of read-only private file mappings whose content is not
 *              the file's: relocated and then sealed read-only by ld.so
 *              (PT_GNU_RELRO, DESIGN §4 trap 15).  Mapping the file again
 *              would give unrelocated bytes.  Same layout as P.data.N; every
 *              epoch's file is complete on its own.
 *
 * A worked example: a program whose heap and stack were written after
 * epoch 0 has P.data.1 = [rec 0x555555559000-0x55555555a000][4096 bytes]
 * [rec 0x7ffffffdd000-0x7ffffffde000][4096 bytes]; P.map lists every
 * writable range with the CRC-32 of its whole content at epoch 1.
 */
#ifndef IPYCKPT_IMAGE_H
#define IPYCKPT_IMAGE_H

#ifndef CKPT_CDEF
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <ucontext.h>
#endif

#define MAXFILENAME 4096

/* ---- the seed's formats ------------------------------------------------ */

struct ckpt_map_header {
	int period;		/* seconds between periodic checkpoints, 0: manual */
	uint64_t epoch;		/* the epoch of this checkpoint */
	uintptr_t brk;		/* the program break */
	uintptr_t stack;	/* the application's stack pointer */
	int range_cnt;		/* ckpt_range_rec records after the header */
	int file_cnt;		/* ckpt_file_rec records after the ranges */
	int maxfd;		/* the largest tracked file descriptor, -1: none */
	ucontext_t ctx;		/* the application's execution context */
};

struct ckpt_range_rec {
	uintptr_t start;	/* first byte, page aligned */
	uintptr_t end;		/* one past the last byte, page aligned */
	uint32_t crc32;		/* CRC-32 (zlib) of [start, end) in .map; 0 in .data */
	bool write_protect;	/* tracked by write protection; false for the
				   alternate signal stack, saved every epoch */
};

struct ckpt_file_rec {
	char name[MAXFILENAME];	/* absolute path, NUL terminated */
	int flags;		/* open(2) flags, O_APPEND forced for writers */
	int fd;			/* the descriptor number to restore it at */
	off_t offset;		/* file offset; writers are truncated to it */
};

/* ---- sidecar P.state.N ------------------------------------------------- */

enum {
	CKPT_STATE_MAGIC = 0x54534b43,	/* "CKST" little-endian */
	CKPT_STATE_VERSION = 2,	/* 2: ckpt_vma_rec has size, mtime_ns */
	CKPT_NO_STRING = -1,		/* a strtab offset that names nothing */
};

/* Kinds of mapping: how a restart recreates one that is missing. */
enum ckpt_vma_kind {
	CKPT_VMA_ANON = 0,	/* private anonymous: recreated zero-filled */
	CKPT_VMA_FILE = 1,	/* file backed: recreated from path at offset */
	CKPT_VMA_HEAP = 2,	/* [heap]: recreated by brk */
	CKPT_VMA_STACK = 3,	/* [stack]: recreated by growing the stack */
	CKPT_VMA_ALTSTACK = 4,	/* the checkpointer's alternate signal stack */
};

enum {
	CKPT_VMAF_SHARED = 1,	/* MAP_SHARED */
};

struct ckpt_state_header {
	uint32_t magic;		/* CKPT_STATE_MAGIC */
	uint32_t version;	/* CKPT_STATE_VERSION */
	uint32_t header_size;	/* sizeof(struct ckpt_state_header) */
	uint32_t crc32;		/* CRC-32 of the whole file with this field 0 */
	uint64_t epoch;		/* equals the epoch of P.map.N */
	uint64_t page_size;
	uint32_t vma_cnt;	/* struct ckpt_vma_rec records */
	uint32_t sig_cnt;	/* struct ckpt_sig_rec records */
	uint32_t fid_cnt;	/* struct ckpt_file_id records */
	uint32_t pristine_cnt;	/* struct ckpt_pristine_rec records */
	uint32_t strtab_size;	/* bytes of strings at the end */
	uint32_t umask;		/* the process umask */
	uint32_t reserved;
	int32_t cwd;		/* strtab offset of the working directory */
	int32_t exe;		/* strtab offset of /proc/self/exe */
	int32_t preload;	/* strtab offset of LD_PRELOAD, or CKPT_NO_STRING */
	uint64_t exe_dev;	/* identity of the executable (DESIGN §4 trap 17) */
	uint64_t exe_ino;
	uint64_t exe_size;
	int64_t exe_mtime_ns;
	uint64_t rlimit_stack;	/* RLIMIT_STACK soft limit: it places mmap_base */
	uint64_t vdso_start;	/* [vdso], [vvar]: the kernel's (trap 12) */
	uint64_t vdso_end;
	uint64_t vvar_start;
	uint64_t vvar_end;
	uint64_t altstack_start;	/* the alternate signal stack */
	uint64_t altstack_end;
	uint64_t private_start;	/* the checkpointer's own region, never saved */
	uint64_t private_end;
};

struct ckpt_vma_rec {
	uint64_t start;
	uint64_t end;
	uint64_t offset;	/* file offset of start, 0 for anonymous */
	uint64_t dev;		/* backing file, 0/0 for anonymous */
	uint64_t ino;
	uint64_t size;		/* size and modification time of the file at the */
	int64_t mtime_ns;	/* checkpoint: a restart refuses a changed one */
	uint32_t prot;		/* PROT_* the application gave it */
	uint32_t kind;		/* enum ckpt_vma_kind */
	int32_t path;		/* strtab offset, or CKPT_NO_STRING */
	uint32_t flags;		/* CKPT_VMAF_* */
};

/* One signal disposition as the application set it (kernel sigaction). */
struct ckpt_sig_rec {
	int32_t signo;
	uint32_t reserved;
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/* The identity of a tracked file, to refuse a restart if it changed. */
struct ckpt_file_id {
	int32_t fd;
	uint32_t reserved;
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_ns;
};

/*
 * Pages of epoch N's writable memory that were not written to P.data.N
 * because they were pristine (DESIGN §4 trap 19): never-touched anonymous
 * pages (zeros) and private file pages never written (equal to the file).
 * A restart drops whatever is there and never takes them from an older epoch.
 */
struct ckpt_pristine_rec {
	uint64_t start;
	uint64_t end;
};

#ifndef CKPT_CDEF
#include <stddef.h>
/* The seed's layout on this platform; a mismatch is a build error. */
_Static_assert(sizeof(struct ckpt_map_header) == 1016, "seed .map header is 1016 bytes");
_Static_assert(offsetof(struct ckpt_map_header, ctx) == 48, "seed header has ctx at 48");
_Static_assert(sizeof(struct ckpt_range_rec) == 24, "seed range record is 24 bytes");
_Static_assert(sizeof(struct ckpt_file_rec) == MAXFILENAME + 16, "seed file record");
_Static_assert(sizeof(struct ckpt_state_header) % 8 == 0, "sidecar header aligned");
_Static_assert(sizeof(struct ckpt_vma_rec) == 72, "sidecar vma record");
#endif

#endif

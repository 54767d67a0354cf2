/*
 * ckpt.h - the checkpointer's state and the interfaces between its files.
 *
 *   init.c            constructor: CKPT_* variables, private heap, alternate
 *                     signal stack, handlers, timer, restart
 *   palloc.c          the private allocator (no libc malloc anywhere)
 *   ranges.c          the seed's range lists
 *   maps.c            /proc/self/maps reader
 *   track_mprotect.c  dirty tracking by write protection (struct ckpt_tracker)
 *   signals.c         SIGSEGV and SIGPROF handlers, chaining to the
 *                     application's SIGSEGV handler, sigaction wrappers
 *   writer.c          taking a checkpoint: .data.N, sidecars, commit of .map
 *   restore.c         restarting from a checkpoint
 *   files.c           open/close/lseek wrappers and the tracked file table
 *   mm_wrap.c         mmap/munmap/mprotect/mremap wrappers: the application's
 *                     own changes to its address space, told to the tracker
 *   syscall_dest.c    wrappers of calls in which the kernel writes into
 *                     application memory (DESIGN §4 trap 1)
 *   log.c             async-signal-safe messages
 */
#ifndef IPYCKPT_CKPT_H
#define IPYCKPT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <ucontext.h>

#include "include/checkpoint.h"
#include "image.h"
#include "maps.h"
#include "ranges.h"
#include "sys.h"

/* Symbols the core exports (built with -fvisibility=hidden): the public API
   and the libc functions it wraps. */
#define CKPT_EXPORT __attribute__((visibility("default")))

/*
 * The alternate signal stack sits at a fixed address outside the private
 * region: unlike the private heap it is part of every image (a SIGPROF
 * checkpoint's context points into it), so it must be at the same place in
 * the restarted process.  Large enough for nested SIGPROF/SIGSEGV frames with
 * full AVX-512 state plus the application's own SIGSEGV handler.
 */
#define CKPT_ALTSTACK_BASE 0x6ffe00000000UL
#define CKPT_ALTSTACK_SIZE (64UL * 1024)
#define CKPT_STACK_SIZE (512UL * 1024)	/* the checkpointer's own context */

/*
 * A dirty-page tracker.  The writer asks it which pages to save and tells
 * it when a checkpoint is on disk; the SIGSEGV handler and the syscall
 * wrappers ask it to open pages for writing.  Another tracker (soft-dirty
 * bits, userfaultfd write protection) fills the same struct.
 */
struct ckpt_tracker {
	const char *name;
	/* Add to *save the pages of the current mappings written since the
	   last arm(), and to *writable all memory the application may write.
	   Called with the application stopped. */
	int (*collect)(const struct vma_table *maps, struct range_list **writable,
		       struct range_list **save);
	/* The pages in save are on disk: track writes to them again.  From now
	   on writable is the application's writable memory. */
	int (*arm)(struct range_list *writable, struct range_list *save,
		   const struct vma_table *maps);
	/* A SIGSEGV at addr: true if it was a tracked page, now writable. */
	bool (*fault)(uintptr_t addr, int si_code);
	/* The kernel is about to write [addr, addr + len) for the application. */
	void (*prepare_write)(uintptr_t addr, size_t len);
	/* The application mapped [start, end) with protection prot, or changed
	   its protection to prot (mmap, mprotect), or unmapped it (prot < 0). */
	void (*remapped)(uintptr_t start, uintptr_t end, int prot);
	/* Stop tracking everything (after a restart nothing is protected). */
	void (*reset)(void);
};

extern const struct ckpt_tracker ckpt_tracker_mprotect;

/* One tracked file; indexed by descriptor in ckpt_state.files. */
struct ckpt_file {
	bool used;
	int flags;
	char *path;		/* absolute, palloc'd */
	uint64_t dev, ino;	/* to notice the descriptor now names another file */
};

/*
 * All of the checkpointer's state.  It lives on the private heap, at the same
 * address in every process of a checkpoint's life, and is never saved.
 */
struct ckpt_state {
	/* configuration */
	char prefix[MAXFILENAME];
	int period;
	int debug;
	bool restart;
	long page_size;
	char preload[MAXFILENAME];	/* LD_PRELOAD at start (trap 17) */
	int notify_signal;	/* CKPT_NOTIFY: raised after a restart, 0: none */

	/* life */
	bool active;		/* constructor finished, checkpoints allowed */
	long pid;		/* the process the core is for (not a fork child) */
	bool in_checkpoint;	/* the writer is running */
	uint64_t epoch;		/* epoch of the next checkpoint */
	uint64_t taken;
	uint64_t restarted_from;

	/* contexts: the application's at the checkpoint, the checkpointer's */
	ucontext_t app_ctx;
	ucontext_t ckpt_ctx;
	void *ckpt_stack;
	void *interrupted;	/* SIGPROF: the interrupted context, else NULL */
	int result;		/* what checkpoint() returns in this process */
	int errnum;		/* errno of the last failure */
	bool resumed;		/* set by the restorer in a restarted process */
	void *restore_plan;	/* restore.c's plan while it runs */

	/* tracking */
	const struct ckpt_tracker *tracker;
	bool armed;		/* some memory is write-protected now */
	struct range_list *tracked;	/* rw application memory, by protection */
	struct range_list *tracked_x;	/* rwx application memory */
	struct vma_table armed_maps;	/* mappings when last armed: identity */
	struct range_list *app_readonly;	/* anonymous memory the application
					   itself made read-only: never adopted */

	/* signals */
	struct sigaction app_segv;	/* the application's SIGSEGV disposition */
	stack_t app_altstack;		/* the alternate stack it asked for */
	struct ckpt_ksigaction our_segv;
	struct ckpt_ksigaction our_prof;
	uint64_t ckpt_sigmask;	/* blocked while the checkpointer runs */

	/* files */
	struct ckpt_file *files;
	int files_cap;

	/* glibc thread descriptor facts (DESIGN §4 trap 13) */
	long tid_offset;	/* offset of the cached tid from the thread pointer */

	/* the last P.relro.N written by this process (writer.c) */
	struct range_list *sealed;
	uint32_t sealed_crc;
	uint64_t sealed_epoch;

	/* statistics of the last checkpoint */
	uint64_t last_bytes;
	uint64_t last_pages;
	uint64_t last_ns;

	char errmsg[1024];
};

extern struct ckpt_state *g;

/* init.c */
uint64_t ckpt_now_ns(void);
/* Block every signal but the synchronous faults; returns the old mask. */
uint64_t ckpt_block_signals(void);
void ckpt_restore_signals(uint64_t old);
int ckpt_path(char *buf, size_t size, const char *suffix, long epoch);
void ckpt_fix_thread_descriptor(void);

/* signals.c */
int ckpt_signals_init(void);
int ckpt_periodic_start(int period);
void ckpt_segv_reassert(void);
int ckpt_signals_save(struct ckpt_sig_rec *recs, int max);
void ckpt_signals_restore(const struct ckpt_sig_rec *recs, int n);

/* writer.c */
/* Take a checkpoint; interrupted is the SIGPROF handler's ucontext or NULL. */
int ckpt_take_from(void *interrupted);
uint64_t ckpt_count_dirty(void);

uint32_t ckpt_crc(uintptr_t start, uintptr_t end);

/* restore.c: returns only on failure before anything was changed. */
void ckpt_restart(void) __attribute__((noreturn));

/* files.c */
int ckpt_file_track(int fd, int flags);
void ckpt_files_prune(void);

#endif

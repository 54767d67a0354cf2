/*
 * checkpoint.h - the public interface of ipyckpt's checkpointing core.
 *
 * Link with `$(ipyckpt cc-flags)` and run the program under
 *   setarch --addr-no-randomize env CKPT_PREFIX=... ./app
 * The core starts itself in a constructor, before main, driven by:
 *
 *   CKPT_PREFIX   required: checkpoint files are CKPT_PREFIX.map,
 *                 CKPT_PREFIX.data.N and the sidecars CKPT_PREFIX.map.N,
 *                 CKPT_PREFIX.state.N (see native/image.h).
 *   CKPT_PERIOD   seconds of CPU time between automatic checkpoints (SIGPROF);
 *                 0 or unset: only on-demand checkpoints.
 *   CKPT_RESTART  if set: restart from the latest checkpoint; the period
 *                 saved in it is used and CKPT_PERIOD is ignored.
 *   CKPT_DEBUG    if set: diagnostics on stderr; "2" adds per-range detail.
 *   CKPT_NOTIFY   optional: a signal number the core raises in a restarted
 *                 process just before it resumes, so that the program learns
 *                 it was restarted wherever it was (a Jupyter engine tells its
 *                 front).  The handler is the one saved in the checkpoint.
 *   CKPT_EXE      optional: the absolute path of the executable the core is
 *                 for.  Any other program that loads it (a shell or `env` on
 *                 the way to it) leaves it dormant and passes the variables
 *                 on.  `ipyckpt run` sets it.
 *
 * The core hides LD_PRELOAD's entry for it and the CKPT_* variables from the
 * programs this one starts, so they never checkpoint into the same files.
 */
#ifndef IPYCKPT_CHECKPOINT_H
#define IPYCKPT_CHECKPOINT_H

#ifndef CKPT_CDEF /* cffi reads the types below; see ipyckpt/_build_layout.py */
#include <stdint.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_API __attribute__((visibility("default")))

/* What checkpoint() returns. */
enum {
	CKPT_FAILED = -1,	/* nothing was written; errno and ckpt_last_error()
				   say why (EBUSY: more than one thread) */
	CKPT_TAKEN = 0,		/* a checkpoint was just committed to disk */
	CKPT_RESTARTED = 1,	/* this process was just restarted from it */
	CKPT_IGNORED = 2,	/* periodic mode: on-demand requests are ignored */
};

/*
 * Take a checkpoint now.  Returns twice over the life of a checkpoint: once
 * with CKPT_TAKEN in the process that took it, and once with CKPT_RESTARTED
 * in each process restarted from it.
 */
#ifndef CKPT_CDEF
CKPT_API int checkpoint(void);
#endif

struct ckpt_status {
	int active;		/* the core is running in this process */
	int period;		/* seconds, 0: on demand */
	uint64_t epoch;		/* the epoch the next checkpoint will have */
	uint64_t checkpoints;	/* taken by this process */
	uint64_t restarted_from; /* epoch restored into this process, or -1 */
	uint64_t last_bytes;	/* bytes of memory in the last .data.N */
	uint64_t last_pages;	/* pages in the last .data.N */
	uint64_t last_ns;	/* wall time of the last checkpoint */
	uint64_t dirty_pages;	/* written since the last checkpoint */
	char prefix[4096];
};

#ifndef CKPT_CDEF
/* Fill *st; dirty_pages is counted now.  Returns 0, or -1 if inactive. */
CKPT_API int ckpt_get_status(struct ckpt_status *st);

/* The message of the last failure in this process, or "" if none. */
CKPT_API const char *ckpt_last_error(void);

/*
 * Take a checkpoint now, also in periodic mode (where checkpoint() ignores
 * requests, as the seed specifies).  Returns as checkpoint() does.  For
 * front ends such as the %checkpoint magic.
 */
CKPT_API int ckpt_take(void);

/*
 * Change the period: seconds of CPU time between automatic checkpoints, 0 to
 * stop them.  Saved with the next checkpoint, so a restart keeps it.
 * Returns 0, or -1 with errno (EINVAL for a negative period).
 */
CKPT_API int ckpt_set_period(int seconds);
#endif

#ifdef __cplusplus
}
#endif

#endif

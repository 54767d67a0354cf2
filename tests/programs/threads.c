/*
 * threads - a checkpoint of a process with more than one thread is refused,
 * not written broken (DESIGN §4 trap 6).
 *
 * Starts a thread that waits on a pipe, calls checkpoint() and prints what
 * it returned, errno and ckpt_last_error(); then lets the thread finish,
 * joins it and checkpoints again, which must succeed.  Output:
 *   with 2 threads: rc -1 errno EBUSY: <message>
 *   after join: rc 0
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "seed_common.h"

static int pipefd[2];

static void *waiter(void *arg)
{
	char c;

	(void)arg;
	while (read(pipefd[0], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

int main(void)
{
	pthread_t t;

	if (pipe(pipefd) || pthread_create(&t, NULL, waiter, NULL))
		return 1;
	errno = 0;
	int rc = checkpoint();
	int err = errno;
	say("with 2 threads: rc %d errno %s: %s\n", rc, err == EBUSY ? "EBUSY" : strerror(err),
	    ckpt_last_error());
	if (write(pipefd[1], "x", 1) != 1 || pthread_join(t, NULL))
		return 1;
	/* A joined thread may linger in /proc/self/task for a moment. */
	for (int i = 0; i < 1000; i++) {
		rc = checkpoint();
		if (rc != CKPT_FAILED || errno != EBUSY)
			break;
		usleep(1000);
	}
	say("after join: rc %d\n", rc);
	return 0;
}

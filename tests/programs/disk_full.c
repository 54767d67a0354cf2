/*
 * disk_full.c - a checkpoint that does not fit on the disk fails cleanly.
 *
 * Takes epoch 0, then dirties 8 MiB and asks for another checkpoint, which the
 * test's small file system cannot hold: checkpoint() must return CKPT_FAILED
 * with ENOSPC and a message, and the program must go on.  Then it creates the
 * file `reported` and waits while the file `hold` exists (the test kills it
 * there and restarts it from epoch 0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <checkpoint.h>

int main(void)
{
	static char marker[32] = "original";

	setvbuf(stdout, NULL, _IONBF, 0);
	int r = checkpoint();
	if (r == CKPT_RESTARTED) {
		printf("restarted from epoch 0, marker %s\n", marker);
		return 0;
	}
	printf("epoch 0: %d\n", r);
	char *big = malloc(8 << 20);
	memset(big, 7, 8 << 20);
	strcpy(marker, "changed");
	r = checkpoint();
	printf("epoch 1: %d errno %s\n", r, errno == ENOSPC ? "ENOSPC" : strerror(errno));
	printf("message: %s\n", ckpt_last_error());
	printf("still running, big[5] = %d\n", big[5]);
	close(creat("reported", 0600));
	while (access("hold", F_OK) == 0)
		usleep(10000);
	return 0;
}

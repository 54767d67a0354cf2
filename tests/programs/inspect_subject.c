/*
 * inspect_subject.c - a small program whose checkpoints `ipyckpt inspect`
 * is tested on.
 *
 * usage: inspect_subject OUTFILE [EPOCHS]
 *
 * Allocates 1 MiB of heap memory, fills it with a pattern, opens OUTFILE for
 * writing and takes EPOCHS (default 3) on-demand checkpoints, changing a few
 * heap pages and appending a line to OUTFILE between them, so that the image
 * has a full epoch 0 and small incremental epochs after it.  Exits 0, also
 * when restarted from one of them.
 */
#include <checkpoint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HEAP_BYTES (1 << 20)

/* Restarted from epoch e, the program goes on from there. */
static int take(int epoch)
{
	int rc = checkpoint();

	if (rc == CKPT_RESTARTED)
		printf("restarted at epoch %d\n", epoch);
	else if (rc != CKPT_TAKEN) {
		fprintf(stderr, "inspect_subject: checkpoint %d failed: %s\n", epoch,
			ckpt_last_error());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int epochs = argc > 2 ? atoi(argv[2]) : 3;
	unsigned char *heap = malloc(HEAP_BYTES);
	int fd;

	if (argc < 2 || !heap) {
		fprintf(stderr, "usage: inspect_subject OUTFILE [EPOCHS]\n");
		return 2;
	}
	for (size_t i = 0; i < HEAP_BYTES; i++)
		heap[i] = (unsigned char)(i * 7 + 1);
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	for (int e = 0; e < epochs; e++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "before epoch %d\n", e);

		if (write(fd, line, n) != n) {
			perror("write");
			return 2;
		}
		/* a different handful of pages in each epoch */
		memset(heap + (size_t)e * 3 * 4096, 0xa0 + e, 2 * 4096);
		if (take(e))
			return 1;
	}
	close(fd);
	free(heap);
	return 0;
}

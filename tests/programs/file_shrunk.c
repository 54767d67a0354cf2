/*
 * file_shrunk.c - a private writable file mapping whose file shrinks after
 * it was mapped.  Its pages past the new end raise SIGBUS when touched; a
 * checkpoint must not touch them, and a restart must bring back the rest.
 * Run in a directory where it may create `mapped.bin`.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <checkpoint.h>

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
	char *p;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (ftruncate(fd, 3 * page) < 0)
		return 1;
	p = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return 1;
	strcpy(p, "first page, private copy");
	printf("epoch 0: %d\n", checkpoint());
	if (ftruncate(fd, page) < 0) /* pages 2 and 3 are now past the end */
		return 1;
	strcpy(p, "first page, changed");
	int r = checkpoint();
	printf("epoch 1: %s: %s\n", r == CKPT_RESTARTED ? "restarted" : r == CKPT_TAKEN ? "taken" : "failed", p);
	return 0;
}

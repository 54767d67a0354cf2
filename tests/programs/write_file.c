/*
 * write_file - the checkpointer tracks a file opened for writing (seed
 * test 7).
 *
 * Writes "before checkpoint\n" to write_file_1.txt, checkpoints and spins
 * 2 s of CPU time, then writes "after checkpoint\n".  Each line is echoed on
 * stdout.  The file is opened with O_TRUNC and without O_APPEND: the core
 * must force appends, and a restart must reopen it without truncating it
 * and cut it back to the checkpoint's offset, so it holds the two lines once.
 */
#include <fcntl.h>
#include <string.h>

#include "seed_common.h"

static void put(int fd, const char *line)
{
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		perror("write_file_1.txt");
		exit(1);
	}
	say("%s", line);
}

int main(void)
{
	int fd = open("write_file_1.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0) {
		perror("write_file_1.txt");
		return 1;
	}
	put(fd, "before checkpoint\n");
	take();
	delay(2000);
	put(fd, "after checkpoint\n");
	close(fd);
	return 0;
}

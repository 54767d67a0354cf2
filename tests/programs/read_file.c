/*
 * read_file - the checkpointer tracks a file opened for reading (seed test 6).
 *
 * Reads test_file_1.txt ("before checkpoint\nafter checkpoint\n") a line at
 * a time, byte by byte: prints the first line, checkpoints and spins 2 s of
 * CPU time, then prints the second.  A restart from the checkpoint must
 * reopen the file at the same descriptor and offset, so it prints only
 * "after checkpoint".
 */
#include <fcntl.h>

#include "seed_common.h"

int main(void)
{
	char line[256];
	int fd = open("test_file_1.txt", O_RDONLY);

	if (fd < 0) {
		perror("test_file_1.txt");
		return 1;
	}
	read_line(fd, line, sizeof(line));
	say("%s", line);
	take();
	delay(2000);
	read_line(fd, line, sizeof(line));
	say("%s", line);
	close(fd);
	return 0;
}

/*
 * multi_file - the checkpointer tracks a file being read and another being
 * written at the same time (seed test 8).
 *
 * Copies test_file_1.txt to write_file_2.txt a line at a time, echoing each
 * line on stdout, with a checkpoint and 2 s of CPU time between the lines.
 * A restart must restore both descriptors: the reader at its offset, the
 * writer cut back to its offset, so write_file_2.txt ends up equal to
 * test_file_1.txt.
 */
#include <fcntl.h>
#include <string.h>

#include "seed_common.h"

static void copy_line(int in, int out)
{
	char line[256];
	size_t n = read_line(in, line, sizeof(line));

	if (write(out, line, n) != (ssize_t)n) {
		perror("write_file_2.txt");
		exit(1);
	}
	say("%s", line);
}

int main(void)
{
	int in = open("test_file_1.txt", O_RDONLY);
	int out = open("write_file_2.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (in < 0 || out < 0) {
		perror("open");
		return 1;
	}
	copy_line(in, out);
	take();
	delay(2000);
	copy_line(in, out);
	close(in);
	close(out);
	return 0;
}

/*
 * rle - the checkpointer tracks a file being read and another being written
 * while a computation on their contents is half done (seed test 9).
 *
 * Run-length encodes data.txt into data.rle.  Format of data.rle: one line
 * per maximal run of equal bytes, "<count> <byte>\n", the count in decimal
 * and the byte as two lower-case hex digits; e.g. "aaab\n" encodes as
 * "3 61\n1 62\n1 0a\n".
 *
 * Input is read in 512-byte chunks into a malloc'd buffer; the run being
 * counted stays in memory until it ends.  After every 16 KiB of input it
 * prints "rle: block K", checkpoints (manual mode) and spins 300 ms of CPU
 * time; at the end it prints "rle: done, N runs".  A restart must bring
 * back the input offset, the buffer, the pending run and data.rle cut back
 * to what was written at the checkpoint, so data.rle equals an uninterrupted
 * run's.
 */
#include <fcntl.h>
#include <stdint.h>

#include "seed_common.h"

#define CHUNK 512
#define BLOCK (16 * 1024)

static int out;
static uint64_t runs;

static void put_run(uint64_t count, unsigned char byte)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%llu %02x\n", (unsigned long long)count, byte);

	if (write(out, line, n) != n) {
		perror("data.rle");
		exit(1);
	}
	runs++;
}

int main(void)
{
	unsigned char *buf = malloc(CHUNK);
	int in = open("data.txt", O_RDONLY);
	uint64_t count = 0, total = 0;
	int byte = -1, block = 0;
	ssize_t n;

	out = open("data.rle", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (!buf || in < 0 || out < 0) {
		perror("rle");
		return 1;
	}
	while ((n = read(in, buf, CHUNK)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == byte) {
				count++;
				continue;
			}
			if (count)
				put_run(count, (unsigned char)byte);
			byte = buf[i];
			count = 1;
		}
		total += n;
		if (total % BLOCK == 0) {
			say("rle: block %d\n", ++block);
			take();
			delay(300);
		}
	}
	if (n < 0) {
		perror("data.txt");
		return 1;
	}
	if (count)
		put_run(count, (unsigned char)byte);
	say("rle: done, %llu runs\n", (unsigned long long)runs);
	close(in);
	close(out);
	free(buf);
	return 0;
}

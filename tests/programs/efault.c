/*
 * efault - the kernel writes into memory that a checkpoint write-protected
 * (DESIGN §4 trap 1).
 *
 * A write by the kernel into a protected page does not fault: the system
 * call fails with EFAULT.  After a checkpoint this program hands the kernel
 * destinations untouched since then:
 *   read()  of efault_input.bin (made by the test) into a 2 MiB malloc'd
 *           buffer, and into a 96 KiB stack buffer below the stack pointer
 *           the checkpoint saw (pages an earlier deep call had mapped),
 *   stat()  into a malloc'd struct stat,
 *   recv()  from a socketpair into a malloc'd buffer,
 * and every call must succeed.  It prints what it got, then "taking the
 * second checkpoint", takes it, spins 1.5 s of CPU time (the test kills it
 * there and restarts it) and prints the buffers' checksums once more:
 * after a restart they must still hold what was read.
 * Checksums are 32-bit FNV-1a, printed in hex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "seed_common.h"

#define BIG (2 * 1024 * 1024)
#define ON_STACK (96 * 1024)

static uint32_t fnv(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void fail(const char *what)
{
	say("%s failed: %s\n", what, strerror(errno));
	exit(1);
}

/* Map the stack pages a deeper call will use later, before the checkpoint. */
static void __attribute__((noinline)) touch_deep_stack(void)
{
	volatile char deep[ON_STACK + 8192];

	memset((char *)deep, 1, sizeof(deep));
}

/* The stack buffer: never written by the program before read() fills it. */
static uint32_t __attribute__((noinline)) read_on_stack(void)
{
	char buf[ON_STACK];
	int fd = open("efault_input.bin", O_RDONLY);

	if (fd < 0)
		fail("open efault_input.bin");
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n != (ssize_t)sizeof(buf))
		fail("read into the stack");
	close(fd);
	return fnv((unsigned char *)buf, n);
}

int main(void)
{
	unsigned char *big = malloc(BIG);
	struct stat *st = malloc(sizeof(*st));
	char *msg = malloc(4096);
	static const char hello[] = "hello through a socketpair";
	int sv[2];

	if (!big || !st || !msg)
		return 1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		fail("socketpair");
	if (write(sv[0], hello, sizeof(hello)) != sizeof(hello))
		fail("write to the socketpair");
	touch_deep_stack();
	take();		/* everything above is write-protected now */

	int fd = open("efault_input.bin", O_RDONLY);
	if (fd < 0)
		fail("open efault_input.bin");
	ssize_t n = read(fd, big, BIG);
	if (n < 0)
		fail("read into the heap");
	close(fd);
	say("read %zd bytes into the heap, fnv %08x\n", n, fnv(big, n));
	say("read %d bytes into the stack, fnv %08x\n", ON_STACK, read_on_stack());
	if (stat("efault_input.bin", st))
		fail("stat");
	say("stat size %lld\n", (long long)st->st_size);
	ssize_t m = recv(sv[1], msg, 4096, 0);
	if (m < 0)
		fail("recv");
	say("recv %zd bytes: %s\n", m, msg);
	close(sv[0]);
	close(sv[1]);

	say("taking the second checkpoint\n");
	take();
	delay(1500);
	say("after: heap fnv %08x, stat size %lld, message %s\n", fnv(big, n),
	    (long long)st->st_size, msg);
	return 0;
}

/*
 * counter.c - a long computation that survives SIGKILL.
 *
 * Counts primes below 12,000,000 by trial division, printing progress.  Run it
 * under the core with a period and kill it: the restart resumes the count
 * where the last checkpoint left it.  (demo.sh does exactly that.)
 */
#include <stdio.h>

static int is_prime(long n)
{
	if (n < 2)
		return 0;
	for (long d = 2; d * d <= n; d++)
		if (n % d == 0)
			return 0;
	return 1;
}

int main(void)
{
	long count = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("counting primes below 12000000\n");
	for (long n = 0; n < 12000000; n++) {
		count += is_prime(n);
		if (n % 1500000 == 0 && n)
			printf("  %ld numbers checked, %ld primes so far\n", n, count);
	}
	printf("primes below 12000000: %ld\n", count);
	return 0;
}

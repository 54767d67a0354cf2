/*
 * test_ranges.c - unit tests of the seed's range lists (ranges.c) on their own.
 *
 * Built and run by tests/test_native_units.py:
 *   gcc -Inative native/tests/test_ranges.c native/ranges.c native/palloc.c
 * Each check prints "ok - what" or "not ok - what"; the exit status is the
 * number of failures.  The last test replays thousands of random inserts and
 * removals against a page bitmap and checks the invariants after each one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "palloc.h"
#include "ranges.h"

static int failures;

#define CHECK(cond, what)                                                      \
	do {                                                                   \
		if (cond)                                                      \
			printf("ok - %s\n", what);                             \
		else {                                                         \
			printf("not ok - %s (line %d)\n", what, __LINE__);    \
			failures++;                                            \
		}                                                              \
	} while (0)

/* The list as "start-end,start-end" in pages, for exact comparisons. */
static const char *show(struct range_list *l)
{
	static char buf[4096];
	int n = 0;

	buf[0] = 0;
	for (; l; l = l->next)
		n += snprintf(buf + n, sizeof(buf) - n, "%s%lx-%lx%s", n ? "," : "",
			      (unsigned long)l->range.start, (unsigned long)l->range.end,
			      l->range.write_protect ? "" : "u");
	return buf;
}

static int same(struct range_list *l, const char *want)
{
	const char *got = show(l);
	int eq = 0;
	for (int i = 0;; i++) {
		if (got[i] != want[i])
			break;
		if (!got[i]) {
			eq = 1;
			break;
		}
	}
	if (!eq)
		printf("# got %s, want %s\n", got, want);
	return eq;
}

static void test_insert(void)
{
	struct range_list *l = NULL;

	range_list_insert(&l, 0x3000, 0x4000, true);
	range_list_insert(&l, 0x1000, 0x2000, true);
	CHECK(same(l, "1000-2000,3000-4000"), "insert keeps the list sorted");
	range_list_insert(&l, 0x2000, 0x3000, true);
	CHECK(same(l, "1000-4000"), "inserting the gap coalesces three into one");
	range_list_insert(&l, 0x0, 0x1000, true);
	range_list_insert(&l, 0x4000, 0x5000, true);
	CHECK(same(l, "0-5000"), "touching neighbours on both ends coalesce");
	range_list_insert(&l, 0x2000, 0x3000, true);
	CHECK(same(l, "0-5000"), "inserting a covered range changes nothing");
	range_list_insert(&l, 0x8000, 0x9000, true);
	range_list_insert(&l, 0xa000, 0xb000, true);
	range_list_insert(&l, 0x4800, 0xa800, true);
	CHECK(same(l, "0-b000"), "an overlapping insert swallows several ranges");
	range_list_insert(&l, 0x10000, 0x11000, false);
	range_list_insert(&l, 0xb000, 0x10000, true);
	CHECK(same(l, "0-10000,10000-11000u"), "ranges with different flags do not merge");
	range_list_insert(&l, 0x5000, 0x6000, false);
	CHECK(same(l, "0-5000,5000-6000u,6000-10000,10000-11000u"),
	      "a flag change inside a range splits it");
	range_list_free(&l);
	CHECK(l == NULL, "free empties the list");
}

static void test_remove(void)
{
	struct range_list *l = NULL;

	range_list_insert(&l, 0x1000, 0x9000, true);
	range_list_remove(&l, 0x3000, 0x4000);
	CHECK(same(l, "1000-3000,4000-9000"), "removing the middle splits a range");
	range_list_remove(&l, 0x1000, 0x2000);
	CHECK(same(l, "2000-3000,4000-9000"), "removing a head trims it");
	range_list_remove(&l, 0x8000, 0xa000);
	CHECK(same(l, "2000-3000,4000-8000"), "removing past the end trims the tail");
	range_list_remove(&l, 0x2800, 0x5000);
	CHECK(same(l, "2000-2800,5000-8000"), "a removal spanning two ranges trims both");
	range_list_remove(&l, 0x0, 0x10000);
	CHECK(same(l, ""), "removing everything empties the list");
	range_list_remove(&l, 0x0, 0x1000);
	CHECK(same(l, ""), "removing from an empty list is harmless");
}

static void test_queries(void)
{
	struct range_list *l = NULL, *m = NULL;

	range_list_insert(&l, 0x1000, 0x3000, true);
	range_list_insert(&l, 0x3000, 0x4000, false);
	range_list_insert(&l, 0x6000, 0x7000, true);
	CHECK(range_list_find(l, 0x2fff) && range_list_find(l, 0x2fff)->range.start == 0x1000,
	      "find returns the range holding an address");
	CHECK(!range_list_find(l, 0x5000) && !range_list_find(l, 0x7000),
	      "find returns NULL in a gap and at an end address");
	CHECK(range_list_covers(l, 0x1000, 0x4000), "covers spans adjacent ranges");
	CHECK(!range_list_covers(l, 0x1000, 0x6800), "covers sees a gap");
	CHECK(range_list_count(l) == 3 && range_list_bytes(l) == 0x4000, "count and bytes");
	range_list_insert(&m, 0x1800, 0x2000, true);
	range_list_insert(&m, 0x6000, 0x7000, true);
	CHECK(range_list_covers_all(l, m), "covers_all: every range of the other list");
	range_list_insert(&m, 0x5000, 0x5001, true);
	CHECK(!range_list_covers_all(l, m), "covers_all fails on one uncovered range");
	range_list_free(&l);
	range_list_free(&m);
}

/* Random operations against a bitmap of 256 pages. */
static void test_random(void)
{
	enum { PAGES = 256, OPS = 20000, PG = 0x1000 };
	unsigned char model[PAGES] = { 0 };
	struct range_list *l = NULL;
	int bad = 0;

	srand(1);
	for (int op = 0; op < OPS && !bad; op++) {
		int a = rand() % PAGES, b = a + 1 + rand() % 16;
		if (b > PAGES)
			b = PAGES;
		bool ins = rand() % 3 != 0;
		if (ins)
			range_list_insert(&l, (uintptr_t)a * PG, (uintptr_t)b * PG, true);
		else
			range_list_remove(&l, (uintptr_t)a * PG, (uintptr_t)b * PG);
		for (int p = a; p < b; p++)
			model[p] = ins;
		/* invariants: sorted, non-empty, not overlapping, not touching */
		uintptr_t prev_end = 0;
		struct range_list *prev = NULL;
		for (struct range_list *n = l; n; prev = n, n = n->next) {
			if (n->range.start >= n->range.end || n->prev != prev ||
			    (prev && n->range.start <= prev_end))
				bad = 1;
			prev_end = n->range.end;
		}
		for (int p = 0; p < PAGES; p++)
			if ((range_list_find(l, (uintptr_t)p * PG + 7) != NULL) != model[p])
				bad = 1;
	}
	CHECK(!bad, "20000 random inserts and removals match a page bitmap; the list "
		    "stays sorted, coalesced and linked both ways");
	range_list_free(&l);
}

int main(void)
{
	if (palloc_init() < 0) {
		printf("not ok - cannot map the private heap\n");
		return 1;
	}
	test_insert();
	test_remove();
	test_queries();
	test_random();
	printf("%d failures\n", failures);
	return failures;
}

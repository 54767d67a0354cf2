/*
 * ranges.h - sorted, non-overlapping lists of page ranges (the seed's type).
 *
 * Every list is kept sorted by start address with no two ranges overlapping.
 * Inserting coalesces with neighbours that touch or overlap and carry the
 * same write_protect flag; removing splits ranges that straddle the hole.
 * Ranges inserted and removed need not match ranges already in the list.
 * Nodes come from the private allocator; callers block signals around
 * changes to lists a signal handler reads.
 */
#ifndef IPYCKPT_RANGES_H
#define IPYCKPT_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct range {
	uintptr_t start;
	uintptr_t end;
	uint32_t crc32;
	bool write_protect;
};

struct range_list {
	struct range range;
	struct range_list *prev;
	struct range_list *next;
};

/* Add [start, end) with the given flag; 0, or -1 when out of private memory. */
int range_list_insert(struct range_list **head, uintptr_t start, uintptr_t end,
		      bool write_protect);
/* Remove [start, end) wherever it overlaps; 0, or -1 when out of memory. */
int range_list_remove(struct range_list **head, uintptr_t start, uintptr_t end);
/* The range holding addr, or NULL. */
struct range_list *range_list_find(struct range_list *head, uintptr_t addr);
/* True if every byte of [start, end) is in the list. */
bool range_list_covers(struct range_list *head, uintptr_t start, uintptr_t end);
/* True if every range of other is covered by head. */
bool range_list_covers_all(struct range_list *head, struct range_list *other);
size_t range_list_count(struct range_list *head);
uint64_t range_list_bytes(struct range_list *head);
void range_list_free(struct range_list **head);

#endif

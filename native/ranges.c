/*
 * ranges.c - sorted range lists: insert with coalescing, remove with splitting.
 */
#include "ranges.h"

#include "palloc.h"

static struct range_list *node_new(uintptr_t start, uintptr_t end, bool wp)
{
	struct range_list *n = palloc(sizeof(*n));

	if (!n)
		return NULL;
	n->range.start = start;
	n->range.end = end;
	n->range.crc32 = 0;
	n->range.write_protect = wp;
	n->prev = n->next = NULL;
	return n;
}

static void unlink_node(struct range_list **head, struct range_list *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		*head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	pfree(n);
}

int range_list_remove(struct range_list **head, uintptr_t start, uintptr_t end)
{
	struct range_list *n = *head, *next;

	if (start >= end)
		return 0;
	for (; n && n->range.start < end; n = next) {
		next = n->next;
		if (n->range.end <= start)
			continue;
		if (n->range.start < start && n->range.end > end) {
			/* The hole is inside n: split it in two. */
			struct range_list *tail = node_new(end, n->range.end, n->range.write_protect);
			if (!tail)
				return -1;
			n->range.end = start;
			tail->prev = n;
			tail->next = n->next;
			if (n->next)
				n->next->prev = tail;
			n->next = tail;
			return 0;
		}
		if (n->range.start < start)
			n->range.end = start;
		else if (n->range.end > end)
			n->range.start = end;
		else
			unlink_node(head, n);
	}
	return 0;
}

int range_list_insert(struct range_list **head, uintptr_t start, uintptr_t end,
		      bool wp)
{
	struct range_list *n, *prev = NULL, *fresh;

	if (start >= end)
		return 0;
	/* Clearing the span first keeps the no-overlap invariant simple even
	   when the flag differs from what is there. */
	if (range_list_remove(head, start, end))
		return -1;
	for (n = *head; n && n->range.start < start; n = n->next)
		prev = n;
	/* Grow a touching neighbour with the same flag instead of a new node. */
	if (prev && prev->range.end == start && prev->range.write_protect == wp) {
		prev->range.end = end;
		fresh = prev;
	} else {
		fresh = node_new(start, end, wp);
		if (!fresh)
			return -1;
		fresh->prev = prev;
		fresh->next = n;
		if (prev)
			prev->next = fresh;
		else
			*head = fresh;
		if (n)
			n->prev = fresh;
	}
	n = fresh->next;
	if (n && n->range.start == fresh->range.end && n->range.write_protect == wp) {
		fresh->range.end = n->range.end;
		unlink_node(head, n);
	}
	return 0;
}

struct range_list *range_list_find(struct range_list *head, uintptr_t addr)
{
	for (; head && head->range.start <= addr; head = head->next)
		if (addr < head->range.end)
			return head;
	return NULL;
}

bool range_list_covers(struct range_list *head, uintptr_t start, uintptr_t end)
{
	for (; head && start < end; head = head->next) {
		if (head->range.end <= start)
			continue;
		if (head->range.start > start)
			return false;
		start = head->range.end;
	}
	return start >= end;
}

bool range_list_covers_all(struct range_list *head, struct range_list *other)
{
	for (; other; other = other->next)
		if (!range_list_covers(head, other->range.start, other->range.end))
			return false;
	return true;
}

size_t range_list_count(struct range_list *head)
{
	size_t n = 0;
	for (; head; head = head->next)
		n++;
	return n;
}

uint64_t range_list_bytes(struct range_list *head)
{
	uint64_t b = 0;
	for (; head; head = head->next)
		b += head->range.end - head->range.start;
	return b;
}

void range_list_free(struct range_list **head)
{
	struct range_list *n = *head, *next;

	for (; n; n = next) {
		next = n->next;
		pfree(n);
	}
	*head = NULL;
}

/*
 * crc_cache.h - CRC-32 of writable ranges without rereading clean pages.
 *
 * The .map holds the CRC of every writable range, and a range is as large as
 * a 1 GiB array.  Rereading all of it at every checkpoint would make the cost
 * of an epoch grow with the size of the process.  Instead the CRC of each page
 * is kept from the checkpoint that last saved it (a page not saved since has
 * not changed: it is write-protected), and a range's CRC is combined from its
 * pages' with zlib's crc32_combine_op, a few dozen operations a page.
 * Pristine anonymous pages get the CRC of a zero page without being read:
 * reading them would map the zero page and make them look touched.
 */
#ifndef IPYCKPT_CRC_CACHE_H
#define IPYCKPT_CRC_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* Resolve zlib's lazily bound internals now; 0, or -1 when out of memory. */
int crc_cache_init(long page_size);
/* The page at addr was just saved: remember the CRC of its content. */
void crc_cache_note_page(uintptr_t addr);
/* The page at addr is pristine anonymous memory: its CRC is a zero page's. */
void crc_cache_note_zero(uintptr_t addr);
/* CRC-32 of [start, end), from cached page CRCs where there are any. */
uint32_t crc_cache_range(uintptr_t start, uintptr_t end);

#endif

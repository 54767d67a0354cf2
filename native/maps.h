/*
 * maps.h - reading /proc/self/maps without libc.
 */
#ifndef IPYCKPT_MAPS_H
#define IPYCKPT_MAPS_H

#include <stdbool.h>
#include <stdint.h>

enum vma_special {
	VMA_PLAIN = 0,
	VMA_HEAP,	/* [heap] */
	VMA_STACK,	/* [stack] */
	VMA_KERNEL,	/* [vdso], [vvar], [vsyscall], [uprobes]: never saved */
	VMA_PRIVATE,	/* the checkpointer's own region: never saved */
	VMA_ALTSTACK,	/* the alternate signal stack: saved, never protected */
};

struct vma {
	uintptr_t start;
	uintptr_t end;
	uint64_t offset;
	uint64_t dev;		/* makedev(major, minor) as /proc prints it */
	uint64_t ino;
	int prot;		/* PROT_READ | PROT_WRITE | PROT_EXEC */
	bool shared;
	enum vma_special special;
	char *path;		/* file path or [name], palloc'd; NULL if none */
};

struct vma_table {
	struct vma *v;
	int n;
	int cap;
};

/* Read the current mappings; 0, or -errno.  Free with vma_table_free. */
int maps_read(struct vma_table *t);
void vma_table_free(struct vma_table *t);
/* The index of the mapping holding addr, or -1. */
int vma_find(const struct vma_table *t, uintptr_t addr);

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * Wrappers for static inlines and macros that the Rust bindings lack. Each is a
 * single call with no logic of its own; see shim.h.
 */
#include "shim.h"

void rust_irqfd_init_waitqueue_func_entry(struct wait_queue_entry *wq_entry,
					  wait_queue_func_t func)
{
	init_waitqueue_func_entry(wq_entry, func);
}

void rust_irqfd_init_poll_funcptr(poll_table *pt, poll_queue_proc qproc)
{
	init_poll_funcptr(pt, qproc);
}

__poll_t rust_irqfd_vfs_poll(struct file *file, poll_table *pt)
{
	return vfs_poll(file, pt);
}

struct workqueue_struct *rust_irqfd_alloc_ordered_workqueue(const char *name)
{
	return alloc_ordered_workqueue("%s", 0, name);
}

void rust_irqfd_seqcount_spinlock_init(seqcount_spinlock_t *s,
				       spinlock_t *lock)
{
	seqcount_spinlock_init(s, lock);
}

unsigned int rust_irqfd_read_seqcount_begin(seqcount_spinlock_t *s)
{
	return read_seqcount_begin(s);
}

bool rust_irqfd_read_seqcount_retry(seqcount_spinlock_t *s, unsigned int start)
{
	return read_seqcount_retry(s, start);
}

void rust_irqfd_write_seqcount_begin(seqcount_spinlock_t *s)
{
	write_seqcount_begin(s);
}

void rust_irqfd_write_seqcount_end(seqcount_spinlock_t *s)
{
	write_seqcount_end(s);
}

unsigned long rust_irqfd_array_index_nospec(unsigned long index,
					    unsigned long size)
{
	return array_index_nospec(index, size);
}

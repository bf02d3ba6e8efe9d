// SPDX-License-Identifier: GPL-2.0
/*
 * Wrappers for static inlines and macros that the Rust bindings lack. Each is a
 * single call with no logic of its own, but for 7.2's misc registration (see
 * there); see shim.h.
 */
#include <linux/bitops.h>
#include <linux/fs.h>
#include <linux/lockdep.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

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

#ifdef KERNEL_BEFORE_7_3 /* rust_irqfd/Kbuild, as the Rust cfg */
unsigned long rust_irqfd_spin_lock_irqsave(spinlock_t *lock)
{
	unsigned long flags;

	spin_lock_irqsave(lock, flags);
	return flags;
}

bool rust_irqfd_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags)
{
	unsigned long f;

	if (!spin_trylock_irqsave(lock, f))
		return false;
	*flags = f;
	return true;
}

void rust_irqfd_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags)
{
	spin_unlock_irqrestore(lock, flags);
}

void rust_irqfd_lockdep_assert_irqs_disabled(void)
{
	lockdep_assert_irqs_disabled();
}

/*
 * 7.2's Rust misc device leaves .owner NULL, so an open file would not pin the
 * module. One copy of the operations, with the owner set, for the one device
 * the module registers: open files point at it, so it is written once in the
 * module's life, and a second registration is refused.
 */
static struct file_operations rust_irqfd_fops;
static unsigned long rust_irqfd_fops_taken;

int rust_irqfd_misc_register(struct miscdevice *misc)
{
	if (test_and_set_bit(0, &rust_irqfd_fops_taken))
		return -EBUSY;
	rust_irqfd_fops = *misc->fops;
	rust_irqfd_fops.owner = THIS_MODULE;
	misc->fops = &rust_irqfd_fops;
	return misc_register(misc);
}

/* 7.2's module! has no bool parameters. */
static bool deferred_only;
module_param(deferred_only, bool, 0);
MODULE_PARM_DESC(deferred_only,
		 "Always inject through the work item, never from the wakeup");

bool rust_irqfd_deferred_only(void)
{
	return READ_ONCE(deferred_only);
}
#endif

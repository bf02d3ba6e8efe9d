/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One-line wrappers for static inlines and macros that bindgen cannot see.
 * The Rust side declares the same prototypes in ffi.rs; keep both in sync.
 */
#ifndef RUST_IRQFD_SHIM_H
#define RUST_IRQFD_SHIM_H

#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/seqlock.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

void rust_irqfd_init_waitqueue_func_entry(struct wait_queue_entry *wq_entry,
					  wait_queue_func_t func);
void rust_irqfd_init_poll_funcptr(poll_table *pt, poll_queue_proc qproc);
__poll_t rust_irqfd_vfs_poll(struct file *file, poll_table *pt);
struct workqueue_struct *rust_irqfd_alloc_ordered_workqueue(const char *name);
unsigned long rust_irqfd_array_index_nospec(unsigned long index,
					    unsigned long size);

/*
 * seqcount_spinlock_t, for route.rs through seqcount.rs. The init macro gives
 * every seqcount initialised here one lockdep class (its static key is this
 * call site's); write_seqcount_begin() asserts that @s's lock is held.
 */
void rust_irqfd_seqcount_spinlock_init(seqcount_spinlock_t *s,
				       spinlock_t *lock);
unsigned int rust_irqfd_read_seqcount_begin(seqcount_spinlock_t *s);
bool rust_irqfd_read_seqcount_retry(seqcount_spinlock_t *s, unsigned int start);
void rust_irqfd_write_seqcount_begin(seqcount_spinlock_t *s);
void rust_irqfd_write_seqcount_end(seqcount_spinlock_t *s);

/*
 * What a tree before 7.3 lacks (compat.rs): an IRQ-safe spinlock, the
 * interrupts-off assertion, misc file operations that pin the module, and
 * bool module parameters of module!.
 */
#ifdef KERNEL_BEFORE_7_3 /* rust_irqfd/Kbuild, as the Rust cfg */
struct miscdevice;
unsigned long rust_irqfd_spin_lock_irqsave(spinlock_t *lock);
bool rust_irqfd_spin_trylock_irqsave(spinlock_t *lock, unsigned long *flags);
void rust_irqfd_spin_unlock_irqrestore(spinlock_t *lock, unsigned long flags);
void rust_irqfd_lockdep_assert_irqs_disabled(void);
int rust_irqfd_misc_register(struct miscdevice *misc);
bool rust_irqfd_deferred_only(void);
#endif

/* test_hooks.c, in TEST_HOOKS=1 builds only. */
unsigned int rust_irqfd_test_inject_delay_us(void);
void rust_irqfd_test_route_delay(void);
unsigned int rust_irqfd_test_shutdown_delay_us(void);

#endif /* RUST_IRQFD_SHIM_H */

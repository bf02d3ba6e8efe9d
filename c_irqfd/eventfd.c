// SPDX-License-Identifier: GPL-2.0
/*
 * c_irqfd: the C reference of rust_irqfd.
 *
 * Binds an eventfd to a line (GSI) of a small virtual interrupt controller
 * (irqchip.c) so that signalling the eventfd injects an interrupt without
 * going through userspace. The irqfd part follows the design of
 * virt/kvm/eventfd.c: a priority, exclusive wait-queue entry on the eventfd,
 * an "active" state that is simply membership of the context's irqfds (an
 * rbtree keyed by eventfd, where KVM has a list), deferred shutdown on the
 * context's own ordered workqueue, and deassign/release that flush that
 * workqueue.
 *
 * Each open of /dev/c_irqfd is a context (the stand-in for a VM). See
 * Documentation/rust_irqfd.rst for the ABI and its semantics.
 *
 * ABI version 2 adds what KVM layers on top of that:
 *  - GSI routing, in place: the context keeps the table, and each irqfd a
 *    copy of its GSI's route under a seqcount (irq_entry and irq_entry_sc in
 *    KVM), rewritten by every route update, so that the wakeup reads the
 *    route without a lock of its own;
 *  - MSI-X style masking: an injection into a masked GSI sets its pending
 *    latch, and unmasking raises what the latch holds;
 *  - level-triggered resampling (KVM_IRQFD_FLAG_RESAMPLE): the irqfds of a
 *    GSI that have a resamplefd share a resampler, which RUST_IRQFD_ACK (the
 *    guest's EOI) walks under SRCU to signal their resamplefds.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bits.h>
#include <linux/delay.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/lockdep.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/rbtree.h>
#include <linux/rculist.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/seqlock.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include <linux/rust_irqfd.h>

#include "irqchip.h"

#define C_IRQFD_MAX_GSIS	65536U
#define C_IRQFD_MAX_IRQFDS	BIT(20)

/* Records popped under the irqchip lock per round trip to userspace. */
#define C_IRQFD_READ_BATCH	16

/*
 * Irqfds handled per hold of irqfds.lock by the loops that may walk up to
 * max_irqfds of them (release, a deassign batch, a route update): the lock
 * keeps interrupts off, and those sections must not grow with the number of
 * irqfds.
 */
#define C_IRQFD_LOCK_BATCH	32

static unsigned int nr_gsis = 1024;
module_param(nr_gsis, uint, 0444);
MODULE_PARM_DESC(nr_gsis, "Lines of each context's interrupt controller (1..65536)");

static unsigned int max_irqfds = 65536;
module_param(max_irqfds, uint, 0444);
MODULE_PARM_DESC(max_irqfds, "Most irqfds one context may hold (1..1048576); ENOSPC past it");

static bool deferred_only;
module_param(deferred_only, bool, 0444);
MODULE_PARM_DESC(deferred_only, "Always inject from the work item, never from the wakeup");

/* One open of the device: the stand-in for a struct kvm. */
struct c_irqfd_ctx {
	struct {
		/*
		 * Protects @tree, @by_gsi and @nr_active, and is the write side
		 * of the route each irqfd caches (see irqfd_update_route()).
		 * Taken in the EPOLLHUP path of the wakeup, under the eventfd's
		 * wait-queue lock and with interrupts off, so it must be
		 * IRQ-safe.
		 */
		spinlock_t lock;
		struct rb_root tree;	/* active irqfds, keyed by eventfd */
		/*
		 * The same irqfds by GSI (nr_gsis lists, by gsi_link): a route
		 * update rewrites the copies of its GSI's irqfds only.
		 */
		struct hlist_head *by_gsi;
		u32 nr_active;
		/*
		 * Finds or creates a GSI's resampler and serialises joining
		 * and leaving it. Readers (RUST_IRQFD_ACK) walk
		 * @resampler_list and the resamplers' lists under irq_srcu
		 * instead, so leaving waits for a grace period.
		 */
		struct mutex resampler_lock;
		struct list_head resampler_list;
	} irqfds;
	/*
	 * The authoritative route of each GSI. Serialises route updates with
	 * each other and with masking; @routes is written with irqfds.lock
	 * held as well, so that registering an irqfd, which holds only that,
	 * can read it.
	 */
	struct mutex route_lock;
	struct c_irqfd_route *routes;
	/*
	 * This context's own ordered queue for the deferred shutdowns of its
	 * irqfds: deassign and release wait for the shutdowns queued before
	 * them (including those queued by EPOLLHUP) with a single flush, and
	 * never for another context's.
	 */
	struct workqueue_struct *cleanup_wq;
	/*
	 * Keeps an irqfd alive until assign has finished with it, and the
	 * resamplers, their irqfds and their resamplefds alive for an ACK
	 * walking them.
	 */
	struct srcu_struct irq_srcu;
	struct c_irqfd_irqchip irqchip;
	/* Shutdowns completed, for RUST_IRQFD_GET_INFO. */
	atomic64_t shutdowns;
};

/* Per-irqfd counters, shown in fdinfo; each is exact, a set is not atomic. */
struct c_irqfd_stats {
	atomic64_t signals;	/* EPOLLIN wakeups handled */
	atomic64_t fast;	/* injections made from the wakeup */
	atomic64_t deferred;	/* injections made by the work item */
	atomic64_t coalesced;	/* injections merged into a pending record
				 * or into an asserted line
				 */
	atomic64_t masked;	/* injections held by a mask latch */
};

/*
 * The resample irqfds of one GSI (kvm_kernel_irqfd_resampler): they share the
 * level of the line, and an ACK signals all of them.
 */
struct c_irqfd_resampler {
	u32 gsi;
	/*
	 * The irqfds, by their resampler_link: added and removed under
	 * resampler_lock (RCU list operations), walked under irq_srcu.
	 */
	struct list_head list;
	/* In ctx->irqfds.resampler_list, with the same rules. */
	struct list_head link;
};

/* The kernel side of one binding eventfd -> GSI (kvm_kernel_irqfd). */
struct c_irqfd {
	struct c_irqfd_ctx *ctx;
	wait_queue_entry_t wait;
	u32 gsi;
	u32 fd;			/* descriptor number given at assign (fdinfo) */
	/*
	 * The route of @gsi, as the wakeup reads it: written under
	 * ctx->irqfds.lock inside a @route_sc write section, read locklessly.
	 */
	struct c_irqfd_route route;
	seqcount_spinlock_t route_sc;
	struct c_irqfd_stats stats;
	/* In ctx->irqfds.tree while active; cleared once deactivated. */
	struct rb_node node;
	/* In ctx->irqfds.by_gsi[gsi] while active, as @node. */
	struct hlist_node gsi_link;
	struct work_struct inject;
	struct work_struct shutdown;
	struct eventfd_ctx *eventfd;
	/* Resample (level) irqfds only; set before registration, then fixed. */
	struct c_irqfd_resampler *resampler;
	struct eventfd_ctx *resamplefd;
	struct list_head resampler_link;
};

/* --- irqfd --- */

#ifdef IRQFD_TEST_HOOKS
/* Test hook (TEST_HOOKS=1 builds only): widen the queue-to-inject window. */
static unsigned int test_inject_delay_us;
module_param(test_inject_delay_us, uint, 0644);
MODULE_PARM_DESC(test_inject_delay_us,
		 "Test hook: sleep this many microseconds before each deferred injection");

static void test_inject_delay(void)
{
	unsigned int us = READ_ONCE(test_inject_delay_us);

	if (us)
		fsleep(us);
}

/*
 * Test hook (TEST_HOOKS=1 builds only): widen the window in which a route
 * update has written half of an irqfd's copy of the route (race R21).
 */
static unsigned int test_route_delay_us;
module_param(test_route_delay_us, uint, 0644);
MODULE_PARM_DESC(test_route_delay_us,
		 "Test hook: spin this many microseconds in the middle of writing each irqfd's copy of a route");

static void test_route_delay(void)
{
	unsigned int us = READ_ONCE(test_route_delay_us);

	if (us)
		udelay(us);
}

/*
 * Test hook (TEST_HOOKS=1 builds only): widen the window in which a shutdown
 * has deactivated the irqfd but not yet unhooked it from its eventfd, where a
 * signal still runs the wakeup of an irqfd that gets no route updates (race
 * R21b).
 */
static unsigned int test_shutdown_delay_us;
module_param(test_shutdown_delay_us, uint, 0644);
MODULE_PARM_DESC(test_shutdown_delay_us,
		 "Test hook: sleep this many microseconds in each shutdown, between deactivation and the removal of the wait entry");

static void test_shutdown_delay(void)
{
	unsigned int us = READ_ONCE(test_shutdown_delay_us);

	if (us)
		fsleep(us);
}

/*
 * Test hook (TEST_HOOKS=1 builds only): widen the window in which an ACK walks
 * a resampler while one of its irqfds leaves it (race R20).
 */
static unsigned int test_ack_delay_us;
module_param(test_ack_delay_us, uint, 0644);
MODULE_PARM_DESC(test_ack_delay_us,
		 "Test hook: sleep this many microseconds before an ACK signals each resamplefd");

static void test_ack_delay(void)
{
	unsigned int us = READ_ONCE(test_ack_delay_us);

	if (us)
		fsleep(us);
}
#else
static inline void test_inject_delay(void) { }
static inline void test_route_delay(void) { }
static inline void test_shutdown_delay(void) { }
static inline void test_ack_delay(void) { }
#endif

/*
 * Copy @route into the irqfd's own copy, which the wakeup reads without any
 * lock of ours (it cannot take irqfds.lock, see irqfd_wakeup()). The seqcount
 * lets it read the route whole: a reader that overlapped this write section
 * retries. The writers are serialised by irqfds.lock, which the seqcount is
 * tied to (lockdep checks it) and which also keeps interrupts off, so no
 * reader can spin on this CPU while we are in the middle.
 */
static void irqfd_update_route(struct c_irqfd *irqfd,
			       const struct c_irqfd_route *route)
{
	lockdep_assert_held(&irqfd->ctx->irqfds.lock);

	write_seqcount_begin(&irqfd->route_sc);
	irqfd->route.flags = route->flags;
	irqfd->route.msi_addr = route->msi_addr;
	test_route_delay();
	irqfd->route.msi_data = route->msi_data;
	write_seqcount_end(&irqfd->route_sc);
}

/* The irqfd's copy of its route, whole. Any context, lock-free. */
static void irqfd_read_route(struct c_irqfd *irqfd, struct c_irqfd_route *route)
{
	unsigned int seq;

	do {
		seq = read_seqcount_begin(&irqfd->route_sc);
		*route = irqfd->route;
	} while (read_seqcount_retry(&irqfd->route_sc, seq));
}

/* Inject for @irqfd with @route and count it under @path. */
static void irqfd_set_irq(struct c_irqfd *irqfd,
			  const struct c_irqfd_route *route, atomic64_t *path)
{
	atomic64_inc(path);

	switch (c_irqchip_set_irq(&irqfd->ctx->irqchip, irqfd->gsi, route,
				  !!irqfd->resampler)) {
	case C_IRQFD_COALESCED:
		atomic64_inc(&irqfd->stats.coalesced);
		break;
	case C_IRQFD_LATCHED:
		atomic64_inc(&irqfd->stats.masked);
		break;
	case C_IRQFD_RAISED:
		break;
	}
}

/*
 * Deferred injection, on the system workqueue. Like KVM's, which goes
 * through kvm_set_irq() and thus the current routing table, it reads the
 * context's table rather than the irqfd's copy: it also runs for an irqfd
 * that has been deactivated, and such an irqfd, out of the tree, no longer
 * gets route updates.
 */
static void irqfd_inject(struct work_struct *work)
{
	struct c_irqfd *irqfd = container_of(work, struct c_irqfd, inject);
	struct c_irqfd_ctx *ctx = irqfd->ctx;
	struct c_irqfd_route route;

	test_inject_delay();

	mutex_lock(&ctx->route_lock);
	route = ctx->routes[irqfd->gsi];
	mutex_unlock(&ctx->route_lock);

	irqfd_set_irq(irqfd, &route, &irqfd->stats.deferred);
}

/*
 * Join the resampler of the irqfd's GSI, creating it if it is the first
 * resample irqfd there. Done before the irqfd is registered with its eventfd,
 * so that the line can never be asserted by an irqfd an ACK would not find.
 *
 * Unlike KVM, which must also wait here for its ack notifier list, no grace
 * period is needed: an ACK that misses us has deasserted the line before we
 * could possibly assert it, since we can only inject once registered.
 */
static int irqfd_resampler_join(struct c_irqfd *irqfd)
{
	struct c_irqfd_ctx *ctx = irqfd->ctx;
	struct c_irqfd_resampler *resampler;
	int ret = 0;

	mutex_lock(&ctx->irqfds.resampler_lock);

	list_for_each_entry(resampler, &ctx->irqfds.resampler_list, link) {
		if (resampler->gsi == irqfd->gsi) {
			irqfd->resampler = resampler;
			break;
		}
	}

	if (!irqfd->resampler) {
		resampler = kzalloc_obj(*resampler, GFP_KERNEL_ACCOUNT);
		if (!resampler) {
			ret = -ENOMEM;
			goto out;
		}

		resampler->gsi = irqfd->gsi;
		INIT_LIST_HEAD(&resampler->list);
		list_add_rcu(&resampler->link, &ctx->irqfds.resampler_list);
		irqfd->resampler = resampler;
	}

	list_add_rcu(&irqfd->resampler_link, &irqfd->resampler->list);

out:
	mutex_unlock(&ctx->irqfds.resampler_lock);
	return ret;
}

/*
 * Leave the resampler. An ACK may be walking its list right now, about to
 * signal our resamplefd: wait for such ACKs (a grace period of irq_srcu)
 * before returning, so that the caller can put the resamplefd. The last
 * irqfd to leave frees the resampler and deasserts the line, which no ACK
 * would signal anybody for any more.
 */
static void irqfd_resampler_shutdown(struct c_irqfd *irqfd)
{
	struct c_irqfd_resampler *resampler = irqfd->resampler;
	struct c_irqfd_ctx *ctx = irqfd->ctx;

	mutex_lock(&ctx->irqfds.resampler_lock);

	list_del_rcu(&irqfd->resampler_link);

	if (list_empty(&resampler->list)) {
		list_del_rcu(&resampler->link);
		synchronize_srcu_expedited(&ctx->irq_srcu);
		c_irqchip_deassert(&ctx->irqchip, resampler->gsi);
		kfree(resampler);
	} else {
		synchronize_srcu_expedited(&ctx->irq_srcu);
	}

	mutex_unlock(&ctx->irqfds.resampler_lock);
}

/*
 * Signal the resamplefd of each irqfd of @resampler; returns how many. Called
 * under irq_srcu, from an ioctl: never from an eventfd wakeup, where
 * signalling another eventfd would nest eventfd wait-queue locks (and
 * eventfd_signal() refuses to, with a warning).
 */
static int irqfd_resampler_notify(struct c_irqfd_ctx *ctx,
				  struct c_irqfd_resampler *resampler)
{
	struct c_irqfd *irqfd;
	int n = 0;

	list_for_each_entry_srcu(irqfd, &resampler->list, resampler_link,
				 srcu_read_lock_held(&ctx->irq_srcu)) {
		test_ack_delay();
		eventfd_signal(irqfd->resamplefd);
		n++;
	}

	return n;
}

/*
 * Tear down a deactivated irqfd. The order of the steps is what makes this
 * safe; do not rearrange them.
 */
static void irqfd_shutdown(struct work_struct *work)
{
	struct c_irqfd *irqfd = container_of(work, struct c_irqfd, shutdown);
	u64 cnt;

	/* Deactivated, still hooked: the window of R21b (test builds). */
	test_shutdown_delay();

	/*
	 * A deassign can deactivate the irqfd while the assign that created it
	 * is still between registering it and scheduling the injection for an
	 * event that was already pending. Wait for that assign to be done.
	 */
	synchronize_srcu_expedited(&irqfd->ctx->irq_srcu);

	/*
	 * Unhook from the eventfd under its wait-queue lock, draining its
	 * counter. A wakeup running on another CPU holds that lock, so once
	 * this returns no wakeup can run for this irqfd any more, and in
	 * particular none can schedule the injection work again.
	 */
	eventfd_ctx_remove_wait_queue(irqfd->eventfd, &irqfd->wait, &cnt);

	/* Nothing can queue it now: wait for an injection already queued. */
	flush_work(&irqfd->inject);

	/*
	 * Only now, with no injection of ours left to assert the line, leave
	 * the resampler, and only once we have left it (and the ACKs that
	 * could still see us are done) drop the resamplefd.
	 */
	if (irqfd->resampler) {
		irqfd_resampler_shutdown(irqfd);
		eventfd_ctx_put(irqfd->resamplefd);
	}

	/* Nobody else can reach the irqfd: release what it holds. */
	eventfd_ctx_put(irqfd->eventfd);
	atomic64_inc(&irqfd->ctx->shutdowns);
	kfree(irqfd);
}

/*
 * Active means "in the context's tree". Only irqfds.lock makes the answer
 * stable. An irqfd is never put back in the tree, so "inactive" is final.
 */
static bool irqfd_is_active(struct c_irqfd *irqfd)
{
	lockdep_assert_held(&irqfd->ctx->irqfds.lock);

	return !RB_EMPTY_NODE(&irqfd->node);
}

/*
 * irqfd_is_active() for the EPOLLIN path of the wakeup, which cannot take
 * irqfds.lock. The node's parent-and-colour word, which RB_EMPTY_NODE()
 * reads, is written under that lock by rb_add(), by the rebalancing of other
 * insertions and erasures, and by irqfd_deactivate(): read it once, marked,
 * as KVM's list_empty() reads its list head. A node in the tree never points
 * at itself, so a stale value still says "active", which is harmless here: an
 * irqfd that is just being deactivated may inject once more, before its
 * shutdown unhooks it under the wait-queue lock this path holds.
 */
static bool irqfd_is_active_lockless(struct c_irqfd *irqfd)
{
	return READ_ONCE(irqfd->node.__rb_parent_color) !=
	       (unsigned long)&irqfd->node;
}

/* The tree of active irqfds is ordered by eventfd_ctx address. */
static int irqfd_cmp_key(const void *key, const struct rb_node *node)
{
	const struct c_irqfd *irqfd = rb_entry(node, struct c_irqfd, node);

	if ((unsigned long)key < (unsigned long)irqfd->eventfd)
		return -1;
	return (unsigned long)key > (unsigned long)irqfd->eventfd;
}

static bool irqfd_less(struct rb_node *a, const struct rb_node *b)
{
	return irqfd_cmp_key(rb_entry(a, struct c_irqfd, node)->eventfd, b) < 0;
}

/* The active irqfd of @ctx bound to @eventfd, if any. */
static struct c_irqfd *irqfd_find(struct c_irqfd_ctx *ctx,
				  struct eventfd_ctx *eventfd)
{
	struct rb_node *node;

	lockdep_assert_held(&ctx->irqfds.lock);

	node = rb_find(eventfd, &ctx->irqfds.tree, irqfd_cmp_key);
	return node ? rb_entry(node, struct c_irqfd, node) : NULL;
}

/* Take the irqfd out of the context's tree and queue its shutdown. */
static void irqfd_deactivate(struct c_irqfd *irqfd)
{
	struct c_irqfd_ctx *ctx = irqfd->ctx;

	lockdep_assert_held(&ctx->irqfds.lock);

	rb_erase(&irqfd->node, &ctx->irqfds.tree);
	/* RB_CLEAR_NODE(), marked for irqfd_is_active_lockless(). */
	WRITE_ONCE(irqfd->node.__rb_parent_color, (unsigned long)&irqfd->node);
	hlist_del_init(&irqfd->gsi_link);
	ctx->irqfds.nr_active--;

	queue_work(ctx->cleanup_wq, &irqfd->shutdown);
}

/*
 * Wait-queue callback of the eventfd. Runs with the eventfd's wait-queue lock
 * held and interrupts off, possibly in hard-IRQ context: it must not sleep.
 */
static int irqfd_wakeup(wait_queue_entry_t *wait, unsigned int mode, int sync,
			void *key)
{
	struct c_irqfd *irqfd = container_of(wait, struct c_irqfd, wait);
	struct c_irqfd_ctx *ctx = irqfd->ctx;
	__poll_t flags = key_to_poll(key);
	int ret = 0;

	if (flags & EPOLLIN) {
		struct c_irqfd_route route;
		u64 cnt;

		/*
		 * Never take irqfds.lock here: registration holds it while it
		 * takes the wait-queue lock we are called under. That is why
		 * the route is read from the irqfd's own copy, under its
		 * seqcount. Nor any mutex (route_lock, resampler_lock): we
		 * may be in hard IRQ.
		 */
		eventfd_ctx_do_read(irqfd->eventfd, &cnt);
		atomic64_inc(&irqfd->stats.signals);

		/*
		 * Inject right away unless told not to, or unless the irqfd is
		 * already on its way out, in which case leave it to the work
		 * item that the shutdown flushes: out of the tree, the irqfd
		 * gets no more route updates, and its copy of the route may
		 * be stale (the work item reads the context's table).
		 */
		if (deferred_only || unlikely(!irqfd_is_active_lockless(irqfd))) {
			schedule_work(&irqfd->inject);
		} else {
			irqfd_read_route(irqfd, &route);
			irqfd_set_irq(irqfd, &route, &irqfd->stats.fast);
		}

		/* The event is ours: keep later (non-priority) waiters asleep. */
		ret = 1;
	}

	if (flags & EPOLLHUP) {
		/* The eventfd is going away: detach from the context. */
		unsigned long iflags;

		/*
		 * This lock is safe to take here: assign holds a reference to
		 * the eventfd file for as long as it registers, so a hangup
		 * cannot arrive while registration holds irqfds.lock.
		 */
		spin_lock_irqsave(&ctx->irqfds.lock, iflags);

		/*
		 * Deassign or release may have deactivated the irqfd before we
		 * got the lock; the irqfd is then still hooked (its shutdown
		 * unhooks it under the wait-queue lock we hold, so it cannot
		 * be freed under us) and its shutdown is already queued, or
		 * even running. Deactivating it a second time would queue a
		 * second shutdown of the same irqfd.
		 */
		if (irqfd_is_active(irqfd))
			irqfd_deactivate(irqfd);

		spin_unlock_irqrestore(&ctx->irqfds.lock, iflags);
	}

	return ret;
}

struct c_irqfd_pt {
	struct c_irqfd *irqfd;
	struct c_irqfd_ctx *ctx;
	poll_table pt;
	int ret;
};

/*
 * poll_table callback, called by the eventfd's ->poll: hook the irqfd to the
 * eventfd and, only if that worked, make it active.
 */
static void c_irqfd_register(struct file *file, wait_queue_head_t *wqh,
			     poll_table *pt)
{
	struct c_irqfd_pt *p = container_of(pt, struct c_irqfd_pt, pt);
	struct c_irqfd *irqfd = p->irqfd;
	struct c_irqfd_ctx *ctx = p->ctx;

	/*
	 * Hook the irqfd and put it in the tree in one irqfds.lock section:
	 * deassign and release then never find an irqfd that is not hooked,
	 * and a hooked irqfd is in the tree before a hangup (which needs this
	 * lock) can look for it. The limit is checked in the same section, so
	 * that concurrent assigns cannot overshoot it.
	 */
	spin_lock_irq(&ctx->irqfds.lock);

	if (ctx->irqfds.nr_active >= max_irqfds) {
		p->ret = -ENOSPC;
		goto out;
	}

	/*
	 * Initialise the route before the irqfd is added to the eventfd's
	 * wait queue, since irqfd_wakeup() can run as soon as it is, and
	 * under irqfds.lock, which route updates hold while they write the
	 * table and then the copies of the GSI's irqfds: an update either
	 * wrote the table before us and we copy its route, or comes after and
	 * finds us in the GSI's list.
	 */
	irqfd_update_route(irqfd, &ctx->routes[irqfd->gsi]);

	init_waitqueue_func_entry(&irqfd->wait, irqfd_wakeup);

	/*
	 * irqfds.lock -> wait-queue lock is the reverse of the EPOLLHUP path's
	 * order, but the two cannot meet on one eventfd: that path runs only
	 * on the final fput, and assign holds the file. Hide this acquisition
	 * from lockdep so that it does not report that impossible cycle.
	 *
	 * The entry is a priority, exclusive waiter, and the eventfd may have
	 * only one such: if an irqfd (of any context, of either module, or of
	 * KVM) is already bound to it, this fails with -EBUSY and nothing is
	 * added. Deassign waits for the shutdowns it causes, so an eventfd is
	 * free again when deassign returns.
	 */
	spin_release(&ctx->irqfds.lock.dep_map, _RET_IP_);
	p->ret = add_wait_queue_priority_exclusive(wqh, &irqfd->wait);
	spin_acquire(&ctx->irqfds.lock.dep_map, 0, 0, _RET_IP_);
	if (!p->ret) {
		/* One irqfd per eventfd (the exclusive waiter): the key is free. */
		rb_add(&irqfd->node, &ctx->irqfds.tree, irqfd_less);
		/*
		 * At the head: a route update walking this list in several
		 * lock sections (c_irqfd_set_route()) has its bookmark behind
		 * us, and we copied its route above.
		 */
		hlist_add_head(&irqfd->gsi_link,
			       &ctx->irqfds.by_gsi[irqfd->gsi]);
		ctx->irqfds.nr_active++;
	}

out:
	spin_unlock_irq(&ctx->irqfds.lock);
}

/*
 * Bind the eventfd of @file (descriptor args->fd, kept for fdinfo) to
 * args->gsi, with args->resamplefd if args->flags has RUST_IRQFD_FLAG_RESAMPLE.
 * The caller holds @file until this returns: as long as it does, the eventfd
 * cannot be hung up, which is what makes irqfds.lock safe to hold in
 * c_irqfd_register().
 */
static int c_irqfd_assign_file(struct c_irqfd_ctx *ctx, struct file *file,
			       const struct rust_irqfd *args)
{
	struct c_irqfd_pt irqfd_pt;
	struct eventfd_ctx *eventfd;
	struct c_irqfd *irqfd;
	__poll_t events;
	int idx, ret;

	/* The irqfd's own reference, dropped by its shutdown. */
	eventfd = eventfd_ctx_fileget(file);
	if (IS_ERR(eventfd))
		return PTR_ERR(eventfd);

	irqfd = kzalloc_obj(*irqfd, GFP_KERNEL_ACCOUNT);
	if (!irqfd) {
		ret = -ENOMEM;
		goto fail;
	}

	irqfd->ctx = ctx;
	/*
	 * Checked by the caller, and clamped here, where it is kept: it indexes
	 * ctx->routes in this very call (c_irqfd_register()), and the irqchip's
	 * lines at every injection.
	 */
	irqfd->gsi = array_index_nospec(args->gsi, ctx->irqchip.nr_gsis);
	irqfd->fd = args->fd;
	irqfd->eventfd = eventfd;
	seqcount_spinlock_init(&irqfd->route_sc, &ctx->irqfds.lock);
	RB_CLEAR_NODE(&irqfd->node);
	INIT_HLIST_NODE(&irqfd->gsi_link);
	INIT_LIST_HEAD(&irqfd->resampler_link);
	INIT_WORK(&irqfd->inject, irqfd_inject);
	INIT_WORK(&irqfd->shutdown, irqfd_shutdown);

	if (args->flags & RUST_IRQFD_FLAG_RESAMPLE) {
		struct eventfd_ctx *resamplefd;

		/*
		 * Our own reference: the descriptor may be closed as soon as
		 * we return. EBADF for no descriptor, EINVAL for one that is
		 * not an eventfd.
		 */
		resamplefd = eventfd_ctx_fdget(args->resamplefd);
		if (IS_ERR(resamplefd)) {
			ret = PTR_ERR(resamplefd);
			goto fail_irqfd;
		}
		irqfd->resamplefd = resamplefd;

		ret = irqfd_resampler_join(irqfd);
		if (ret)
			goto fail_resamplefd;
	}

	/*
	 * Once registered, a concurrent deassign of the same eventfd can
	 * deactivate the irqfd at any time. The SRCU read section keeps its
	 * shutdown, hence its kfree(), waiting until we are done with it.
	 */
	idx = srcu_read_lock(&ctx->irq_srcu);

	/*
	 * Polling the eventfd registers the irqfd (see c_irqfd_register())
	 * and tells whether an event was already pending. If so, it would
	 * never produce a wakeup of its own: inject for it once, and leave the
	 * counter to the next signal.
	 */
	irqfd_pt.irqfd = irqfd;
	irqfd_pt.ctx = ctx;
	irqfd_pt.ret = -EINVAL;	/* if ->poll never called us back */
	init_poll_funcptr(&irqfd_pt.pt, c_irqfd_register);

	events = vfs_poll(file, &irqfd_pt.pt);

	ret = irqfd_pt.ret;
	if (ret)
		goto fail_poll;

	if (events & EPOLLIN)
		schedule_work(&irqfd->inject);

	srcu_read_unlock(&ctx->irq_srcu, idx);
	return 0;

fail_poll:
	/*
	 * Never registered, so it never injected: leaving the resampler is
	 * all there is to undo. It waits for a grace period of irq_srcu, so
	 * only after our read section.
	 */
	srcu_read_unlock(&ctx->irq_srcu, idx);
	if (irqfd->resampler)
		irqfd_resampler_shutdown(irqfd);
fail_resamplefd:
	if (irqfd->resamplefd)
		eventfd_ctx_put(irqfd->resamplefd);
fail_irqfd:
	kfree(irqfd);
fail:
	eventfd_ctx_put(eventfd);
	return ret;
}

static int c_irqfd_assign(struct c_irqfd_ctx *ctx, struct rust_irqfd *args)
{
	if (args->gsi >= ctx->irqchip.nr_gsis)
		return -EINVAL;

	CLASS(fd, f)(args->fd);
	if (fd_empty(f))
		return -EBADF;

	return c_irqfd_assign_file(ctx, fd_file(f), args);
}

/*
 * Shut down the irqfds of @ctx bound to the eventfd and gsi of each of the @nr
 * entries, if any, and wait once for all of them. Every descriptor is checked
 * first: on a bad one nothing is shut down, *@bad is its index and its errno
 * is returned.
 */
static int c_irqfd_deassign_many(struct c_irqfd_ctx *ctx,
				 const struct rust_irqfd *entries, u32 nr,
				 u32 *bad)
{
	struct eventfd_ctx **eventfds;
	struct c_irqfd *irqfd;
	int ret = 0;
	u32 i, j, got;

	eventfds = kvcalloc(nr, sizeof(*eventfds), GFP_KERNEL);
	if (!eventfds)
		return -ENOMEM;

	for (got = 0; got < nr; got++) {
		eventfds[got] = eventfd_ctx_fdget(entries[got].fd);
		if (IS_ERR(eventfds[got])) {
			ret = PTR_ERR(eventfds[got]);
			*bad = got;
			goto put;
		}
	}

	/*
	 * Look up while we hold the references, so no key can be reused; a
	 * few entries per lock section, so that interrupts are not kept off
	 * for the whole batch.
	 */
	for (i = 0; i < nr; i += C_IRQFD_LOCK_BATCH) {
		spin_lock_irq(&ctx->irqfds.lock);
		for (j = i; j < min(nr, i + C_IRQFD_LOCK_BATCH); j++) {
			irqfd = irqfd_find(ctx, eventfds[j]);
			if (irqfd && irqfd->gsi == entries[j].gsi)
				irqfd_deactivate(irqfd);
		}
		spin_unlock_irq(&ctx->irqfds.lock);
		cond_resched();
	}

put:
	for (i = 0; i < got; i++)
		eventfd_ctx_put(eventfds[i]);
	kvfree(eventfds);
	if (ret)
		return ret;

	/*
	 * Wait for the shutdowns, ours and any queued earlier by a hangup, so
	 * that no injection from these irqfds can happen once we return and
	 * the eventfd can be bound again right away.
	 */
	flush_workqueue(ctx->cleanup_wq);

	return 0;
}

static int c_irqfd_deassign(struct c_irqfd_ctx *ctx, struct rust_irqfd *args)
{
	u32 bad;

	return c_irqfd_deassign_many(ctx, args, 1, &bad);
}

/*
 * Shut down the irqfds that the files @files[0..@nr) were just bound with by
 * this call (the rollback of a failed batch), and wait for them.
 */
static void c_irqfd_unassign(struct c_irqfd_ctx *ctx, struct file **files,
			     const struct rust_irqfd *entries, u32 nr)
{
	struct eventfd_ctx *eventfd;
	struct c_irqfd *irqfd;
	u32 i;

	for (i = 0; i < nr; i++) {
		/* Cannot fail: the assign got one from the same file. */
		eventfd = eventfd_ctx_fileget(files[i]);
		if (IS_ERR(eventfd))
			continue;

		spin_lock_irq(&ctx->irqfds.lock);
		irqfd = irqfd_find(ctx, eventfd);
		if (irqfd && irqfd->gsi == entries[i].gsi)
			irqfd_deactivate(irqfd);
		spin_unlock_irq(&ctx->irqfds.lock);

		eventfd_ctx_put(eventfd);
	}

	flush_workqueue(ctx->cleanup_wq);
}

/*
 * Bind each of the @nr entries, all or nothing: on the first failure, the
 * irqfds this call bound are shut down again (and waited for), *@bad is the
 * failed entry's index and its errno is returned.
 *
 * The rollback finds our irqfds by eventfd: while we hold their files no
 * hangup can take them away, so only another thread deassigning and binding
 * the same eventfds again during the call could make it miss one or take
 * that thread's binding instead (the Rust module keeps the irqfds themselves
 * and is exact).
 */
static int c_irqfd_assign_many(struct c_irqfd_ctx *ctx,
			       const struct rust_irqfd *entries, u32 nr,
			       u32 *bad)
{
	struct file **files;
	u32 i, done = 0;
	int ret = 0;

	files = kvcalloc(nr, sizeof(*files), GFP_KERNEL);
	if (!files)
		return -ENOMEM;

	for (i = 0; i < nr; i++) {
		files[i] = fget(entries[i].fd);
		if (!files[i]) {
			ret = -EBADF;
			break;
		}
		ret = c_irqfd_assign_file(ctx, files[i], &entries[i]);
		if (ret) {
			fput(files[i]);
			break;
		}
		done++;
	}

	if (ret) {
		*bad = i;
		c_irqfd_unassign(ctx, files, entries, done);
	}

	for (i = 0; i < done; i++)
		fput(files[i]);
	kvfree(files);
	return ret;
}

static int c_irqfd_irqfd(struct c_irqfd_ctx *ctx, struct rust_irqfd *args)
{
	if (args->flags & ~(RUST_IRQFD_FLAG_DEASSIGN | RUST_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;

	/* Stricter than KVM: reserve the padding for later use. */
	if (memchr_inv(args->pad, 0, sizeof(args->pad)))
		return -EINVAL;

	/* As in KVM, deassign ignores RUST_IRQFD_FLAG_RESAMPLE. */
	if (args->flags & RUST_IRQFD_FLAG_DEASSIGN)
		return c_irqfd_deassign(ctx, args);

	return c_irqfd_assign(ctx, args);
}

/* The context is being closed: shut down all the irqfds it still has. */
static void c_irqfd_irqfds_release(struct c_irqfd_ctx *ctx)
{
	struct rb_node *node;
	unsigned int n;
	bool more;

	/*
	 * KVM deactivates every irqfd in one section of its irqfds lock. With
	 * up to max_irqfds of them, that keeps interrupts off for a time that
	 * grows with their number: drop the lock every C_IRQFD_LOCK_BATCH
	 * irqfds instead. No irqfd can be added meanwhile (no ioctl runs
	 * during release), and one that EPOLLHUP deactivates while we do not
	 * hold the lock is simply not in the tree any more when we come back.
	 */
	do {
		spin_lock_irq(&ctx->irqfds.lock);
		for (n = 0; n < C_IRQFD_LOCK_BATCH; n++) {
			node = rb_first(&ctx->irqfds.tree);
			if (!node)
				break;
			irqfd_deactivate(rb_entry(node, struct c_irqfd, node));
		}
		more = !RB_EMPTY_ROOT(&ctx->irqfds.tree);
		spin_unlock_irq(&ctx->irqfds.lock);
		cond_resched();
	} while (more);

	/*
	 * An irqfd holds no reference on its context: wait for every shutdown
	 * still queued, including those a hangup queued before we took the
	 * lock, before the context is freed.
	 */
	flush_workqueue(ctx->cleanup_wq);

	/* The last resample irqfd to leave a resampler freed it. */
	WARN_ON_ONCE(!list_empty(&ctx->irqfds.resampler_list));
}

/* RUST_IRQFD_IRQFD_BATCH: the batch, with the index of the entry at fault. */
static int c_irqfd_run_batch(struct c_irqfd_ctx *ctx,
			     const struct rust_irqfd_batch *batch, u32 *bad)
{
	struct rust_irqfd *entries;
	bool deassign;
	int ret = 0;
	u32 i;

	if ((batch->flags & ~RUST_IRQFD_FLAG_DEASSIGN) || batch->pad ||
	    !batch->nr || batch->nr > RUST_IRQFD_BATCH_MAX)
		return -EINVAL;
	deassign = batch->flags & RUST_IRQFD_FLAG_DEASSIGN;

	entries = vmemdup_array_user(u64_to_user_ptr(batch->entries),
				     batch->nr, sizeof(*entries));
	if (IS_ERR(entries))
		return PTR_ERR(entries);

	/* Each entry is plain: the batch's flags say what to do. */
	for (i = 0; i < batch->nr; i++) {
		if (entries[i].flags ||
		    memchr_inv(entries[i].pad, 0, sizeof(entries[i].pad)) ||
		    (!deassign && entries[i].gsi >= ctx->irqchip.nr_gsis)) {
			*bad = i;
			ret = -EINVAL;
			goto out;
		}
	}

	if (deassign)
		ret = c_irqfd_deassign_many(ctx, entries, batch->nr, bad);
	else
		ret = c_irqfd_assign_many(ctx, entries, batch->nr, bad);
out:
	kvfree(entries);
	return ret;
}

/*
 * error_index is nr unless an entry is at fault, and it is written before
 * anything is done: a caller whose error_index cannot be written gets EFAULT
 * with nothing done, never EFAULT after a batch that went through (an assign
 * batch is all or nothing). Only an entry at fault is written a second time,
 * once the batch has left nothing done.
 */
static int c_irqfd_irqfd_batch(struct c_irqfd_ctx *ctx,
			       struct rust_irqfd_batch __user *argp)
{
	struct rust_irqfd_batch batch;
	u32 bad;
	int ret;

	if (copy_from_user(&batch, argp, sizeof(batch)))
		return -EFAULT;

	if (put_user(batch.nr, &argp->error_index))
		return -EFAULT;

	bad = batch.nr;
	ret = c_irqfd_run_batch(ctx, &batch, &bad);

	if (bad != batch.nr && put_user(bad, &argp->error_index))
		return -EFAULT;
	return ret;
}

/* --- the other ioctls --- */

static int c_irqfd_get_info(struct c_irqfd_ctx *ctx,
			    struct rust_irqfd_info __user *argp)
{
	struct rust_irqfd_info info = {
		.version = RUST_IRQFD_ABI_VERSION,
		.nr_gsis = ctx->irqchip.nr_gsis,
		/*
		 * Never RUST_IRQFD_INFO_COUNTS_SIGNALS: signals that arrive
		 * while the injection work is queued merge into one injection,
		 * as in KVM.
		 */
		.flags = deferred_only ? RUST_IRQFD_INFO_DEFERRED_ONLY : 0,
		.max_irqfds = max_irqfds,
	};

	spin_lock_irq(&ctx->irqfds.lock);
	info.nr_irqfds = ctx->irqfds.nr_active;
	spin_unlock_irq(&ctx->irqfds.lock);
	info.shutdowns = atomic64_read(&ctx->shutdowns);

	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;

	return 0;
}

static int c_irqfd_gsi_stats(struct c_irqfd_ctx *ctx,
			     struct rust_irqfd_gsi_stats __user *argp)
{
	struct c_irqfd_irqchip *chip = &ctx->irqchip;
	struct rust_irqfd_gsi_stats stats;

	if (copy_from_user(&stats, argp, sizeof(stats)))
		return -EFAULT;

	if (stats.gsi >= chip->nr_gsis || stats.pad)
		return -EINVAL;

	c_irqchip_get_stats(chip, array_index_nospec(stats.gsi, chip->nr_gsis),
			    &stats);

	if (copy_to_user(argp, &stats, sizeof(stats)))
		return -EFAULT;

	return 0;
}

/*
 * RUST_IRQFD_SET_ROUTE: route one GSI to an MSI message, or back to a plain
 * line, in place. Like kvm_irq_routing_update(), rewrite the copy of the
 * route that each irqfd bound to the GSI keeps, under irqfds.lock; unlike KVM,
 * which publishes a whole new table, the table is updated in place under the
 * same lock, so no grace period is needed before returning: an injection that
 * read the old route was concurrent with the update.
 *
 * KVM walks every irqfd of the VM in one section of its irqfds lock. Here the
 * walk covers only the GSI's own irqfds (irqfds.by_gsi), and drops the lock
 * every C_IRQFD_LOCK_BATCH of them, so that interrupts are never kept off for
 * a time that grows with the number of irqfds, even if they are all on this
 * GSI. A bookmark in the list keeps our place while the lock is dropped:
 *  - an irqfd deactivated meanwhile has left the list and is not visited;
 *    its wakeup no longer uses its copy (irqfd_is_active_lockless()) but
 *    defers to irqfd_inject(), which reads the table under route_lock, that
 *    is after we are done (the CVE-2026-23198 case stays covered);
 *  - an irqfd registered meanwhile went in at the head of the list, behind
 *    the bookmark, and copied the table's route, already the new one;
 *  - an irqfd not visited yet injects with the old route, which is what any
 *    injection concurrent with the update may do.
 * route_lock keeps other route updates, the only other walkers, out.
 */
static int c_irqfd_set_route(struct c_irqfd_ctx *ctx,
			     struct rust_irqfd_route __user *argp)
{
	struct rust_irqfd_route args;
	struct hlist_node mark, *pos;
	struct c_irqfd_route route;
	unsigned int n;
	u32 gsi;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;

	if (args.gsi >= ctx->irqchip.nr_gsis || args.pad)
		return -EINVAL;

	switch (args.flags) {
	case RUST_IRQFD_ROUTE_MSI:
		if (!args.msi_addr || (args.msi_addr & 3))
			return -EINVAL;
		break;
	case 0:
		if (args.msi_addr || args.msi_data)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}

	gsi = array_index_nospec(args.gsi, ctx->irqchip.nr_gsis);
	route = (struct c_irqfd_route) {
		.flags = args.flags,
		.msi_addr = args.msi_addr,
		.msi_data = args.msi_data,
	};

	mutex_lock(&ctx->route_lock);
	spin_lock_irq(&ctx->irqfds.lock);

	ctx->routes[gsi] = route;

	/*
	 * Only the active irqfds, as KVM: one that is being shut down injects
	 * from its work item, which reads the table.
	 */
	hlist_add_head(&mark, &ctx->irqfds.by_gsi[gsi]);
	for (;;) {
		for (n = 0, pos = mark.next; pos && n < C_IRQFD_LOCK_BATCH;
		     pos = pos->next, n++)
			irqfd_update_route(hlist_entry(pos, struct c_irqfd, gsi_link),
					   &route);
		hlist_del(&mark);
		if (!pos)
			break;
		hlist_add_before(&mark, pos);
		spin_unlock_irq(&ctx->irqfds.lock);
		cond_resched();
		spin_lock_irq(&ctx->irqfds.lock);
	}

	spin_unlock_irq(&ctx->irqfds.lock);
	mutex_unlock(&ctx->route_lock);

	return 0;
}

/*
 * RUST_IRQFD_SET_MASK. Under route_lock, so that an unmask raises what the
 * latch holds with the route the GSI has at that time, not one an update
 * running meanwhile is replacing.
 */
static int c_irqfd_set_mask(struct c_irqfd_ctx *ctx,
			    struct rust_irqfd_mask __user *argp)
{
	struct rust_irqfd_mask args;
	u32 gsi;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;

	if (args.gsi >= ctx->irqchip.nr_gsis ||
	    (args.flags & ~RUST_IRQFD_MASK_MASKED))
		return -EINVAL;

	gsi = array_index_nospec(args.gsi, ctx->irqchip.nr_gsis);

	mutex_lock(&ctx->route_lock);
	if (args.flags & RUST_IRQFD_MASK_MASKED)
		c_irqchip_mask(&ctx->irqchip, gsi);
	else
		c_irqchip_unmask(&ctx->irqchip, gsi, &ctx->routes[gsi]);
	mutex_unlock(&ctx->route_lock);

	return 0;
}

/*
 * RUST_IRQFD_ACK, the guest's EOI (irqfd_resampler_ack() in KVM): deassert
 * the line once, then signal every resample irqfd of the GSI, here in process
 * context. The resampler and its irqfds are walked under irq_srcu; an irqfd
 * leaving it waits for us before it puts its resamplefd.
 */
static long c_irqfd_ack(struct c_irqfd_ctx *ctx,
			struct rust_irqfd_ack __user *argp)
{
	struct c_irqfd_resampler *resampler;
	struct rust_irqfd_ack args;
	int idx, n = 0;
	u32 gsi;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;

	if (args.gsi >= ctx->irqchip.nr_gsis || args.pad)
		return -EINVAL;

	gsi = array_index_nospec(args.gsi, ctx->irqchip.nr_gsis);

	/*
	 * The resample irqfds share the line: deassert it once, then tell
	 * them all. Deasserting once per irqfd could lose an assertion that
	 * came in between.
	 */
	if (!c_irqchip_ack(&ctx->irqchip, gsi))
		return 0;

	idx = srcu_read_lock(&ctx->irq_srcu);

	list_for_each_entry_srcu(resampler, &ctx->irqfds.resampler_list, link,
				 srcu_read_lock_held(&ctx->irq_srcu)) {
		if (resampler->gsi == gsi) {
			n = irqfd_resampler_notify(ctx, resampler);
			break;
		}
	}

	srcu_read_unlock(&ctx->irq_srcu, idx);

	return n;
}

/* --- file operations --- */

static long c_irqfd_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct c_irqfd_ctx *ctx = file->private_data;
	void __user *argp = (void __user *)arg;
	struct rust_irqfd data;

	switch (cmd) {
	case RUST_IRQFD_IRQFD:
		if (copy_from_user(&data, argp, sizeof(data)))
			return -EFAULT;
		return c_irqfd_irqfd(ctx, &data);
	case RUST_IRQFD_IRQFD_BATCH:
		return c_irqfd_irqfd_batch(ctx, argp);
	case RUST_IRQFD_GET_INFO:
		return c_irqfd_get_info(ctx, argp);
	case RUST_IRQFD_GSI_STATS:
		return c_irqfd_gsi_stats(ctx, argp);
	case RUST_IRQFD_SET_ROUTE:
		return c_irqfd_set_route(ctx, argp);
	case RUST_IRQFD_SET_MASK:
		return c_irqfd_set_mask(ctx, argp);
	case RUST_IRQFD_ACK:
		return c_irqfd_ack(ctx, argp);
	default:
		return -ENOTTY;
	}
}

/*
 * Hand out the oldest pending records, as many whole ones as fit in the
 * buffer; block (unless O_NONBLOCK) while there are none. Records are popped
 * under the irqchip lock in batches and copied out after; when the copy
 * faults, the whole records that reached userspace are the result (-EFAULT
 * if none did) and the others are put back, pending again.
 */
static ssize_t c_irqfd_read(struct file *file, char __user *buf, size_t count,
			    loff_t *ppos)
{
	struct c_irqfd_ctx *ctx = file->private_data;
	struct c_irqfd_irqchip *chip = &ctx->irqchip;
	struct rust_irqfd_delivery recs[C_IRQFD_READ_BATCH];
	const size_t rsz = sizeof(recs[0]);
	size_t want, done = 0;
	unsigned int n, copied;
	unsigned long left;
	int ret;

	if (count < rsz)
		return -EINVAL;

	/*
	 * Each GSI is in the FIFO at most once, so nr_gsis records is all a
	 * snapshot can hold; stopping there bounds the call even when
	 * injections keep coming.
	 */
	want = min_t(size_t, count / rsz, chip->nr_gsis);

	for (;;) {
		n = c_irqchip_pop(chip, recs, min_t(size_t, want, C_IRQFD_READ_BATCH));
		if (n)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(chip->readers,
					       c_irqchip_has_pending(chip));
		if (ret)
			return ret;
	}

	for (;;) {
		left = copy_to_user(buf + done, recs, n * rsz);
		copied = (n * rsz - left) / rsz;
		done += copied * rsz;
		if (copied < n) {
			c_irqchip_put_back(chip, recs + copied, n - copied);
			break;
		}
		want -= n;
		if (!want)
			break;
		n = c_irqchip_pop(chip, recs, min_t(size_t, want, C_IRQFD_READ_BATCH));
		if (!n)
			break;
	}

	if (!done)
		return -EFAULT;

	return done;
}

static void c_irqfd_ctx_free(struct c_irqfd_ctx *ctx)
{
	/* Empty after the release's flush; destroying it would drain it anyway. */
	destroy_workqueue(ctx->cleanup_wq);
	cleanup_srcu_struct(&ctx->irq_srcu);
	c_irqchip_destroy(&ctx->irqchip);
	kvfree(ctx->irqfds.by_gsi);
	kvfree(ctx->routes);
	mutex_destroy(&ctx->route_lock);
	mutex_destroy(&ctx->irqfds.resampler_lock);
	kfree(ctx);
}

static int c_irqfd_open(struct inode *inode, struct file *file)
{
	struct c_irqfd_ctx *ctx;
	int ret;

	ctx = kzalloc_obj(*ctx, GFP_KERNEL_ACCOUNT);
	if (!ctx)
		return -ENOMEM;

	spin_lock_init(&ctx->irqfds.lock);
	ctx->irqfds.tree = RB_ROOT;
	mutex_init(&ctx->irqfds.resampler_lock);
	INIT_LIST_HEAD(&ctx->irqfds.resampler_list);
	mutex_init(&ctx->route_lock);

	/* Every GSI starts as a plain line: all zero. */
	ctx->routes = kvzalloc_objs(*ctx->routes, nr_gsis, GFP_KERNEL_ACCOUNT);
	if (!ctx->routes) {
		ret = -ENOMEM;
		goto fail_ctx;
	}

	/* Zeroed: every list empty. */
	ctx->irqfds.by_gsi = kvzalloc_objs(*ctx->irqfds.by_gsi, nr_gsis,
					   GFP_KERNEL_ACCOUNT);
	if (!ctx->irqfds.by_gsi) {
		ret = -ENOMEM;
		goto fail_routes;
	}

	ret = c_irqchip_init(&ctx->irqchip, nr_gsis);
	if (ret)
		goto fail_by_gsi;

	ret = init_srcu_struct(&ctx->irq_srcu);
	if (ret)
		goto fail_irqchip;

	ret = -ENOMEM;
	ctx->cleanup_wq = alloc_ordered_workqueue("c-irqfd-cleanup", 0);
	if (!ctx->cleanup_wq)
		goto fail_srcu;

	file->private_data = ctx;
	return stream_open(inode, file);

fail_srcu:
	cleanup_srcu_struct(&ctx->irq_srcu);
fail_irqchip:
	c_irqchip_destroy(&ctx->irqchip);
fail_by_gsi:
	kvfree(ctx->irqfds.by_gsi);
fail_routes:
	kvfree(ctx->routes);
fail_ctx:
	kfree(ctx);
	return ret;
}

/*
 * Last close of the context. No ioctl or read can be running (they hold the
 * file), and fops.owner keeps the module loaded until this returns.
 */
static int c_irqfd_release(struct inode *inode, struct file *file)
{
	struct c_irqfd_ctx *ctx = file->private_data;

	c_irqfd_irqfds_release(ctx);
	c_irqfd_ctx_free(ctx);
	return 0;
}

/* First active irqfd whose eventfd address is at least @key, or NULL. */
static struct c_irqfd *irqfd_lower_bound(struct c_irqfd_ctx *ctx,
					 unsigned long key)
{
	struct rb_node *node = ctx->irqfds.tree.rb_node;
	struct c_irqfd *best = NULL;

	lockdep_assert_held(&ctx->irqfds.lock);

	while (node) {
		struct c_irqfd *irqfd = rb_entry(node, struct c_irqfd, node);

		if ((unsigned long)irqfd->eventfd >= key) {
			best = irqfd;
			node = node->rb_left;
		} else {
			node = node->rb_right;
		}
	}
	return best;
}

#define C_IRQFD_FDINFO_CHUNK	8

struct c_irqfd_info {
	u32 gsi, fd;
	u64 signals, fast, deferred, coalesced, masked;
	u32 resample;
};

/*
 * /proc/PID/fdinfo/FD of a context: the context's counters, then one line per
 * active irqfd in eventfd order. The format is ABI, shared with rust_irqfd
 * (Documentation/rust_irqfd.rst, "fdinfo"). The irqfds are copied a few at a
 * time under irqfds.lock, so that a long list never keeps interrupts off for
 * long; irqfds assigned or removed meanwhile may or may not be listed.
 */
static void c_irqfd_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct c_irqfd_info info[C_IRQFD_FDINFO_CHUNK];
	struct c_irqfd_ctx *ctx = file->private_data;
	unsigned long from = 0;
	struct c_irqfd *irqfd;
	unsigned int i, n;
	bool more;

	spin_lock_irq(&ctx->irqfds.lock);
	n = ctx->irqfds.nr_active;
	spin_unlock_irq(&ctx->irqfds.lock);

	seq_printf(m, "rust_irqfd-abi:\t%u\n", RUST_IRQFD_ABI_VERSION);
	seq_printf(m, "nr_gsis:\t%u\n", ctx->irqchip.nr_gsis);
	seq_printf(m, "max_irqfds:\t%u\n", max_irqfds);
	seq_printf(m, "irqfds:\t%u\n", n);
	seq_printf(m, "shutdowns:\t%llu\n", (u64)atomic64_read(&ctx->shutdowns));

	do {
		n = 0;
		more = false;
		spin_lock_irq(&ctx->irqfds.lock);
		for (irqfd = irqfd_lower_bound(ctx, from); irqfd;
		     irqfd = rb_entry_safe(rb_next(&irqfd->node), struct c_irqfd, node)) {
			if (n == C_IRQFD_FDINFO_CHUNK) {
				more = true;
				break;
			}
			info[n++] = (struct c_irqfd_info) {
				.gsi = irqfd->gsi,
				.fd = irqfd->fd,
				.signals = atomic64_read(&irqfd->stats.signals),
				.fast = atomic64_read(&irqfd->stats.fast),
				.deferred = atomic64_read(&irqfd->stats.deferred),
				.coalesced = atomic64_read(&irqfd->stats.coalesced),
				.masked = atomic64_read(&irqfd->stats.masked),
				.resample = irqfd->resampler ? 1 : 0,
			};
			from = (unsigned long)irqfd->eventfd + 1;
		}
		spin_unlock_irq(&ctx->irqfds.lock);

		for (i = 0; i < n; i++)
			seq_printf(m, "irqfd:\tgsi=%u fd=%u signals=%llu fast=%llu deferred=%llu coalesced=%llu masked=%llu resample=%u\n",
				   info[i].gsi, info[i].fd, info[i].signals,
				   info[i].fast, info[i].deferred,
				   info[i].coalesced, info[i].masked,
				   info[i].resample);
	} while (more);
}

static const struct file_operations c_irqfd_fops = {
	.owner		= THIS_MODULE,
	.open		= c_irqfd_open,
	.release	= c_irqfd_release,
	.read		= c_irqfd_read,
	.unlocked_ioctl	= c_irqfd_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.show_fdinfo	= c_irqfd_show_fdinfo,
};

static struct miscdevice c_irqfd_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "c_irqfd",
	.fops	= &c_irqfd_fops,
	.mode	= 0600,
};

static int __init c_irqfd_init(void)
{
	if (nr_gsis < 1 || nr_gsis > C_IRQFD_MAX_GSIS) {
		pr_err("nr_gsis=%u is out of range 1..%u\n", nr_gsis,
		       C_IRQFD_MAX_GSIS);
		return -EINVAL;
	}

	if (max_irqfds < 1 || max_irqfds > C_IRQFD_MAX_IRQFDS) {
		pr_err("max_irqfds=%u is out of range 1..%lu\n", max_irqfds,
		       C_IRQFD_MAX_IRQFDS);
		return -EINVAL;
	}

	return misc_register(&c_irqfd_misc);
}

static void __exit c_irqfd_exit(void)
{
	misc_deregister(&c_irqfd_misc);
}

module_init(c_irqfd_init);
module_exit(c_irqfd_exit);

MODULE_DESCRIPTION("irqfd: eventfd-driven interrupt injection (C reference of rust_irqfd)");
MODULE_LICENSE("GPL");

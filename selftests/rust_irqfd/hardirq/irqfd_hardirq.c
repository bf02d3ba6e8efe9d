// SPDX-License-Identifier: GPL-2.0
/*
 * irqfd_hardirq: a test-only module (TEST_HOOKS=1 builds) that signals an
 * eventfd from hard-IRQ context, for race R15 of the selftest.
 *
 * An ioctl on /dev/irqfd_hardirq arms an hrtimer that calls eventfd_signal()
 * on the given eventfd @count times, every @period_ns, then returns how many
 * signals it sent and how many of them ran in hard-IRQ context. When the
 * eventfd is bound to an irqfd, the irqfd's wait-queue callback then runs in
 * hard IRQ, so lockdep sees every lock it takes there taken from hard IRQ: a
 * lock that is not IRQ-safe shows as an inconsistent lock state.
 *
 * The timer is a plain one, not HRTIMER_MODE_*_HARD. Without PREEMPT_RT it
 * still expires in hard-IRQ context, and lockdep treats it as it treats a
 * device's interrupt handler (which may be force-threaded): that is the
 * context VFIO's interrupt handlers signal eventfds from. A HARD timer is
 * stricter than any interrupt handler: the eventfd's own wait-queue lock is a
 * spinlock_t, which PREEMPT_RT turns into a sleeping lock, and lockdep's
 * raw-lock nesting check rightly rejects it there ("Invalid wait context").
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/hrtimer.h>
#include <linux/preempt.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include <linux/rust_irqfd.h>

/* Test-only command, in the range the ABI leaves to tests (0xf0..0xff). */
struct irqfd_hardirq_signal {
	__u32 fd;		/* in: an eventfd */
	__u32 count;		/* in: signals to send (1..1000000) */
	__u64 period_ns;	/* in: between signals (>= 1000) */
	__u64 sent;		/* out: signals sent from hard IRQ */
	__u64 skipped;		/* out: not sent, eventfd_signal_allowed() said no */
	__u64 hardirq;		/* out: signals sent while in_hardirq() */
};

#define IRQFD_HARDIRQ_SIGNAL _IOWR(RUST_IRQFD_MAGIC, 0xf0, struct irqfd_hardirq_signal)

struct irqfd_hardirq_run {
	struct hrtimer timer;
	struct eventfd_ctx *eventfd;
	struct completion done;
	ktime_t period;
	u32 left;
	u64 sent;
	u64 skipped;
	u64 hardirq;
};

static enum hrtimer_restart irqfd_hardirq_fire(struct hrtimer *timer)
{
	struct irqfd_hardirq_run *run = container_of(timer, struct irqfd_hardirq_run, timer);

	/* eventfd_signal() refuses to nest inside another eventfd wakeup. */
	if (eventfd_signal_allowed()) {
		eventfd_signal(run->eventfd);
		run->sent++;
		if (in_hardirq())
			run->hardirq++;
	} else {
		run->skipped++;
	}

	if (--run->left == 0) {
		complete(&run->done);
		return HRTIMER_NORESTART;
	}
	hrtimer_forward_now(timer, run->period);
	return HRTIMER_RESTART;
}

static long irqfd_hardirq_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	struct irqfd_hardirq_signal __user *argp = (void __user *)arg;
	struct irqfd_hardirq_signal req;
	struct irqfd_hardirq_run run = {};

	if (cmd != IRQFD_HARDIRQ_SIGNAL)
		return -ENOTTY;
	if (copy_from_user(&req, argp, sizeof(req)))
		return -EFAULT;
	if (!req.count || req.count > 1000000 || req.period_ns < 1000)
		return -EINVAL;

	run.eventfd = eventfd_ctx_fdget(req.fd);
	if (IS_ERR(run.eventfd))
		return PTR_ERR(run.eventfd);

	init_completion(&run.done);
	run.left = req.count;
	run.period = ns_to_ktime(req.period_ns);
	hrtimer_setup_on_stack(&run.timer, irqfd_hardirq_fire, CLOCK_MONOTONIC,
			       HRTIMER_MODE_REL);
	hrtimer_start(&run.timer, run.period, HRTIMER_MODE_REL);

	/* Uninterruptible: the timer uses this stack frame until it is done. */
	wait_for_completion(&run.done);
	hrtimer_cancel(&run.timer);
	destroy_hrtimer_on_stack(&run.timer);
	eventfd_ctx_put(run.eventfd);

	req.sent = run.sent;
	req.skipped = run.skipped;
	req.hardirq = run.hardirq;
	if (copy_to_user(argp, &req, sizeof(req)))
		return -EFAULT;
	return 0;
}

static const struct file_operations irqfd_hardirq_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= irqfd_hardirq_ioctl,
};

static struct miscdevice irqfd_hardirq_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "irqfd_hardirq",
	.fops	= &irqfd_hardirq_fops,
	.mode	= 0600,
};

module_misc_device(irqfd_hardirq_misc);

MODULE_DESCRIPTION("Test only: signal an eventfd from hard-IRQ context (rust_irqfd selftest, R15)");
MODULE_LICENSE("GPL");
MODULE_INFO(test, "Y");

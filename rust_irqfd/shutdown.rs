// SPDX-License-Identifier: GPL-2.0

//! Deactivation, the shutdown work, the module's ordered cleanup queue, and why it is race-free.
//!
//! # The race argument
//!
//! This is the design of KVM's irqfd after the 2009 "Fix races in irqfd" rework, in Rust.
//!
//! *Active* means "in its context's tree" (the context's irqfds, keyed by eventfd). Only two paths
//! deactivate an irqfd, and both do it under the context's IRQ-safe `irqfds` lock, by taking it
//! out of the tree: the context side (deassign, release) and the eventfd side (the `EPOLLHUP`
//! wakeup when the eventfd is released). Whoever takes the irqfd out owns its shutdown and queues
//! it; the other one finds it gone ([`crate::context::Irqfds::take`] returns `None`) and does
//! nothing. So the shutdown is queued exactly once, whatever the interleaving (races R1-R3).
//!
//! The shutdown work then, in this order:
//!
//! 1. removes the wait entry from the eventfd's wait queue. That takes the wait-queue lock, which
//!    every wakeup callback holds while it runs, so after this no callback is running or can
//!    start: nothing new gets queued on the injection work;
//! 2. flushes the injection work, so no injection from this irqfd is in flight;
//! 3. drops its references. The eventfd reference goes with the last one, after step 1: the
//!    eventfd context cannot be freed while its wait queue still holds our entry.
//!
//! The irqfd cannot be freed under a running callback: while the entry is queued, the wait
//! queue owns a reference to it (see [`crate::eventfd`]). `EPOLLHUP` cannot arrive while an
//! assign is still running, because assign holds a reference to the eventfd's file until the
//! irqfd is on the list; and registration never holds the `irqfds` lock, so the only lock order
//! is "eventfd wait-queue lock, then `irqfds` lock", with no lockdep escape hatch needed.
//!
//! Deassign and release wait for the shutdowns they queued by flushing the context's own cleanup
//! queue (never another context's: a context tearing down 65536 irqfds delays no one else), so
//! when they return the irqfds are gone: no further injection, no reference on the eventfd (it
//! can be bound again at once), and nothing that still points at the context. The shutdown work
//! never flushes the queue it runs on.
//!
//! Each context's cleanup queue is ordered (one item at a time): its shutdowns run in the order
//! they were queued, one irqfd at a time, which keeps `flush` a clean "everything this context
//! queued so far is done". The context owns the queue, and its last reference is its file's,
//! dropped after `release` flushed: no irqfd (which holds a context reference) outlives that
//! flush, so the queue is never destroyed from one of its own work items.

use kernel::{
    sync::{
        atomic::Relaxed,
        Arc,
        ArcBorrow, //
    },
    workqueue::WorkItem, //
};

use crate::{
    context::Context,
    eventfd::EventFdWaiter,
    irqfd::{
        Irqfd,
        SHUTDOWN, //
    },
    sink::Sink, //
};

/// Deactivates `irqfd` if it is still active: takes it out of its context's tree and queues its
/// shutdown. The `EPOLLHUP` path; runs under the eventfd's wait-queue lock, interrupts off.
pub(crate) fn deactivate_if_active<S: Sink>(irqfd: ArcBorrow<'_, Irqfd<S>>) {
    let ctx = &irqfd.ctx;
    let mut irqfds = ctx.irqfds.lock();
    // An irqfd is only ever put in the tree of its own context, `irqfd.ctx`, so it is either in
    // this tree or in none.
    if let Some(item) = irqfds.take(&irqfd) {
        queue_shutdown(ctx, item);
    }
}

/// Queues the shutdown of an irqfd just taken out of its context's tree, on the context's
/// cleanup queue.
///
/// Whoever took the irqfd out of the tree calls this, once: taking it out decides who owns
/// its shutdown.
pub(crate) fn queue_shutdown<S: Sink>(ctx: &Context<S>, irqfd: Arc<Irqfd<S>>) {
    // The shutdown work is queued only by whoever took the irqfd out of the tree, once, so it
    // cannot be pending already; if it were, the reference would simply be dropped here, which is
    // fine even in the wakeup's atomic context: the wait queue's reference keeps it from being
    // the last.
    let _ = ctx.cleanup.enqueue::<Arc<Irqfd<S>>, SHUTDOWN>(irqfd);
}

impl<S: Sink> WorkItem<SHUTDOWN> for Irqfd<S> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        // Out of the tree, still hooked: the window of R21b, which a test build can widen.
        crate::test_hooks::shutdown_delay();
        // 1. Unhook from the eventfd: no callback runs after this.
        let queued = EventFdWaiter::unregister(&this);
        // 2. No injection in flight after this.
        crate::wq::flush_work(&this.inject);
        // 3. A resample irqfd leaves its resampler: once the resamplers' lock is ours, no end
        // of interrupt is signalling its resamplefd, and none will.
        if this.resample.is_some() {
            this.ctx.leave_resampler(&this);
        }
        // 4. Drop the wait queue's reference and ours; the last one puts the eventfd and frees.
        drop(queued);
        this.ctx.shutdowns.add(1, Relaxed);
        drop(this);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Deactivation, the shutdown work, the module's ordered cleanup queue, and why it is race-free.
//!
//! # The race argument
//!
//! This is the design of KVM's irqfd after the 2009 "Fix races in irqfd" rework, in Rust.
//!
//! *Active* means "on its context's list". Only two paths deactivate an irqfd, and both do it
//! under the context's IRQ-safe `irqfds` lock, by taking it off the list and queueing its
//! shutdown: the context side (deassign, release) and the eventfd side (the `EPOLLHUP` wakeup
//! when the eventfd is released). Whoever takes the irqfd off the list owns its shutdown; the
//! other one finds it already off the list ([`kernel::list::List::remove`] returns `None`) and
//! does nothing. So the shutdown is queued exactly once, whatever the interleaving (races R1-R3).
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
//! Deassign and release wait for the shutdowns they queued by flushing the cleanup queue, so
//! when they return the irqfds are gone: no further injection, no reference on the eventfd (it
//! can be bound again at once), and nothing that still points at the context. The shutdown work
//! never flushes the queue it runs on.
//!
//! The cleanup queue is ordered (one item at a time): shutdowns run in the order they were
//! queued, one irqfd at a time, which keeps `flush` a clean "everything queued so far is done".

use kernel::{
    list::ListArc,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
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
    sink::Sink,
    wq::OrderedQueue, //
};

kernel::sync::global_lock! {
    // SAFETY: Initialised by `CleanupQueue::new` in the module initialiser, before any use.
    unsafe(uninit) static CLEANUP_QUEUE: Mutex<Option<Arc<OrderedQueue>>> = None;
}

/// Whether `CLEANUP_QUEUE` was initialised; it may be only once.
static CLEANUP_QUEUE_INIT: Atomic<bool> = Atomic::new(false);

/// The module's cleanup queue: created at module init, destroyed at module exit.
///
/// The module struct holds this after its misc device registration, so that the device is gone
/// (no context can be open) before the queue is drained and destroyed.
pub(crate) struct CleanupQueue;

impl CleanupQueue {
    /// Allocates the ordered cleanup queue and publishes it for [`cleanup_queue`].
    ///
    /// Called from module init; a second call fails with `EBUSY`.
    pub(crate) fn new() -> Result<Self> {
        if CLEANUP_QUEUE_INIT.xchg(true, Relaxed) {
            return Err(EBUSY);
        }
        // SAFETY: The flag above makes this the only call, and it comes before any other use of
        // the lock (contexts, its only other users, are created once the device is registered).
        unsafe { CLEANUP_QUEUE.init() };
        let queue = Arc::new(OrderedQueue::new(c"rust-irqfd-cleanup")?, GFP_KERNEL)?;
        *CLEANUP_QUEUE.lock() = Some(queue);
        Ok(Self)
    }
}

impl Drop for CleanupQueue {
    fn drop(&mut self) {
        // Take it out first: destroying drains the queue and sleeps, not under the mutex.
        let queue = CLEANUP_QUEUE.lock().take();
        // Every context holds a reference and none is open any more (the device is gone and an
        // open file pins the module), so this should be the last one: dropping it drains and
        // destroys the queue here, in process context, not from a work item on it.
        if let Some(queue) = queue {
            if Arc::into_unique_or_drop(queue).is_none() {
                pr_warn!("cleanup queue still referenced at module exit\n");
            }
        }
    }
}

/// The cleanup queue, for a new context to keep.
pub(crate) fn cleanup_queue() -> Result<Arc<OrderedQueue>> {
    CLEANUP_QUEUE.lock().clone().ok_or(ENODEV)
}

/// Deactivates `irqfd` if it is still active: takes it off its context's list and queues its
/// shutdown. The `EPOLLHUP` path; runs under the eventfd's wait-queue lock, interrupts off.
pub(crate) fn deactivate_if_active<S: Sink>(irqfd: ArcBorrow<'_, Irqfd<S>>) {
    let ctx = &irqfd.ctx;
    let mut irqfds = ctx.irqfds.lock();
    // SAFETY: An irqfd is only ever put on the list of its own context, `irqfd.ctx`, so it is
    // either on this list or on none.
    let item = unsafe { irqfds.list.remove(&irqfd) };
    #[cfg(not(mutant = "no_active_check"))]
    if let Some(item) = item {
        // INVARIANT: `count` follows the list's length.
        irqfds.count -= 1;
        queue_shutdown(ctx, item);
    }
    #[cfg(mutant = "no_active_check")]
    {
        // MUTANT no_active_check: deactivate even when the other side already did.
        drop(item);
        irqfds.count -= 1;
        let _ = ctx
            .cleanup
            .enqueue::<Arc<Irqfd<S>>, SHUTDOWN>(Arc::from(irqfd));
    }
}

/// Queues the shutdown of an irqfd just taken off its context's list.
///
/// Called with the context's `irqfds` lock held: taking the irqfd off the list and queueing its
/// shutdown are one step as far as the other deactivation paths can see.
pub(crate) fn queue_shutdown<S: Sink>(ctx: &Context<S>, irqfd: ListArc<Irqfd<S>>) {
    // The shutdown work is queued only by whoever took the irqfd off the list, once, so it cannot
    // be pending already; if it were, the reference would simply be dropped here, which is fine
    // even in the wakeup's atomic context: the wait queue's reference keeps it from being the last.
    let _ = ctx
        .cleanup
        .enqueue::<Arc<Irqfd<S>>, SHUTDOWN>(irqfd.into_arc());
}

impl<S: Sink> WorkItem<SHUTDOWN> for Irqfd<S> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        // 1. Unhook from the eventfd: no callback runs after this.
        let queued = EventFdWaiter::unregister(&this);
        // 2. No injection in flight after this.
        #[cfg(not(mutant = "no_inject_flush"))]
        crate::wq::flush_work(&this.inject);
        // MUTANT no_inject_flush: the injection work may still run after the shutdown.
        // 3. Drop the wait queue's reference and ours; the last one puts the eventfd and frees.
        drop(queued);
        this.ctx.shutdowns.add(1, Relaxed);
        drop(this);
    }
}

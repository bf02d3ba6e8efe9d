// SPDX-License-Identifier: GPL-2.0

//! A context (the stand-in for a VM): its irqfds, its interrupt sink, assign, deassign, release.

use kernel::{
    fs::LocalFile,
    list::{
        List,
        ListArc, //
    },
    new_spinlock_irq,
    prelude::*,
    sync::{
        atomic::Atomic,
        Arc,
        SpinLockIrq, //
    }, //
};

use crate::{
    eventfd::{
        EventFd,
        EventFdWaiter, //
    },
    irqfd::Irqfd,
    shutdown,
    sink::Sink,
    wq::OrderedQueue, //
};

/// The active irqfds of a context.
///
/// # Invariants
///
/// * Every irqfd on `list` belongs to the context that holds this (`irqfd.ctx`), and an irqfd
///   is never put on any other context's list: it is on this list or on none.
/// * `count` is the length of `list`.
pub(crate) struct Irqfds<S: Sink> {
    pub(crate) list: List<Irqfd<S>>,
    /// Length of `list`.
    pub(crate) count: u32,
}

/// A context: the owner of a set of irqfds and of the sink they inject into.
#[pin_data]
pub(crate) struct Context<S: Sink> {
    #[pin]
    pub(crate) sink: S,
    /// The active irqfds. IRQ-safe: the `EPOLLHUP` wakeup takes it with interrupts off.
    #[pin]
    pub(crate) irqfds: SpinLockIrq<Irqfds<S>>,
    /// The module's ordered cleanup queue, where shutdowns run.
    pub(crate) cleanup: Arc<OrderedQueue>,
    /// Never inject from the wakeup; always through the injection work.
    pub(crate) deferred_only: bool,
    /// Shutdowns completed, for `RUST_IRQFD_GET_INFO`.
    pub(crate) shutdowns: Atomic<u64>,
}

impl<S: Sink> Context<S> {
    /// A new context with no irqfds, injecting into the sink `sink` initialises.
    pub(crate) fn new(sink: impl PinInit<S, Error>, deferred_only: bool) -> Result<Arc<Self>> {
        let cleanup = shutdown::cleanup_queue()?;
        Arc::pin_init(
            try_pin_init!(Self {
                sink <- sink,
                irqfds <- new_spinlock_irq!(
                    Irqfds {
                        list: List::new(),
                        count: 0,
                    },
                    "Context::irqfds"
                ),
                cleanup,
                deferred_only,
                shutdowns: Atomic::new(0),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Number of active irqfds.
    pub(crate) fn nr_irqfds(&self) -> u32 {
        self.irqfds.lock().count
    }

    /// Binds the eventfd `fd` to `gsi`.
    ///
    /// `EINVAL` for a GSI out of range or a file that is not an eventfd, `EBADF` for a bad
    /// descriptor, `EBUSY` if the eventfd is bound already, `ENOMEM`.
    pub(crate) fn assign(self: &Arc<Self>, fd: u32, gsi: u32) -> Result {
        if gsi >= self.sink.nr_gsis() {
            return Err(EINVAL);
        }
        // Held until the irqfd is on the list: the eventfd cannot be released (EPOLLHUP) before.
        let file = LocalFile::fget(fd)?;
        let eventfd = EventFd::from_file(&file)?;
        // MUTANT no_ctx_ref: give the reference back at once and rely on the file's.
        #[cfg(mutant = "no_ctx_ref")]
        eventfd.put_early();
        let irqfd = ListArc::pin_init(Irqfd::new(self.clone(), gsi, eventfd), GFP_KERNEL_ACCOUNT)?;

        // Hook onto the eventfd first, without our lock: its wakeup takes our lock (on EPOLLHUP)
        // under the wait-queue lock, so holding ours here would invert that order.
        let readable = EventFdWaiter::register(irqfd.as_arc(), &file)?;

        // An event pending before we were hooked on: inject it once, before the irqfd becomes
        // visible to deassign, which must not see an injection after it returns. The counter
        // itself stays for the next signal's wakeup to consume, as in KVM.
        if readable {
            self.sink.inject(gsi);
        }

        let mut irqfds = self.irqfds.lock();
        // INVARIANT: The irqfd goes on the list of its own context (`irqfd.ctx` is `self`), and
        // `count` follows the list's length.
        irqfds.list.push_back(irqfd);
        irqfds.count += 1;
        drop(irqfds);
        drop(file);
        Ok(())
    }

    /// Unbinds every irqfd of this context that binds the eventfd `fd` to `gsi`, and waits until
    /// they are shut down. Returns 0 when nothing matched.
    pub(crate) fn deassign(&self, fd: u32, gsi: u32) -> Result {
        let eventfd = EventFd::fdget(fd)?;
        let mut irqfds = self.irqfds.lock();
        let mut removed = 0;
        let mut cursor = irqfds.list.cursor_front();
        while let Some(next) = cursor.peek_next() {
            if next.matches(&eventfd, gsi) {
                shutdown::queue_shutdown(self, next.remove());
                // INVARIANT: `count` is brought back to the list's length below.
                removed += 1;
            } else {
                cursor.move_next();
            }
        }
        irqfds.count -= removed;
        drop(irqfds);
        drop(eventfd);
        // Synchronous: no injection from those irqfds once we return.
        #[cfg(not(mutant = "deassign_no_wait"))]
        self.cleanup.flush();
        // MUTANT deassign_no_wait: return while the shutdowns may still be pending.
        Ok(())
    }

    /// Shuts down every irqfd of the context and waits for it: the owner is going away.
    pub(crate) fn release(&self) {
        let mut irqfds = self.irqfds.lock();
        while let Some(irqfd) = irqfds.list.pop_front() {
            shutdown::queue_shutdown(self, irqfd);
        }
        irqfds.count = 0;
        drop(irqfds);
        #[cfg(not(mutant = "release_no_wait"))]
        self.cleanup.flush();
        // MUTANT release_no_wait: the owner goes away with shutdowns still pending.
    }
}

// SPDX-License-Identifier: GPL-2.0

//! One irqfd: an eventfd bound to a GSI of a context, and what happens when it is signalled.
//!
//! An `Irqfd` lives in an `Arc`. References are held by: the context's tree while it is active,
//! the eventfd's wait queue while its wait entry is registered, its injection
//! work while queued, and its shutdown work while queued or running. See [`crate::shutdown`] for
//! how these are given up, in which order, and why that is race-free.

use kernel::{
    new_work,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Full,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    workqueue::{
        impl_has_work,
        Work,
        WorkItem, //
    }, //
};

use crate::{
    context::Context,
    eventfd::{
        impl_has_eventfd_waiter,
        EventFd,
        EventFdHandler,
        EventFdWaiter,
        WakeContext, //
    },
    shutdown,
    sink::{
        Injected,
        Injection,
        Sink, //
    },
    wq, //
};

/// Work ID of the injection work.
pub(crate) const INJECT: u64 = 0;
/// Work ID of the shutdown work.
pub(crate) const SHUTDOWN: u64 = 1;

/// An eventfd bound to a GSI of a context.
#[pin_data]
pub(crate) struct Irqfd<S: Sink> {
    pub(crate) ctx: Arc<Context<S>>,
    pub(crate) gsi: u32,
    /// The descriptor number given at assign (shown in fdinfo; informational only).
    fd: u32,
    /// A resample (level-triggered) irqfd's resamplefd: signalled on each end of interrupt of its
    /// GSI (see [`Context::ack`]), never from a wakeup.
    pub(crate) resample: Option<EventFd>,
    /// Counters shown in fdinfo.
    stats: IrqfdStats,
    #[pin]
    pub(crate) waiter: EventFdWaiter,
    /// Signals not yet injected by the injection work.
    deferred: Atomic<u64>,
    #[pin]
    pub(crate) inject: Work<Irqfd<S>, INJECT>,
    #[pin]
    pub(crate) shutdown: Work<Irqfd<S>, SHUTDOWN>,
}

/// Per-irqfd counters, updated without a lock (each one is exact, a snapshot of all of them is
/// not taken atomically).
struct IrqfdStats {
    /// `EPOLLIN` wakeups handled.
    signals: Atomic<u64>,
    /// Injections made from the wakeup (the atomic fast path).
    fast: Atomic<u64>,
    /// Injections made in process context (the injection work, or assign for a pending event).
    deferred: Atomic<u64>,
    /// Injections the sink merged into an interrupt still pending.
    coalesced: Atomic<u64>,
    /// Injections held by the pending latch of a masked GSI.
    masked: Atomic<u64>,
}

impl IrqfdStats {
    fn new() -> Self {
        Self {
            signals: Atomic::new(0),
            fast: Atomic::new(0),
            deferred: Atomic::new(0),
            coalesced: Atomic::new(0),
            masked: Atomic::new(0),
        }
    }

    fn count(&self, how: Injected, path: &Atomic<u64>) {
        path.add(1, Relaxed);
        match how {
            Injected::Coalesced => self.coalesced.add(1, Relaxed),
            Injected::Latched => self.masked.add(1, Relaxed),
            Injected::Raised | Injected::Dropped => {}
        }
    }
}

/// One irqfd as fdinfo lists it.
pub(crate) struct IrqfdInfo {
    pub(crate) gsi: u32,
    pub(crate) fd: u32,
    pub(crate) signals: u64,
    pub(crate) fast: u64,
    pub(crate) deferred: u64,
    pub(crate) coalesced: u64,
    pub(crate) masked: u64,
    pub(crate) resample: bool,
}

impl_has_work! {
    impl{S: Sink} HasWork<Irqfd<S>, INJECT> for Irqfd<S> { self.inject }
    impl{S: Sink} HasWork<Irqfd<S>, SHUTDOWN> for Irqfd<S> { self.shutdown }
}

impl_has_eventfd_waiter! {
    impl{S: Sink} HasEventFdWaiter for Irqfd<S> { self.waiter }
}

impl<S: Sink> Irqfd<S> {
    /// A new, inactive irqfd binding `eventfd` to `gsi` of `ctx`; level-triggered if it has a
    /// `resample` eventfd.
    pub(crate) fn new(
        ctx: Arc<Context<S>>,
        gsi: u32,
        fd: u32,
        eventfd: EventFd,
        resample: Option<EventFd>,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            ctx,
            gsi,
            fd,
            resample,
            stats: IrqfdStats::new(),
            waiter <- EventFdWaiter::new(eventfd),
            deferred: Atomic::new(0),
            inject <- new_work!("Irqfd::inject"),
            shutdown <- new_work!("Irqfd::shutdown"),
        })
    }

    /// An injection into this irqfd's GSI with the GSI's route now.
    fn injection(&self) -> Injection {
        Injection {
            gsi: self.gsi,
            route: self.ctx.routes.get(self.gsi),
            level: self.resample.is_some(),
        }
    }

    /// Injects once from process context: an event already pending at assign.
    pub(crate) fn inject_now(&self) {
        let how = self.ctx.sink.inject(&self.injection());
        self.stats.count(how, &self.stats.deferred);
    }

    /// This irqfd's binding and counters, for fdinfo.
    pub(crate) fn info(&self) -> IrqfdInfo {
        IrqfdInfo {
            gsi: self.gsi,
            fd: self.fd,
            signals: self.stats.signals.load(Relaxed),
            fast: self.stats.fast.load(Relaxed),
            deferred: self.stats.deferred.load(Relaxed),
            coalesced: self.stats.coalesced.load(Relaxed),
            masked: self.stats.masked.load(Relaxed),
            resample: self.resample.is_some(),
        }
    }

    /// Injects one signal through the injection work, in process context.
    fn inject_deferred(this: ArcBorrow<'_, Self>) {
        this.deferred.add(1, Relaxed);
        // Already queued: that run will see the count just added (queueing orders it). The
        // reference returned then is dropped here, in atomic context, which is fine: the wait
        // queue's reference keeps it from being the last.
        let _ = wq::system_percpu().enqueue::<Arc<Self>, INJECT>(this.into());
    }
}

impl<S: Sink> EventFdHandler for Irqfd<S> {
    fn signalled(this: ArcBorrow<'_, Self>, _count: u64, wake: &WakeContext<'_>) {
        // The fast path: straight into the sink from the wakeup. An irqfd that is being shut
        // down may still get here until its wait entry is removed; injecting is harmless then,
        // because deassign and release wait for the shutdown, which waits for this callback.
        this.stats.signals.add(1, Relaxed);
        if !this.ctx.deferred_only {
            if let Ok(how) = this.ctx.sink.inject_atomic(&this.injection(), wake) {
                this.stats.count(how, &this.stats.fast);
                return;
            }
        }
        Self::inject_deferred(this);
    }

    fn hangup(this: ArcBorrow<'_, Self>) {
        shutdown::deactivate_if_active(this);
    }
}

impl<S: Sink> WorkItem<INJECT> for Irqfd<S> {
    type Pointer = Arc<Self>;

    fn run(this: Arc<Self>) {
        crate::test_hooks::inject_delay();
        let n = this.deferred.xchg(0, Full);
        for _ in 0..n {
            let how = this.ctx.sink.inject(&this.injection());
            this.stats.count(how, &this.stats.deferred);
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! MSI routes: what each GSI of a context is routed to, updated in place and read locklessly.
//!
//! # Why a seqcount per GSI
//!
//! An injection reads its GSI's route from the eventfd wakeup: interrupts off, the eventfd's
//! wait-queue lock held, possibly in hard-IRQ context. It must see a whole route, old or new,
//! never half of each (race R21 of the research), and an update must neither wait for those
//! readers nor copy a table: `RUST_IRQFD_SET_ROUTE` changes one GSI in place.
//!
//! * A lock on the read side would put a context-wide lock into every injection, on every CPU.
//! * RCU would mean a new allocation per update and a grace period before the old one is freed
//!   (KVM's `KVM_SET_GSI_ROUTING` replaces the whole table and waits with
//!   `synchronize_srcu_expedited()`, which is what this interface is meant to avoid).
//! * A seqcount costs the reader two loads of the sequence and a read barrier, and the writer
//!   nothing but its own serialisation. A route is 16 bytes, so a reader that raced with a writer
//!   simply reads it again. KVM protects its per-irqfd copy of the routing entry the same way
//!   (`irq_entry_sc`).
//!
//! Unlike KVM, the route lives once per GSI, not copied into every irqfd: irqfds on a GSI read
//! its cell, so an update is O(1) whatever the number of irqfds bound to the GSI, and an irqfd
//! can never see a route that was not computed yet (the cell exists before any irqfd does).
//!
//! The seqcount is written here with the kernel's atomics rather than with `seqcount_t`, which
//! has no Rust abstraction; every field is an atomic, so a racing read is never undefined
//! behaviour, only retried. Writers are serialised by an IRQ-safe spinlock: interrupts must be
//! off while the sequence is odd, or a reader in an interrupt on the writer's CPU would spin
//! forever.

use kernel::{
    new_spinlock_irq,
    prelude::*,
    processor::cpu_relax,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        barrier::{
            smp_mb,
            Read,
            Write, //
        },
        SpinLockIrq,
    }, //
};

use crate::nospec;

/// What a GSI is routed to.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// No route: a plain line (records carry no message).
    #[default]
    Line,
    /// An MSI message.
    Msi { addr: u64, data: u32 },
}

/// The route of one GSI, readable at any time without a lock.
///
/// # Invariants
///
/// * `seq` is odd exactly while a writer is between [`RouteCell::write`]'s two increments;
///   writers are serialised by [`Routes::lock`], with interrupts off.
/// * When `seq` is even, `msi`, `addr` and `data` hold one route written whole.
struct RouteCell {
    seq: Atomic<u32>,
    msi: Atomic<u32>,
    addr: Atomic<u64>,
    data: Atomic<u32>,
}

impl RouteCell {
    fn new() -> Self {
        // INVARIANT: Even sequence, and the fields hold `Route::Line`.
        Self {
            seq: Atomic::new(0),
            msi: Atomic::new(0),
            addr: Atomic::new(0),
            data: Atomic::new(0),
        }
    }

    /// `read_seqcount_begin()` .. `read_seqcount_retry()`: a whole route, never a torn one.
    fn read(&self) -> Route {
        loop {
            let seq = self.seq.load(Acquire);
            if seq & 1 == 0 {
                let msi = self.msi.load(Relaxed);
                let addr = self.addr.load(Relaxed);
                let data = self.data.load(Relaxed);
                // Order the field loads before the second load of the sequence.
                smp_mb(Read);
                if self.seq.load(Relaxed) == seq {
                    return if msi != 0 {
                        Route::Msi { addr, data }
                    } else {
                        Route::Line
                    };
                }
            }
            cpu_relax();
        }
    }

    /// `write_seqcount_begin()` .. `write_seqcount_end()`. The caller holds [`Routes::lock`].
    fn write(&self, route: Route) {
        let (msi, addr, data) = match route {
            Route::Line => (0, 0, 0),
            Route::Msi { addr, data } => (1, addr, data),
        };
        let seq = self.seq.load(Relaxed);
        // INVARIANT: Odd from here until the fields are written; the caller's lock keeps other
        // writers out and interrupts off.
        self.seq.store(seq.wrapping_add(1), Relaxed);
        // Order the odd sequence before the field stores.
        smp_mb(Write);
        self.msi.store(msi, Relaxed);
        self.addr.store(addr, Relaxed);
        crate::test_hooks::route_delay();
        self.data.store(data, Relaxed);
        // INVARIANT: Even again, the fields hold `route` whole; the release orders them before.
        self.seq.store(seq.wrapping_add(2), Release);
    }
}

/// The routes of a context's GSIs.
#[pin_data]
pub(crate) struct Routes {
    cells: KVVec<RouteCell>,
    /// Serialises writers of `cells`, with interrupts off (see [`RouteCell`]'s invariants).
    /// `RUST_IRQFD_SET_MASK` holds it too, so that an unmask raises with a route that no update
    /// is changing at that moment.
    #[pin]
    lock: SpinLockIrq<()>,
}

impl Routes {
    /// `nr_gsis` GSIs, none routed.
    pub(crate) fn new(nr_gsis: u32) -> Result<impl PinInit<Self, Error>> {
        let n = usize::try_from(nr_gsis)?;
        let mut cells = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            cells.push(RouteCell::new(), GFP_KERNEL_ACCOUNT)?;
        }
        Ok(try_pin_init!(Self {
            cells,
            lock <- new_spinlock_irq!((), "Routes::lock"),
        }))
    }

    /// The cell of `gsi`, `None` if there is none. The index is clamped against speculation
    /// ([`nospec::index`]): every GSI that reaches the routes came from userspace.
    fn cell(&self, gsi: u32) -> Option<&RouteCell> {
        self.cells.get(nospec::index(gsi, self.cells.len())?)
    }

    /// The route of `gsi` now; `Route::Line` for a GSI out of range (assign rules that out).
    pub(crate) fn get(&self, gsi: u32) -> Route {
        self.cell(gsi).map_or(Route::Line, RouteCell::read)
    }

    /// Routes `gsi` to `route` in place; `EINVAL` for a GSI out of range.
    pub(crate) fn set(&self, gsi: u32, route: Route) -> Result {
        let cell = self.cell(gsi).ok_or(EINVAL)?;
        let _serialised = self.lock.lock();
        cell.write(route);
        Ok(())
    }

    /// Runs `f` with `gsi`'s route while no update can change it.
    pub(crate) fn with_stable<R>(&self, gsi: u32, f: impl FnOnce(Route) -> R) -> R {
        let _serialised = self.lock.lock();
        f(self.get(gsi))
    }
}

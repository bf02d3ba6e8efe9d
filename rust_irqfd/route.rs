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
//! The seqcount is the kernel's `seqcount_spinlock_t` ([`crate::seqcount`]): its barriers, its
//! lockdep check that a writer holds the lock, its PREEMPT_RT handling of a preempted writer. The
//! route's fields are atomics, so a racing read is never undefined behaviour, only retried.
//! Writers hold the table's IRQ-safe spinlock, and can write only through its guard: interrupts
//! are off while the sequence is odd, or a reader in an interrupt on the writer's CPU would spin
//! forever.

use kernel::{
    prelude::*,
    static_lock_class,
    sync::atomic::{
        Atomic,
        Relaxed, //
    }, //
};

use crate::nospec;
use crate::seqcount::{
    SeqTable,
    WriteSection, //
};

/// What a GSI is routed to.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// No route: a plain line (records carry no message).
    #[default]
    Line,
    /// An MSI message.
    Msi { addr: u64, data: u32 },
}

/// The route of one GSI, as its slot of [`Routes`]' table holds it.
///
/// # Invariants
///
/// The fields change only inside a write section of the slot's seqcount ([`RouteCell::store`]
/// takes the proof); outside one, `msi`, `addr` and `data` hold one route written whole.
struct RouteCell {
    msi: Atomic<u32>,
    addr: Atomic<u64>,
    data: Atomic<u32>,
}

impl RouteCell {
    fn new() -> Self {
        // INVARIANT: The fields hold `Route::Line`.
        Self {
            msi: Atomic::new(0),
            addr: Atomic::new(0),
            data: Atomic::new(0),
        }
    }

    /// The fields, as a route. Whole when no write section overlaps the call: the seqcount
    /// ([`SeqTable::read`]) or the table's lock makes sure of it.
    fn load(&self) -> Route {
        let msi = self.msi.load(Relaxed);
        let addr = self.addr.load(Relaxed);
        let data = self.data.load(Relaxed);
        if msi != 0 {
            Route::Msi { addr, data }
        } else {
            Route::Line
        }
    }

    /// Writes `route`, inside a write section of the cell's seqcount (the seqcount's barriers
    /// order these stores between its two updates of the sequence).
    fn store(&self, route: Route, _section: &WriteSection<'_>) {
        let (msi, addr, data) = match route {
            Route::Line => (0, 0, 0),
            Route::Msi { addr, data } => (1, addr, data),
        };
        // INVARIANT: Inside a write section: readers overlapping it retry.
        self.msi.store(msi, Relaxed);
        self.addr.store(addr, Relaxed);
        crate::test_hooks::route_delay();
        self.data.store(data, Relaxed);
    }
}

/// The routes of a context's GSIs.
#[pin_data]
pub(crate) struct Routes {
    /// A cell per GSI, under its seqcount. The table's lock serialises writers, with interrupts
    /// off; `RUST_IRQFD_SET_MASK` holds it too, so that an unmask raises with a route that no
    /// update is changing at that moment.
    #[pin]
    table: SeqTable<RouteCell>,
}

impl Routes {
    /// `nr_gsis` GSIs, none routed.
    pub(crate) fn new(nr_gsis: u32) -> Result<impl PinInit<Self, Error>> {
        let n = usize::try_from(nr_gsis)?;
        Ok(try_pin_init!(Self {
            table <- SeqTable::new(
                n,
                |_| RouteCell::new(),
                GFP_KERNEL_ACCOUNT,
                c"Routes::lock",
                static_lock_class!(),
            ),
        }))
    }

    /// The table index of `gsi`, `None` if it has none. The index is clamped against
    /// speculation ([`nospec::index`]): every GSI that reaches the routes came from userspace.
    fn index(&self, gsi: u32) -> Option<usize> {
        nospec::index(gsi, self.table.len())
    }

    /// The route of `gsi` now, whole; `Route::Line` for a GSI out of range (assign rules that
    /// out). Lock-free: the wakeup calls it with interrupts off, possibly in hard IRQ.
    pub(crate) fn get(&self, gsi: u32) -> Route {
        self.index(gsi)
            .and_then(|i| self.table.read(i, RouteCell::load))
            .unwrap_or(Route::Line)
    }

    /// Routes `gsi` to `route` in place; `EINVAL` for a GSI out of range.
    pub(crate) fn set(&self, gsi: u32, route: Route) -> Result {
        let i = self.index(gsi).ok_or(EINVAL)?;
        let mut writer = self.table.lock();
        writer
            .write(i, |cell, section| cell.store(route, section))
            .ok_or(EINVAL)
    }

    /// Runs `f` with `gsi`'s route while no update can change it.
    pub(crate) fn with_stable<R>(&self, gsi: u32, f: impl FnOnce(Route) -> R) -> R {
        let writer = self.table.lock();
        let route = self
            .index(gsi)
            .and_then(|i| writer.get(i))
            .map_or(Route::Line, RouteCell::load);
        f(route)
    }
}

#[kunit_tests(rust_irqfd_route)]
mod tests {
    use super::*;

    const MSI: Route = Route::Msi {
        addr: 0xfee0_1000,
        data: 0x22,
    };

    #[test]
    fn set_then_get() -> Result {
        let routes = KBox::pin_init(Routes::new(4)?, GFP_KERNEL)?;
        let routes = &*routes;
        for gsi in 0..4 {
            kunit_check!(routes.get(gsi) == Route::Line);
        }
        routes.set(2, MSI)?;
        kunit_check!(routes.get(2) == MSI);
        // One GSI's cell only.
        kunit_check!(routes.get(1) == Route::Line);
        kunit_check!(routes.get(3) == Route::Line);
        kunit_check!(routes.with_stable(2, |r| r) == MSI);
        routes.set(2, Route::Line)?;
        kunit_check!(routes.get(2) == Route::Line);
        Ok(())
    }

    #[test]
    fn out_of_range_gsi() -> Result {
        let routes = KBox::pin_init(Routes::new(4)?, GFP_KERNEL)?;
        let routes = &*routes;
        // Every line routed, so that a GSI clamped into range would not read as `Line`.
        for gsi in 0..4 {
            routes.set(gsi, MSI)?;
        }
        kunit_check!(routes.set(4, MSI) == Err(EINVAL));
        kunit_check!(routes.set(u32::MAX, MSI) == Err(EINVAL));
        kunit_check!(routes.get(4) == Route::Line);
        kunit_check!(routes.with_stable(4, |r| r) == Route::Line);
        Ok(())
    }

    #[test]
    fn every_bit_of_a_route_round_trips() -> Result {
        let routes = KBox::pin_init(Routes::new(1)?, GFP_KERNEL)?;
        let routes = &*routes;
        let widest = Route::Msi {
            addr: u64::MAX & !3,
            data: u32::MAX,
        };
        routes.set(0, widest)?;
        kunit_check!(routes.get(0) == widest);
        // An MSI message of zero data is still an MSI route, not a line.
        let zero_data = Route::Msi { addr: 4, data: 0 };
        routes.set(0, zero_data)?;
        kunit_check!(routes.get(0) == zero_data);
        Ok(())
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The seam between the irqfd core and whatever receives its interrupts.
//!
//! The core ([`crate::irqfd`], [`crate::context`], [`crate::shutdown`]) is generic over a
//! [`Sink`]. The module's own sink is the virtual interrupt controller of [`crate::irqchip`]; a
//! hypervisor driver would implement `Sink` for its interrupt controller instead.

use kernel::prelude::*;

use crate::{
    eventfd::WakeContext,
    route::Route, //
};

/// Atomic injection is not possible now; the caller falls back to process context.
pub(crate) struct WouldBlock;

/// One injection, as an irqfd makes it.
#[derive(Clone, Copy)]
pub(crate) struct Injection {
    pub(crate) gsi: u32,
    /// The GSI's route, read whole when the injection was made.
    pub(crate) route: Route,
    /// Level-triggered (a resample irqfd): the line stays asserted until [`Sink::ack`].
    pub(crate) level: bool,
}

/// What became of an injection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// A new interrupt was raised.
    Raised,
    /// Merged into an interrupt still pending on the line, or into an asserted level line.
    Coalesced,
    /// The GSI is masked: held by its pending latch until it is unmasked.
    Latched,
    /// The sink dropped it (a GSI it does not have; assign rules that out).
    Dropped,
}

/// Receives the interrupts of a context's irqfds.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Number of interrupt lines; valid GSIs are `0..nr_gsis()`.
    fn nr_gsis(&self) -> u32;

    /// Injects from atomic context, the eventfd's wakeup (`wake`): its wait-queue lock is held,
    /// interrupts are off, and the caller may be in hard-IRQ context. Must not sleep.
    fn inject_atomic(
        &self,
        injection: &Injection,
        wake: &WakeContext<'_>,
    ) -> Result<Injected, WouldBlock>;

    /// Injects from process context (the injection work item).
    fn inject(&self, injection: &Injection) -> Injected;

    /// Masks or unmasks `gsi`. Unmasking releases what the pending latch holds as one interrupt
    /// with `route`, the GSI's route now. `EINVAL` for a GSI out of range.
    fn set_masked(&self, gsi: u32, masked: bool, route: Route) -> Result;

    /// End of interrupt on `gsi`: deasserts its level line. Whether it was asserted.
    fn ack(&self, gsi: u32) -> Result<bool>;

    /// Deasserts `gsi`'s level line without an end of interrupt: its last resample irqfd left.
    /// Injections the mask latch holds are released as edges at the unmask.
    fn deassert(&self, gsi: u32);
}

// SPDX-License-Identifier: GPL-2.0

//! The seam between the irqfd core and whatever receives its interrupts.
//!
//! The core ([`crate::irqfd`], [`crate::context`], [`crate::shutdown`]) is generic over a
//! [`Sink`]. The module's own sink is the virtual interrupt controller of [`crate::irqchip`]; a
//! hypervisor driver would implement `Sink` for its interrupt controller instead.

/// Atomic injection is not possible now; the caller falls back to process context.
pub(crate) struct WouldBlock;

/// What became of an injection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// A new interrupt was raised.
    Raised,
    /// Merged into an interrupt still pending on the line.
    Coalesced,
    /// The sink dropped it (a GSI it does not have; assign rules that out).
    Dropped,
}

/// Receives the interrupts of a context's irqfds.
pub(crate) trait Sink: Send + Sync + 'static {
    /// Number of interrupt lines; valid GSIs are `0..nr_gsis()`.
    fn nr_gsis(&self) -> u32;

    /// Injects one edge on `gsi` from atomic context: the eventfd's wait-queue lock is held,
    /// interrupts are off, and the caller may be in hard-IRQ context. Must not sleep.
    fn inject_atomic(&self, gsi: u32) -> Result<Injected, WouldBlock>;

    /// Injects one edge on `gsi` from process context (the injection work item).
    fn inject(&self, gsi: u32) -> Injected;
}

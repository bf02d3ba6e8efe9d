// SPDX-License-Identifier: GPL-2.0

//! Test hooks: knobs that widen race windows so that the selftest hits them under TCG.
//!
//! They exist only in `TEST_HOOKS=1` builds (those the selftest runs on); in a production
//! build every hook is an empty inline function. The parameters live in `test_hooks.c`, since
//! `module!` cannot declare a parameter conditionally.

/// Sleeps for `test_inject_delay_us` before a deferred injection (process context only).
#[cfg(test_hooks)]
pub(crate) fn inject_delay() {
    use kernel::time::{delay::fsleep, Delta};

    // SAFETY: The function only reads a module parameter; it has no preconditions.
    let us = unsafe { crate::ffi::rust_irqfd_test_inject_delay_us() };
    if us != 0 {
        fsleep(Delta::from_micros(i64::from(us)));
    }
}

/// Production builds: no hook.
#[cfg(not(test_hooks))]
#[inline(always)]
pub(crate) fn inject_delay() {}

/// Busy-waits for `test_route_delay_us` in the middle of a route update (interrupts are off
/// there), so that an injection can meet a half-written route if the seqcount is missing.
#[cfg(test_hooks)]
pub(crate) fn route_delay() {
    // SAFETY: The function only reads a module parameter and busy-waits; no preconditions.
    unsafe { crate::ffi::rust_irqfd_test_route_delay() };
}

/// Production builds: no hook.
#[cfg(not(test_hooks))]
#[inline(always)]
pub(crate) fn route_delay() {}

/// Sleeps for `test_shutdown_delay_us` at the start of the shutdown work, before the wait entry
/// is removed: the irqfd is out of its context's tree (deactivated) but its wakeup still runs, the
/// window of race R21b (a route update and a signal while a deassign is in progress).
#[cfg(test_hooks)]
pub(crate) fn shutdown_delay() {
    use kernel::time::{delay::fsleep, Delta};

    // SAFETY: The function only reads a module parameter; it has no preconditions.
    let us = unsafe { crate::ffi::rust_irqfd_test_shutdown_delay_us() };
    if us != 0 {
        fsleep(Delta::from_micros(i64::from(us)));
    }
}

/// Production builds: no hook.
#[cfg(not(test_hooks))]
#[inline(always)]
pub(crate) fn shutdown_delay() {}

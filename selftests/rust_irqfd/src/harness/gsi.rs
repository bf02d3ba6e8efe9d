// SPDX-License-Identifier: GPL-2.0
//! The steps tests take on a GSI with the ABI v2 ioctls (route, mask, ACK)
//! and the checks of its level line, with the GSI and routes they use.

use std::os::fd::OwnedFd;

use crate::dev::Ctx;

use super::{drain, eq, ok, signal, stats, wait_until, Env, TestResult};

/// The GSI a test uses where one is enough: not 0, so that a slip to GSI 0
/// shows (the race scenarios use `G .. G + 4`).
pub const G: u32 = 1;

/// An MSI message: (`msi_addr`, `msi_data`).
pub type Route = (u64, u32);

/// Routes that differ in every byte of both fields, so that a record that
/// mixes the two shows whichever bytes it mixes.
pub const RA: Route = (0x1111_1111_fee0_1000, 0x1111_1111);
/// See [`RA`].
pub const RB: Route = (0x2222_2222_efd3_2ffc, 0x2222_2222);

/// Sets the route of `gsi`.
pub fn route(c: &Ctx, gsi: u32, r: Route) -> TestResult {
    ok(
        &format!("SET_ROUTE(gsi {gsi}, MSI {:#x}/{:#x})", r.0, r.1),
        c.set_route(gsi, r.0, r.1),
    )
}

/// Clears the route of `gsi`.
pub fn unroute(c: &Ctx, gsi: u32) -> TestResult {
    ok(&format!("SET_ROUTE(gsi {gsi}, clear)"), c.clear_route(gsi))
}

/// Masks or unmasks `gsi`.
pub fn mask(c: &Ctx, gsi: u32, on: bool) -> TestResult {
    ok(
        &format!(
            "SET_MASK(gsi {gsi}, {})",
            if on { "masked" } else { "unmasked" }
        ),
        c.set_mask(gsi, on),
    )
}

/// ACK of `gsi` must signal exactly `want` resamplefds.
pub fn expect_ack(c: &Ctx, gsi: u32, want: u32, when: &str) -> TestResult {
    let n = ok(&format!("ACK(gsi {gsi}) {when}"), c.ack(gsi))?;
    eq(
        &format!("resamplefds signalled by ACK(gsi {gsi}) {when}"),
        n,
        want,
    )
}

/// The level state of `gsi`: `asserted` as given, not masked, nothing
/// latched (and the per-GSI invariants hold).
pub fn expect_line(c: &Ctx, gsi: u32, asserted: u32, when: &str) -> TestResult {
    let s = stats(c, gsi)?;
    eq(
        &format!("gsi {gsi} (asserted, masked, latched) {when}"),
        (s.asserted, s.masked, s.latched),
        (asserted, 0, 0),
    )
}

/// Signals `efd`, a resample irqfd of `gsi`, waits until the line is
/// asserted, and reads the LEVEL record away.
pub fn assert_line(env: &Env, c: &Ctx, efd: &OwnedFd, gsi: u32) -> TestResult {
    signal(efd)?;
    wait_until(env, &format!("gsi {gsi} to be asserted"), || {
        let s = stats(c, gsi)?;
        Ok((s.asserted == 1, format!("{s:?}")))
    })?;
    drain(c).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes are valid (nonzero, 4-byte aligned), and A and B differ
    /// in every byte of both fields.
    #[test]
    fn routes_valid_and_distinct() {
        for (a, _) in [RA, RB] {
            assert!(a != 0 && a & 3 == 0, "{a:#x}");
        }
        let (x, y) = (RA.0.to_ne_bytes(), RB.0.to_ne_bytes());
        assert!(x.iter().zip(&y).all(|(a, b)| a != b));
        let (x, y) = (RA.1.to_ne_bytes(), RB.1.to_ne_bytes());
        assert!(x.iter().zip(&y).all(|(a, b)| a != b));
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Assertions on results and errnos, waits, eventfds and a context's
//! irqfd count.

use std::fmt::Debug;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{Env, TestResult};
use crate::dev::{Ctx, Kind};
use crate::sys::{self, Errno, SysResult};

/// `what` must succeed.
pub fn ok<T>(what: &str, r: SysResult<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: expected success, got {e}"))
}

/// `what` must fail with `want`.
pub fn fails<T: Debug>(what: &str, r: SysResult<T>, want: i32) -> TestResult {
    match r {
        Err(e) if e.0 == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {}, got {e}", Errno(want))),
        Ok(v) => Err(format!(
            "{what}: expected {}, got success ({v:?})",
            Errno(want)
        )),
    }
}

/// `got == want`.
pub fn eq<T: PartialEq + Debug>(what: &str, got: T, want: T) -> TestResult {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want:?}, got {got:?}"))
    }
}

/// `cond`, or fail with `msg`.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> TestResult {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// A new non-blocking eventfd.
pub fn new_eventfd() -> Result<OwnedFd, String> {
    ok(
        "eventfd(0, EFD_NONBLOCK)",
        sys::eventfd(0, libc::EFD_NONBLOCK),
    )
}

/// `N` new non-blocking eventfds, made one after the other.
pub fn new_eventfds<const N: usize>() -> Result<[OwnedFd; N], String> {
    let mut v = Vec::with_capacity(N);
    for _ in 0..N {
        v.push(new_eventfd()?);
    }
    v.try_into()
        .map_err(|v: Vec<OwnedFd>| format!("{} eventfds made, {N} wanted", v.len()))
}

/// Signals an eventfd once.
pub fn signal(efd: impl AsFd) -> TestResult {
    ok("write(eventfd, 1)", sys::eventfd_signal(efd.as_fd(), 1))
}

/// The counter of an eventfd nobody else reads (0 on `EAGAIN`), reset.
pub fn take_count(efd: &OwnedFd, what: &str) -> Result<u64, String> {
    match sys::eventfd_read(efd.as_fd()) {
        Ok(n) => Ok(n),
        Err(e) if e.0 == libc::EAGAIN => Ok(0),
        Err(e) => Err(format!("read({what}): expected a count or EAGAIN, got {e}")),
    }
}

/// The counter of `rfd` (a resamplefd) must be `want`: it was signalled
/// `want` times since it was last looked at (the counter is reset).
pub fn expect_signalled(rfd: &OwnedFd, want: u64, what: &str) -> TestResult {
    eq(&format!("signals on {what}"), take_count(rfd, what)?, want)
}

/// [`expect_signalled`], saying `when` too.
pub fn expect_signalled_when(rfd: &OwnedFd, want: u64, what: &str, when: &str) -> TestResult {
    eq(
        &format!("signals on {what} {when}"),
        take_count(rfd, what)?,
        want,
    )
}

/// `nr_irqfds` of `ctx`.
pub fn nr_irqfds(ctx: &Ctx) -> Result<u32, String> {
    Ok(ok("RUST_IRQFD_GET_INFO", ctx.info())?.nr_irqfds)
}

/// `nr_irqfds` of `ctx` must be `want`. A KVM VM has no count of its
/// irqfds: there this checks nothing (see [`crate::kvm`] for what the KVM
/// target checks instead).
pub fn expect_nr_irqfds(ctx: &Ctx, want: u32, when: &str) -> TestResult {
    if !counts_irqfds(ctx) {
        return Ok(());
    }
    eq(&format!("nr_irqfds {when}"), nr_irqfds(ctx)?, want)
}

/// `nr_gsis` of `ctx`: from `RUST_IRQFD_GET_INFO`, or the GSIs KVM
/// routes by default on a VM.
pub fn ctx_nr_gsis(ctx: &Ctx) -> Result<u32, String> {
    match ctx.kind() {
        Kind::Module => Ok(ok("RUST_IRQFD_GET_INFO", ctx.info())?.nr_gsis),
        Kind::Kvm => Ok(crate::kvm::info().nr_gsis),
    }
}

/// Whether `ctx` counts its irqfds (`nr_irqfds`, `shutdowns` of
/// `RUST_IRQFD_GET_INFO`): a module context does, a KVM VM does not.
pub fn counts_irqfds(ctx: &Ctx) -> bool {
    ctx.kind() == Kind::Module
}

/// Polls `cond` until it gives `true` or the timeout expires; `what` names
/// the awaited condition in the failure message, with the last state
/// `cond` reported.
pub fn wait_until(
    env: &Env,
    what: &str,
    mut cond: impl FnMut() -> Result<(bool, String), String>,
) -> TestResult {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let (done, state) = cond()?;
        if done {
            return Ok(());
        }
        if start.elapsed() >= env.timeout {
            return Err(format!(
                "timed out after {:?} waiting for {what} (last: {state})",
                env.timeout
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Waits until `nr_irqfds` of `ctx` is `want` (an `EPOLLHUP` shutdown ran);
/// `what` names the awaited event.
pub fn wait_nr_irqfds(env: &Env, ctx: &Ctx, want: u32, what: &str) -> TestResult {
    if !counts_irqfds(ctx) {
        return Ok(());
    }
    wait_until(env, what, || {
        let n = nr_irqfds(ctx)?;
        Ok((n == want, format!("nr_irqfds {n}")))
    })
}

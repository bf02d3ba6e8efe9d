// SPDX-License-Identifier: GPL-2.0
//! The racing calls of the scenarios: irqfd ioctls naming descriptors by
//! raw number (a number another thread may be closing, or that a new file
//! may have taken), the outcomes a racing call may have ([`racy`]: success
//! or one of the errnos the semantics allow, counted; [`must`] and
//! [`must_fail`]: the one outcome the scenario makes exact), and what
//! several scenarios share around them: short waits, a flooding writer,
//! an eventfd's counter, a context of the other module.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::NEED_GSIS;
use crate::abi::{RustIrqfd, FLAG_DEASSIGN};
use crate::dev::Ctx;
use crate::harness::{ok, Env, TestResult};
use crate::stress::Worker;
use crate::sys::{self, Errno, SysResult};

/// One mask flip of `gsi` racing `what`: mask, a random pause of up to
/// 100 us, unmask, another such pause; counted in `flips`.
pub(super) fn mask_flip(
    w: &mut Worker<'_>,
    ctx: &Ctx,
    gsi: u32,
    what: &str,
    flips: &AtomicU64,
) -> TestResult {
    must(
        w,
        &format!("SET_MASK(masked) racing {what}"),
        ctx.set_mask(gsi, true),
    )?;
    pause(Duration::from_micros(w.rand(100)));
    must(
        w,
        &format!("SET_MASK(unmasked) racing {what}"),
        ctx.set_mask(gsi, false),
    )?;
    flips.fetch_add(1, Relaxed);
    pause(Duration::from_micros(w.rand(100)));
    Ok(())
}

/// The raw number of a descriptor.
pub(super) fn raw(fd: &impl AsFd) -> RawFd {
    fd.as_fd().as_raw_fd()
}

/// RUST_IRQFD_IRQFD on the context, naming the eventfd by a raw number.
pub(super) fn irqfd_num(ctx: &Ctx, fd: RawFd, gsi: u32, flags: u32) -> SysResult<()> {
    ctx.irqfd(&RustIrqfd {
        fd: fd as u32,
        gsi,
        flags,
        ..Default::default()
    })
}

/// Assigns the eventfd numbered `fd` to `gsi`.
pub(super) fn assign_num(ctx: &Ctx, fd: RawFd, gsi: u32) -> SysResult<()> {
    irqfd_num(ctx, fd, gsi, 0)
}

/// Deassigns the eventfd numbered `fd` from `gsi`.
pub(super) fn deassign_num(ctx: &Ctx, fd: RawFd, gsi: u32) -> SysResult<()> {
    irqfd_num(ctx, fd, gsi, FLAG_DEASSIGN)
}

/// The irqfd command `cmd` ([`Ctx::irqfd_cmd`]) through a raw context
/// descriptor that may be closing.
pub(super) fn assign_via(cmd: u32, ctxfd: RawFd, fd: RawFd, gsi: u32) -> SysResult<()> {
    let mut req = RustIrqfd {
        fd: fd as u32,
        gsi,
        ..Default::default()
    };
    sys::ioctl_ptr_raw(ctxfd, cmd, &mut req).map(|_| ())
}

/// Errno names, "A or B".
pub(super) fn errnos(v: &[i32]) -> String {
    v.iter()
        .map(|&e| Errno(e).name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A racing call whose legitimate outcomes are success and `allowed`
/// (counted by errno): `Ok(true)` on success, `Ok(false)` on an allowed
/// error, a failure on anything else.
pub(super) fn racy(
    w: &mut Worker<'_>,
    what: &str,
    r: SysResult<()>,
    allowed: &[i32],
) -> Result<bool, String> {
    w.op();
    match r {
        Ok(()) => Ok(true),
        Err(e) if allowed.contains(&e.0) => {
            w.tally.error(e);
            Ok(false)
        }
        Err(e) => Err(format!(
            "{what}: expected success or {}, got {e}",
            errnos(allowed)
        )),
    }
}

/// A call the scenario makes exact: it must succeed.
pub(super) fn must(w: &mut Worker<'_>, what: &str, r: SysResult<()>) -> TestResult {
    w.op();
    ok(what, r)
}

/// A call the scenario makes exact: it must fail with `want` (counted).
pub(super) fn must_fail(w: &mut Worker<'_>, what: &str, r: SysResult<()>, want: i32) -> TestResult {
    w.op();
    match r {
        Err(e) if e.0 == want => {
            w.tally.error(e);
            Ok(())
        }
        Err(e) => Err(format!("{what}: expected {}, got {e}", Errno(want))),
        Ok(()) => Err(format!("{what}: expected {}, got success", Errno(want))),
    }
}

/// Waits `d`: yielding for short waits (a sleep takes tens of
/// microseconds), so that the other threads run on a small VM.
pub(super) fn pause(d: Duration) {
    if d < Duration::from_micros(50) {
        let t = Instant::now();
        while t.elapsed() < d {
            std::thread::yield_now();
        }
    } else {
        std::thread::sleep(d);
    }
}

/// A context of the other module, if its device is present and has the
/// GSIs the scenarios use: (context, its path for messages).
pub(super) fn peer_ctx(env: &Env) -> Result<Option<(Ctx, String)>, String> {
    for p in env.present_peers() {
        let c = env.open_path(&p)?;
        let n = ok("RUST_IRQFD_GET_INFO of the peer", c.info())?.nr_gsis;
        if n >= NEED_GSIS {
            return Ok(Some((c, p.display().to_string())));
        }
    }
    Ok(None)
}

/// `/dev/null`, a file that is no eventfd, read-write.
pub(super) fn open_devnull() -> Result<OwnedFd, String> {
    ok(
        "open(/dev/null)",
        sys::open(Path::new("/dev/null"), libc::O_RDWR),
    )
}

/// A flooding writer: writes 1 to `efd` until the budget is over; every
/// write must succeed (`what` names it in a failure).
pub(super) fn flood(w: &mut Worker<'_>, efd: BorrowedFd<'_>, what: &str) -> TestResult {
    w.repeat(|w| must(w, what, sys::eventfd_signal(efd, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_lists() {
        assert_eq!(errnos(&[libc::EBUSY, libc::EBADF]), "EBUSY or EBADF");
    }
}

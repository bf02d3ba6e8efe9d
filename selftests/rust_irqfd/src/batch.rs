// SPDX-License-Identifier: GPL-2.0
//! `RUST_IRQFD_IRQFD_BATCH`: many irqfds in one call, all or nothing on
//! assign (with the failed entry's index), one wait for all the shutdowns on
//! deassign, and every error of the header and of the entries.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use crate::abi::{
    RustIrqfd, RustIrqfdBatch, FLAG_DEASSIGN, FLAG_RESAMPLE, RUST_IRQFD_BATCH_MAX,
    RUST_IRQFD_IRQFD_BATCH,
};
use crate::dev::Ctx;
use crate::harness::{
    eq, expect_nr_irqfds, new_eventfd, ok, signal, stats, test, Env, Needs, Test, TestResult,
};
use crate::sys::{self, SysResult, TailGuard};

/// The batch tests, in run order.
pub const TESTS: &[Test] = &[
    test!(batch_assign_deassign, Needs::gsis(64)),
    test!(batch_assign_all_or_nothing, Needs::gsis(8)),
    test!(batch_errors, Needs::gsis(8)),
    test!(batch_entries_fault, Needs::gsis(4)),
    test!(batch_error_index_unwritable, Needs::gsis(8)),
];

/// A batch entry binding `fd` to `gsi`.
pub fn entry(fd: &impl AsRawFd, gsi: u32) -> RustIrqfd {
    RustIrqfd {
        fd: fd.as_raw_fd() as u32,
        gsi,
        ..Default::default()
    }
}

/// One entry per eventfd, the i-th on GSI i.
pub fn entries(efds: &[OwnedFd]) -> Vec<RustIrqfd> {
    efds.iter()
        .enumerate()
        .map(|(i, e)| entry(e, i as u32))
        .collect()
}

/// Issues a batch; the error and the `error_index` the kernel wrote back.
pub fn batch(
    ctx: &Ctx,
    entries: &[RustIrqfd],
    nr: u32,
    flags: u32,
    pad: u32,
) -> (SysResult<i32>, u32) {
    let mut b = RustIrqfdBatch {
        entries: entries.as_ptr() as u64,
        nr,
        flags,
        error_index: 0xdead_beef,
        pad,
    };
    let r = sys::ioctl_ptr(ctx.as_fd(), RUST_IRQFD_IRQFD_BATCH, &mut b);
    (r, b.error_index)
}

/// Expects success with `error_index == nr`.
fn batch_ok(what: &str, ctx: &Ctx, entries: &[RustIrqfd], flags: u32) -> TestResult {
    let nr = entries.len() as u32;
    let (r, idx) = batch(ctx, entries, nr, flags, 0);
    ok(what, r)?;
    eq(&format!("{what}: error_index"), idx, nr)
}

/// A batch header's `nr`, `flags` and `pad`.
type Header = (u32, u32, u32);

/// Expects `errno` with `error_index == index`.
fn batch_fails(
    what: &str,
    ctx: &Ctx,
    entries: &[RustIrqfd],
    (nr, flags, pad): Header,
    errno: i32,
    index: u32,
) -> TestResult {
    let (r, idx) = batch(ctx, entries, nr, flags, pad);
    crate::harness::fails(what, r, errno)?;
    eq(&format!("{what}: error_index"), idx, index)
}

fn eventfds(n: usize) -> Result<Vec<OwnedFd>, String> {
    (0..n).map(|_| new_eventfd()).collect()
}

/// 64 irqfds in one assign batch, each delivering; then one deassign batch
/// shuts them all down before it returns; then the same 64 with a closed
/// descriptor after them are all rolled back before the batch returns.
fn batch_assign_deassign(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = eventfds(64)?;
    let entries = entries(&efds);
    batch_ok("batch assign of 64", &c, &entries, 0)?;
    expect_nr_irqfds(&c, 64, "after the batch assign")?;
    for e in &efds {
        signal(e)?;
    }
    for g in 0..64 {
        crate::harness::wait_injected(env, &c, g, 1)?;
    }
    batch_ok("batch deassign of 64", &c, &entries, FLAG_DEASSIGN)?;
    expect_nr_irqfds(&c, 0, "after the batch deassign")?;
    eq(
        "shutdowns counted when the batch deassign returned",
        ok("GET_INFO", c.info())?.shutdowns,
        64,
    )?;
    // The same 64 and a closed descriptor last: all 64 are rolled back (more
    // than one lock section of the Rust module's rollback, 32 each).
    let closed = {
        let e = new_eventfd()?;
        e.as_raw_fd()
    };
    let mut with_bad = entries.clone();
    with_bad.push(RustIrqfd {
        fd: closed as u32,
        gsi: 0,
        ..Default::default()
    });
    batch_fails(
        "batch assign of 64 and a closed descriptor",
        &c,
        &with_bad,
        (65, 0, 0),
        libc::EBADF,
        64,
    )?;
    expect_nr_irqfds(&c, 0, "after the rolled-back batch of 65")?;
    eq(
        "shutdowns counted when the rolled-back batch returned",
        ok("GET_INFO", c.info())?.shutdowns,
        128,
    )?;
    // Nothing is bound any more: every eventfd binds again at once elsewhere.
    let d = env.open()?;
    batch_ok(
        "batch assign of the same 64 in another context",
        &d,
        &entries,
        0,
    )?;
    ok("close(other context)", d.close())?;
    let _ = stats(&c, 0)?;
    ok("close(context)", c.close())
}

/// A batch whose entry 5 fails leaves nothing assigned, whatever made it
/// fail: a pipe (EINVAL), the batch's own entry 1 again (EBUSY), an eventfd
/// bound in another context (EBUSY), a closed descriptor (EBADF). After
/// each, the good eventfds bind again at once (the rollback waited).
fn batch_assign_all_or_nothing(env: &Env) -> TestResult {
    let c = env.open()?;
    let other = env.open()?;
    let efds = eventfds(8)?;
    let busy = new_eventfd()?;
    ok("assign in another context", other.assign(&busy, 0))?;
    let (pipe_r, _pipe_w) = ok("pipe", sys::pipe())?;
    let closed = {
        let e = new_eventfd()?;
        let n = e.as_raw_fd();
        drop(e);
        n
    };
    let good = entries(&efds);
    let cases: [(&str, RustIrqfd, i32); 4] = [
        ("a pipe", entry(&pipe_r, 5), libc::EINVAL),
        ("entry 1 again", entry(&efds[1], 5), libc::EBUSY),
        (
            "an eventfd bound in another context",
            entry(&busy, 5),
            libc::EBUSY,
        ),
        (
            "a closed descriptor",
            RustIrqfd {
                fd: closed as u32,
                gsi: 5,
                ..Default::default()
            },
            libc::EBADF,
        ),
    ];
    for (what, bad, errno) in cases {
        let mut entries = good.clone();
        entries[5] = bad;
        batch_fails(
            &format!("batch assign with entry 5 {what}"),
            &c,
            &entries,
            (8, 0, 0),
            errno,
            5,
        )?;
        expect_nr_irqfds(&c, 0, &format!("after the batch with {what}"))?;
    }
    // The rollback was synchronous: every good eventfd binds at once.
    batch_ok("batch assign of the good entries", &c, &good, 0)?;
    expect_nr_irqfds(&c, 8, "after the good batch")?;
    ok("close(other context)", other.close())?;
    ok("close(context)", c.close())
}

/// The header's errors (`error_index == nr`) and the entries' (the entry's
/// index); a deassign batch with a bad descriptor deassigns nothing.
fn batch_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = eventfds(4)?;
    let entries = entries(&efds);
    batch_fails("nr 0", &c, &entries, (0, 0, 0), libc::EINVAL, 0)?;
    let big = RUST_IRQFD_BATCH_MAX + 1;
    batch_fails(
        "nr past the maximum",
        &c,
        &entries,
        (big, 0, 0),
        libc::EINVAL,
        big,
    )?;
    batch_fails(
        "flags RESAMPLE",
        &c,
        &entries,
        (4, FLAG_RESAMPLE, 0),
        libc::EINVAL,
        4,
    )?;
    batch_fails("flags bit 7", &c, &entries, (4, 1 << 7, 0), libc::EINVAL, 4)?;
    batch_fails("pad", &c, &entries, (4, 0, 1), libc::EINVAL, 4)?;
    // More entries than the buffer holds: the read runs into unmapped memory.
    let page = sys::GuardPage::new().map_err(|e| format!("guard page: {e}"))?;
    let mut b = RustIrqfdBatch {
        entries: page.addr() as u64,
        nr: 4,
        ..Default::default()
    };
    crate::harness::fails(
        "entries at an unmapped address",
        sys::ioctl_ptr(c.as_fd(), RUST_IRQFD_IRQFD_BATCH, &mut b),
        libc::EFAULT,
    )?;
    eq("error_index after EFAULT", b.error_index, 4)?;
    let mut flagged = entries.clone();
    flagged[2].flags = FLAG_DEASSIGN;
    batch_fails(
        "entry 2 with flags",
        &c,
        &flagged,
        (4, 0, 0),
        libc::EINVAL,
        2,
    )?;
    // ABI v2: RESAMPLE is valid for RUST_IRQFD_IRQFD, never in a batch
    // entry, even with a valid resamplefd.
    let rfd = new_eventfd()?;
    let mut level = entries.clone();
    level[2].flags = FLAG_RESAMPLE;
    level[2].resamplefd = sys::fd_u32(&rfd);
    batch_fails(
        "entry 2 with flags RESAMPLE and a valid resamplefd",
        &c,
        &level,
        (4, 0, 0),
        libc::EINVAL,
        2,
    )?;
    let mut padded = entries.clone();
    padded[3].pad[15] = 1;
    batch_fails("entry 3 with pad", &c, &padded, (4, 0, 0), libc::EINVAL, 3)?;
    let mut far = entries.clone();
    far[1].gsi = env.nr_gsis();
    batch_fails(
        "entry 1 gsi out of range",
        &c,
        &far,
        (4, 0, 0),
        libc::EINVAL,
        1,
    )?;
    expect_nr_irqfds(&c, 0, "after the refused batches")?;

    batch_ok("batch assign", &c, &entries, 0)?;
    let mut bad_fd = entries.clone();
    bad_fd[3].fd = u32::MAX;
    batch_fails(
        "deassign batch with entry 3 fd -1",
        &c,
        &bad_fd,
        (4, FLAG_DEASSIGN, 0),
        libc::EBADF,
        3,
    )?;
    expect_nr_irqfds(
        &c,
        4,
        "after the refused deassign batch (nothing deassigned)",
    )?;
    batch_ok("deassign batch", &c, &entries, FLAG_DEASSIGN)?;
    expect_nr_irqfds(&c, 0, "after the deassign batch")?;
    ok("close(context)", c.close())
}

/// A batch of 4 whose entries 0 and 1 are readable and entries 2 and 3 lie
/// on an unmapped page: the array cannot be read whole, which is the
/// header's fault (`entries`, `nr`), so `EFAULT` with `error_index` nr and
/// nothing done, whatever entry 1 is: a bad entry before the page does not
/// make it that entry's `EINVAL`. For assign and for deassign.
fn batch_entries_fault(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = eventfds(4)?;
    let good = entries(&efds);
    let size = std::mem::size_of::<RustIrqfd>();
    let n = env.nr_gsis();
    let bad_entries: [(&str, RustIrqfd); 4] = [
        ("entry 1 good", good[1]),
        (
            "entry 1 with flags",
            RustIrqfd {
                flags: FLAG_DEASSIGN,
                ..good[1]
            },
        ),
        (
            "entry 1 with pad",
            RustIrqfd {
                pad: [1; 16],
                ..good[1]
            },
        ),
        ("entry 1 gsi out of range", RustIrqfd { gsi: n, ..good[1] }),
    ];
    // Issues the batch with entries 2 and 3 unmapped, expects EFAULT with
    // error_index 4 and `bound` irqfds left.
    let faulting = |what: &str, flags: u32, e1: RustIrqfd, bound: u32| -> TestResult {
        let what = format!("{what}, entries 2 and 3 unmapped");
        let mut array = ok("mmap", TailGuard::new(2 * size))?;
        ok("entry 0", array.put(0, good[0]))?;
        ok("entry 1", array.put(1, e1))?;
        let mut b = RustIrqfdBatch {
            entries: array.addr() as u64,
            nr: 4,
            flags,
            error_index: 0xdead_beef,
            pad: 0,
        };
        let r = sys::ioctl_ptr(c.as_fd(), RUST_IRQFD_IRQFD_BATCH, &mut b);
        crate::harness::fails(&what, r, libc::EFAULT)?;
        eq(&format!("{what}: error_index"), b.error_index, 4)?;
        expect_nr_irqfds(&c, bound, &format!("after the batch with {what}"))
    };
    for (what, e1) in bad_entries {
        faulting(&format!("assign batch, {what}"), 0, e1, 0)?;
    }
    batch_ok("batch assign", &c, &good, 0)?;
    for (what, e1) in bad_entries {
        faulting(&format!("deassign batch, {what}"), FLAG_DEASSIGN, e1, 4)?;
    }
    batch_ok("batch deassign", &c, &good, FLAG_DEASSIGN)?;
    expect_nr_irqfds(&c, 0, "after the batch deassign")?;
    ok("close(context)", c.close())
}

/// A batch whose header is read-only, so that `error_index` cannot be
/// written back: `EFAULT`, and nothing done. An assign batch binds nothing
/// (not even for the time of the call: every eventfd binds in another
/// context at once), nor does one with a bad entry, and a deassign batch
/// leaves every irqfd bound and delivering. The kernel writes nothing.
fn batch_error_index_unwritable(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = eventfds(4)?;
    let good = entries(&efds);
    let (pipe_r, _pipe_w) = ok("pipe", sys::pipe())?;
    let mut bad = good.clone();
    bad[2] = entry(&pipe_r, 2);
    let at = std::mem::offset_of!(RustIrqfdBatch, error_index);
    let read_only = |what: &str, entries: &[RustIrqfd], flags: u32, bound: u32| -> TestResult {
        let what = format!("{what} with a read-only header");
        let mut header = ok(
            "mmap",
            TailGuard::new(std::mem::size_of::<RustIrqfdBatch>()),
        )?;
        let b = RustIrqfdBatch {
            entries: entries.as_ptr() as u64,
            nr: entries.len() as u32,
            flags,
            error_index: 0xdead_beef,
            pad: 0,
        };
        ok("header", header.put(0, b))?;
        ok("mprotect(PROT_READ)", header.seal())?;
        let r = header.ioctl(c.as_fd(), RUST_IRQFD_IRQFD_BATCH);
        crate::harness::fails(&what, r, libc::EFAULT)?;
        let index = header.bytes()[at..at + 4].try_into().ok();
        eq(
            &format!("{what}: error_index"),
            index.map(u32::from_ne_bytes),
            Some(0xdead_beef),
        )?;
        expect_nr_irqfds(&c, bound, &format!("after the {what}"))
    };
    read_only("assign batch", &good, 0, 0)?;
    read_only("assign batch, entry 2 a pipe", &bad, 0, 0)?;
    // Nothing was bound: every eventfd binds elsewhere at once.
    let d = env.open()?;
    batch_ok("batch assign in another context", &d, &good, 0)?;
    ok("close(other context)", d.close())?;

    batch_ok("batch assign", &c, &good, 0)?;
    read_only("deassign batch", &good, FLAG_DEASSIGN, 4)?;
    for (g, e) in efds.iter().enumerate() {
        crate::harness::signal_one(env, &c, e, g as u32)?;
    }
    batch_ok("batch deassign", &c, &good, FLAG_DEASSIGN)?;
    expect_nr_irqfds(&c, 0, "after the batch deassign")?;
    ok("close(context)", c.close())
}

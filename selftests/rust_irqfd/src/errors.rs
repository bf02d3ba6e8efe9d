// SPDX-License-Identifier: GPL-2.0
//! Error paths: every documented errno of the ioctls and of read(2), and the
//! order in which RUST_IRQFD_IRQFD checks its argument.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::abi::{
    io, ior, iow, iowr, RustIrqfd, RustIrqfdDelivery, RustIrqfdGsiStats, FLAG_DEASSIGN,
    FLAG_RESAMPLE, KVM_IRQFD, RUST_IRQFD_GET_INFO, RUST_IRQFD_GSI_STATS, RUST_IRQFD_IRQFD,
    RUST_IRQFD_MAGIC,
};
use crate::harness::{
    eq, expect_nothing, expect_nr_irqfds, fails, new_eventfd, ok, one_record, signal, test,
    wait_injected, Env, Needs, Test, TestResult,
};
use crate::sys::{self, GuardPage};

/// The error-path tests, in run order.
pub const TESTS: &[Test] = &[
    test!(unknown_ioctl_enotty, Needs::NONE),
    test!(irqfd_errors, Needs::NONE),
    test!(bad_pointer_efault, Needs::NONE),
    test!(gsi_stats_errors, Needs::NONE),
    test!(read_small_buffer_einval, Needs::NONE),
    test!(read_nonblock_eagain, Needs::NONE),
];

/// Commands the devices do not know, including near misses of the real
/// ones (wrong size, wrong direction, KVM's type byte): all `ENOTTY`.
fn unknown_ioctl_enotty(env: &Env) -> TestResult {
    let c = env.open()?;
    let m = RUST_IRQFD_MAGIC;
    let cmds = [
        ("_IO(0xB9, 0x7f)", io(m, 0x7f)),
        ("_IOR(0xB9, 0x02, 32 bytes) (unused nr)", ior(m, 0x02, 32)),
        (
            "_IOW(0xB9, 0x76, 4 bytes) (IRQFD with a wrong size)",
            iow(m, 0x76, 4),
        ),
        (
            "_IOWR(0xB9, 0x76, 32 bytes) (IRQFD with a wrong direction)",
            iowr(m, 0x76, 32),
        ),
        (
            "_IOW(0xB9, 0x00, 32 bytes) (GET_INFO with a wrong direction)",
            iow(m, 0x00, 32),
        ),
        (
            "_IOR(0xB9, 0x01, 48 bytes) (GSI_STATS with a wrong direction)",
            ior(m, 0x01, 48),
        ),
        ("KVM_IRQFD", KVM_IRQFD),
    ];
    let mut errs = Vec::new();
    for (what, cmd) in cmds {
        // A valid, zeroed buffer: if the command were decoded anyway, no
        // EFAULT would hide it.
        let mut buf = [0u8; 64];
        if let Err(m) = fails(
            &format!("ioctl {what} = {cmd:#010x}"),
            sys::ioctl_ptr(c.as_fd(), cmd, &mut buf),
            libc::ENOTTY,
        ) {
            errs.push(m);
        }
    }
    if errs.is_empty() {
        expect_nr_irqfds(&c, 0, "after the unknown ioctls")
    } else {
        Err(errs.join("\n"))
    }
}

/// Descriptors that are not eventfds, kept open for the table.
struct NotEventfds {
    pipe: (OwnedFd, OwnedFd),
    memfd: OwnedFd,
    devnull: OwnedFd,
}

fn not_eventfds() -> Result<NotEventfds, String> {
    Ok(NotEventfds {
        pipe: ok("pipe2", sys::pipe())?,
        memfd: ok("memfd_create", sys::memfd("rust_irqfd_test"))?,
        devnull: ok(
            "open(/dev/null)",
            sys::open(Path::new("/dev/null"), libc::O_RDWR),
        )?,
    })
}

/// A descriptor number that is not open (opened, then closed).
fn closed_fd() -> Result<u32, String> {
    let e = new_eventfd()?;
    let n = sys::fd_u32(&e);
    ok("close(eventfd)", sys::close(e))?;
    Ok(n)
}

/// Every documented error of RUST_IRQFD_IRQFD, for assign and deassign,
/// with rows that pin down the order of the checks (an earlier check wins
/// over a later one that would also fail). Nothing gets bound by them.
fn irqfd_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    let other = not_eventfds()?;
    // Last, so that no descriptor is opened after it and reuses its number.
    let closed = closed_fd()?;

    let ev = sys::fd_u32(&e);
    let n = env.nr_gsis();
    let bad_fd = u32::MAX; // -1
    let pad = |i: usize| {
        let mut p = [0u8; 16];
        p[i] = 1;
        p
    };
    let req = |fd: u32, gsi: u32, flags: u32| RustIrqfd {
        fd,
        gsi,
        flags,
        ..Default::default()
    };
    let d = FLAG_DEASSIGN;

    // (what, request, expected errno or None for success)
    let rows: Vec<(&str, RustIrqfd, Option<i32>)> = vec![
        // 1. unknown flag bits
        ("assign: flag bit 2", req(ev, 0, 1 << 2), Some(libc::EINVAL)),
        (
            "assign: flag bit 31",
            req(ev, 0, 1 << 31),
            Some(libc::EINVAL),
        ),
        (
            "assign: flag bit 2 and fd -1 (flags checked before fd)",
            req(bad_fd, 0, 1 << 2),
            Some(libc::EINVAL),
        ),
        (
            "deassign: flag bit 2",
            req(ev, 0, d | 1 << 2),
            Some(libc::EINVAL),
        ),
        (
            "deassign: flag bit 2 and fd -1 (flags checked before fd)",
            req(bad_fd, 0, d | 1 << 2),
            Some(libc::EINVAL),
        ),
        // 2. pad
        (
            "assign: pad[0] = 1",
            RustIrqfd {
                pad: pad(0),
                ..req(ev, 0, 0)
            },
            Some(libc::EINVAL),
        ),
        (
            "assign: pad[15] = 1",
            RustIrqfd {
                pad: pad(15),
                ..req(ev, 0, 0)
            },
            Some(libc::EINVAL),
        ),
        (
            "assign: pad[7] = 1 and fd -1 (pad checked before fd)",
            RustIrqfd {
                pad: pad(7),
                ..req(bad_fd, 0, 0)
            },
            Some(libc::EINVAL),
        ),
        (
            "deassign: pad[0] = 1",
            RustIrqfd {
                pad: pad(0),
                ..req(ev, 0, d)
            },
            Some(libc::EINVAL),
        ),
        (
            "deassign: pad[3] = 1 and fd -1 (pad checked before fd)",
            RustIrqfd {
                pad: pad(3),
                ..req(bad_fd, 0, d)
            },
            Some(libc::EINVAL),
        ),
        // 3. RESAMPLE on assign
        (
            "assign: RESAMPLE with a valid resamplefd",
            RustIrqfd {
                resamplefd: sys::fd_u32(&r),
                ..req(ev, 0, FLAG_RESAMPLE)
            },
            Some(libc::EINVAL),
        ),
        (
            "assign: RESAMPLE and fd -1 (RESAMPLE checked before fd)",
            req(bad_fd, 0, FLAG_RESAMPLE),
            Some(libc::EINVAL),
        ),
        // 4. gsi range
        ("assign: gsi = nr_gsis", req(ev, n, 0), Some(libc::EINVAL)),
        (
            "assign: gsi = 0xffffffff",
            req(ev, u32::MAX, 0),
            Some(libc::EINVAL),
        ),
        (
            "assign: gsi = nr_gsis and fd -1 (gsi checked before fd)",
            req(bad_fd, n, 0),
            Some(libc::EINVAL),
        ),
        // 5. fd
        ("assign: fd -1", req(bad_fd, 0, 0), Some(libc::EBADF)),
        (
            "assign: fd 0x7fffffff",
            req(0x7fff_ffff, 0, 0),
            Some(libc::EBADF),
        ),
        ("assign: a closed fd", req(closed, 0, 0), Some(libc::EBADF)),
        (
            "assign: a pipe",
            req(sys::fd_u32(&other.pipe.0), 0, 0),
            Some(libc::EINVAL),
        ),
        (
            "assign: a pipe's write end",
            req(sys::fd_u32(&other.pipe.1), 0, 0),
            Some(libc::EINVAL),
        ),
        (
            "assign: a memfd (regular file)",
            req(sys::fd_u32(&other.memfd), 0, 0),
            Some(libc::EINVAL),
        ),
        (
            "assign: /dev/null",
            req(sys::fd_u32(&other.devnull), 0, 0),
            Some(libc::EINVAL),
        ),
        (
            "assign: the context's own fd",
            req(sys::fd_u32(&c), 0, 0),
            Some(libc::EINVAL),
        ),
        ("deassign: fd -1", req(bad_fd, 0, d), Some(libc::EBADF)),
        (
            "deassign: a closed fd",
            req(closed, 0, d),
            Some(libc::EBADF),
        ),
        (
            "deassign: gsi = 0xffffffff and fd -1 (gsi not checked, fd is)",
            req(bad_fd, u32::MAX, d),
            Some(libc::EBADF),
        ),
        (
            "deassign: a pipe",
            req(sys::fd_u32(&other.pipe.0), 0, d),
            Some(libc::EINVAL),
        ),
        (
            "deassign: a memfd (regular file)",
            req(sys::fd_u32(&other.memfd), 0, d),
            Some(libc::EINVAL),
        ),
        // Deassign ignores RESAMPLE and does not range-check gsi.
        (
            "deassign: RESAMPLE is ignored",
            req(ev, 0, d | FLAG_RESAMPLE),
            None,
        ),
        (
            "deassign: gsi = 0xffffffff is not range checked",
            req(ev, u32::MAX, d),
            None,
        ),
    ];

    let mut errs = Vec::new();
    for (what, rq, want) in &rows {
        let got = c.irqfd(rq);
        let res = match want {
            Some(errno) => fails(what, got, *errno),
            None => ok(what, got),
        };
        if let Err(m) = res {
            errs.push(format!("{m} [request {rq:?}]"));
        }
    }
    if !errs.is_empty() {
        return Err(format!(
            "{} of {} rows failed:\n{}",
            errs.len(),
            rows.len(),
            errs.join("\n")
        ));
    }

    expect_nr_irqfds(&c, 0, "after the refused requests")?;
    // The refused requests left the eventfd free: it binds and works.
    ok("assign(gsi 0) after the table", c.assign(&e, 0))?;
    signal(&e)?;
    one_record(env, &c, 0, 1)?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))
}

/// A bad argument pointer gives EFAULT for every ioctl, and a bad read(2)
/// buffer gives EFAULT.
fn bad_pointer_efault(env: &Env) -> TestResult {
    let c = env.open()?;
    let guard = ok("mmap(PROT_NONE)", GuardPage::new())?;
    let cmds = [
        ("RUST_IRQFD_IRQFD", RUST_IRQFD_IRQFD),
        ("RUST_IRQFD_GET_INFO", RUST_IRQFD_GET_INFO),
        ("RUST_IRQFD_GSI_STATS", RUST_IRQFD_GSI_STATS),
    ];
    let addrs = [("8", 8usize), ("a PROT_NONE page", guard.addr())];
    let mut errs = Vec::new();
    for (name, cmd) in cmds {
        for (aname, addr) in addrs {
            // SAFETY: address 8 is below mmap_min_addr and the guard page is
            // PROT_NONE: the kernel cannot write any memory we use.
            let got = unsafe { sys::ioctl_addr(c.as_fd(), cmd, addr) };
            if let Err(m) = fails(&format!("{name} with arg = {aname}"), got, libc::EFAULT) {
                errs.push(m);
            }
        }
    }
    if !errs.is_empty() {
        return Err(errs.join("\n"));
    }
    expect_nr_irqfds(&c, 0, "after the faulting ioctls")?;

    // read(2) into a bad buffer, with a record pending.
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    signal(&e)?;
    wait_injected(env, &c, 0, 1)?;
    let len = RustIrqfdDelivery::SIZE;
    // SAFETY: as above.
    let got = unsafe { sys::read_addr(c.as_fd(), guard.addr(), len) };
    fails(
        "read(context) into a PROT_NONE page with a record pending",
        got,
        libc::EFAULT,
    )?;
    // SAFETY: as above.
    let got = unsafe { sys::read_addr(c.as_fd(), 8, len) };
    match got {
        Err(e) if e.0 == libc::EFAULT || e.0 == libc::EAGAIN => Ok(()),
        other => Err(format!(
            "read(context) into address 8: expected EFAULT (or EAGAIN if the first bad read consumed the record), got {}",
            other.map(|n| format!("{n} bytes")).unwrap_or_else(|e| e.name())
        )),
    }
}

/// GSI_STATS refuses an out-of-range gsi or a non-zero pad, and fills every
/// out field for a valid one.
fn gsi_stats_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let n = env.nr_gsis();
    fails(
        &format!("GSI_STATS(gsi {n} = nr_gsis)"),
        c.stats_raw(n, 0),
        libc::EINVAL,
    )?;
    fails(
        "GSI_STATS(gsi 0xffffffff)",
        c.stats_raw(u32::MAX, 0),
        libc::EINVAL,
    )?;
    fails("GSI_STATS(gsi 0, pad 1)", c.stats_raw(0, 1), libc::EINVAL)?;
    fails(
        "GSI_STATS(gsi 0, pad 0x80000000)",
        c.stats_raw(0, 0x8000_0000),
        libc::EINVAL,
    )?;
    fails(
        &format!("GSI_STATS(gsi {n}, pad 1)"),
        c.stats_raw(n, 1),
        libc::EINVAL,
    )?;
    let last = n - 1;
    let s = ok(&format!("GSI_STATS(gsi {last})"), c.stats_raw(last, 0))?;
    eq(
        &format!("GSI_STATS(gsi {last}) of a fresh context (out fields pre-filled with 0xa5)"),
        s,
        RustIrqfdGsiStats {
            gsi: last,
            ..Default::default()
        },
    )
}

/// A buffer smaller than one record gives EINVAL, and leaves the pending
/// record in place.
fn read_small_buffer_einval(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    signal(&e)?;
    wait_injected(env, &c, 0, 1)?;
    let sz = RustIrqfdDelivery::SIZE;
    for len in [sz - 1, 8, 1, 0] {
        fails(
            &format!("read(context, {len} bytes) with a record pending"),
            c.read_len(len),
            libc::EINVAL,
        )?;
    }
    let d = one_record(env, &c, 0, 1)?;
    eq("seq of the record after the refused reads", d.seq, 1)
}

/// Nothing pending on an O_NONBLOCK context: EAGAIN, before and after
/// records come and go.
fn read_nonblock_eagain(env: &Env) -> TestResult {
    let c = env.open()?;
    expect_nothing(&c, "on a fresh context")?;
    fails(
        "read(context, 400 bytes) on a fresh context",
        c.read_len(400),
        libc::EAGAIN,
    )?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    expect_nothing(&c, "after assign, before any signal")?;
    signal(&e)?;
    one_record(env, &c, 0, 1)?;
    expect_nothing(&c, "after the record was read")?;
    // O_NONBLOCK set later with fcntl counts too.
    let b = ok(
        "open(O_RDWR) blocking",
        crate::dev::Ctx::open_flags(&env.device, libc::O_RDWR),
    )?;
    ok(
        "fcntl(F_SETFL, O_NONBLOCK)",
        sys::set_nonblock(b.as_fd(), true),
    )?;
    fails(
        "read(context) after fcntl(O_NONBLOCK)",
        b.read_len(RustIrqfdDelivery::SIZE),
        libc::EAGAIN,
    )?;
    Ok(())
}

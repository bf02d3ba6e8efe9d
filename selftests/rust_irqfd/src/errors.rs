// SPDX-License-Identifier: GPL-2.0
//! Error paths: every documented errno of the ioctls and of read(2), and the
//! order in which RUST_IRQFD_IRQFD checks its argument.

use std::fmt::Debug;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use libc::{EBADF, EBUSY, EINVAL};

use crate::abi::{
    io, ior, iow, iowr, RustIrqfd, RustIrqfdAck, RustIrqfdDelivery, RustIrqfdMask, RustIrqfdRoute,
    DELIVERY_MSI, FLAG_DEASSIGN, FLAG_RESAMPLE, KVM_IRQFD, MASK_MASKED, ROUTE_MSI, RUST_IRQFD_ACK,
    RUST_IRQFD_GET_INFO, RUST_IRQFD_GSI_STATS, RUST_IRQFD_IRQFD, RUST_IRQFD_MAGIC,
    RUST_IRQFD_SET_MASK, RUST_IRQFD_SET_ROUTE,
};
use crate::dev::{msi_route, no_route, Ctx, Kind};
use crate::harness::{
    check_record_any, ensure, eq, expect_full, expect_nothing, expect_nr_irqfds, fails, gsi_stats,
    inject, new_eventfd, ok, one_record, read_n, signal, signal_one, stats, test, Env, Needs, Test,
    TestResult,
};
use crate::sys::{self, BadAddr, GuardPage, SysResult, TailGuard};

/// The error-path tests, in run order.
pub const TESTS: &[Test] = &[
    test!(unknown_ioctl_enotty, Needs::NONE),
    test!(irqfd_errors, Needs::NONE),
    test!(bad_pointer_efault, Needs::NONE),
    test!(gsi_stats_errors, Needs::NONE),
    test!(set_route_errors, Needs::gsis(2), [Inject]),
    test!(set_mask_errors, Needs::gsis(2), [Inject]),
    test!(ack_errors, Needs::gsis(2)),
    test!(read_small_buffer_einval, Needs::NONE),
    test!(read_nonblock_eagain, Needs::NONE),
    test!(read_fault_tail, Needs::gsis(READ_FAULT_GSIS)),
];

/// Near misses of the real commands: (direction, nr, size, what it
/// misses), on the devices' type byte.
const NEAR_MISSES: [(&str, u32, usize, &str); 15] = [
    ("IO", 0x7f, 0, ""),
    ("IOR", 0x02, 32, "BATCH with a wrong size and direction"),
    ("IO", 0x06, 0, "unused nr"),
    ("IOW", 0x06, 8, "unused nr"),
    ("IOW", 0x76, 4, "IRQFD with a wrong size"),
    ("IOWR", 0x76, 32, "IRQFD with a wrong direction"),
    ("IOW", 0x00, 32, "GET_INFO with a wrong direction"),
    ("IOR", 0x01, 48, "GSI_STATS with a wrong direction"),
    ("IOWR", 0x01, 48, "the ABI v1 GSI_STATS, 0xc030b901"),
    ("IOW", 0x03, 16, "SET_ROUTE with a wrong size"),
    ("IOWR", 0x03, 24, "SET_ROUTE with a wrong direction"),
    ("IOR", 0x04, 8, "SET_MASK with a wrong direction"),
    ("IOW", 0x04, 4, "SET_MASK with a wrong size"),
    ("IOWR", 0x05, 8, "ACK with a wrong direction"),
    ("IOW", 0x05, 16, "ACK with a wrong size"),
];

/// A near miss as a command, and its name as the header's macros write it:
/// `_IOW(0xB9, 0x76, 4 bytes) (IRQFD with a wrong size)`.
fn near_miss((dir, nr, size, miss): (&str, u32, usize, &str)) -> (String, u32) {
    let m = RUST_IRQFD_MAGIC;
    let cmd = match dir {
        "IO" => io(m, nr),
        "IOR" => ior(m, nr, size),
        "IOW" => iow(m, nr, size),
        _ => iowr(m, nr, size),
    };
    let size = if dir == "IO" {
        String::new()
    } else {
        format!(", {size} bytes")
    };
    let miss = if miss.is_empty() {
        String::new()
    } else {
        format!(" ({miss})")
    };
    (format!("_{dir}({m:#X}, {nr:#04x}{size}){miss}"), cmd)
}

/// Every check runs; the failures are reported together, one a line.
fn all(checks: impl IntoIterator<Item = TestResult>) -> TestResult {
    let errs: Vec<String> = checks.into_iter().filter_map(Result::err).collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n"))
    }
}

/// Commands the devices do not know, including near misses of the real
/// ones (wrong size, wrong direction, KVM's type byte): all `ENOTTY`.
fn unknown_ioctl_enotty(env: &Env) -> TestResult {
    let c = env.open()?;
    let cmds = NEAR_MISSES
        .into_iter()
        .map(near_miss)
        .chain([("KVM_IRQFD".to_string(), KVM_IRQFD)]);
    all(cmds.map(|(what, cmd)| {
        // A valid, zeroed buffer: if the command were decoded anyway, no
        // EFAULT would hide it.
        let mut buf = [0u8; 64];
        fails(
            &format!("ioctl {what} = {cmd:#010x}"),
            sys::ioctl_ptr(c.as_fd(), cmd, &mut buf),
            libc::ENOTTY,
        )
    }))?;
    expect_nr_irqfds(&c, 0, "after the unknown ioctls")
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
    // An eventfd bound in another context: EBUSY comes after the checks of
    // the descriptors.
    let oc = env.open()?;
    let bound = new_eventfd()?;
    ok("other context: assign(gsi 0)", oc.assign(&bound, 0))?;
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
    let rv = sys::fd_u32(&r);
    // A request with `resamplefd`; a RESAMPLE assign; flag bit 2 added.
    let rreq = |fd: u32, gsi: u32, flags: u32, resamplefd: u32| RustIrqfd {
        resamplefd,
        ..req(fd, gsi, flags)
    };
    let rs = |fd: u32, gsi: u32, resamplefd: u32| rreq(fd, gsi, FLAG_RESAMPLE, resamplefd);
    let flag2 = |r: RustIrqfd| RustIrqfd {
        flags: r.flags | 1 << 2,
        ..r
    };
    let padded = |i: usize, r: RustIrqfd| RustIrqfd { pad: pad(i), ..r };
    let pipe_fd = sys::fd_u32(&other.pipe.0);
    let pipe_w = sys::fd_u32(&other.pipe.1);
    let (memfd, devnull) = (sys::fd_u32(&other.memfd), sys::fd_u32(&other.devnull));
    let (own, busy) = (sys::fd_u32(&c), sys::fd_u32(&bound));

    let flags_pad = [
        // 1. unknown flag bits
        ("assign: flag bit 2", req(ev, 0, 1 << 2), EINVAL),
        ("assign: flag bit 31", req(ev, 0, 1 << 31), EINVAL),
        (
            "assign: flag bit 2 and fd -1 (flags checked before fd)",
            req(bad_fd, 0, 1 << 2),
            EINVAL,
        ),
        ("deassign: flag bit 2", req(ev, 0, d | 1 << 2), EINVAL),
        (
            "deassign: flag bit 2 and fd -1 (flags checked before fd)",
            req(bad_fd, 0, d | 1 << 2),
            EINVAL,
        ),
        // 2. pad
        ("assign: pad[0] = 1", padded(0, req(ev, 0, 0)), EINVAL),
        ("assign: pad[15] = 1", padded(15, req(ev, 0, 0)), EINVAL),
        (
            "assign: pad[7] = 1 and fd -1 (pad checked before fd)",
            padded(7, req(bad_fd, 0, 0)),
            EINVAL,
        ),
        ("deassign: pad[0] = 1", padded(0, req(ev, 0, d)), EINVAL),
        (
            "deassign: pad[3] = 1 and fd -1 (pad checked before fd)",
            padded(3, req(bad_fd, 0, d)),
            EINVAL,
        ),
    ];
    // 3. RESAMPLE with a bad resamplefd, and where its check comes (after
    //    flags, pad, gsi and fd; before EBUSY): `assign: RESAMPLE, ...`.
    let resample = [
        ("resamplefd -1", rs(ev, 0, bad_fd), EBADF),
        ("resamplefd 0x7fffffff", rs(ev, 0, 0x7fff_ffff), EBADF),
        ("a closed resamplefd", rs(ev, 0, closed), EBADF),
        ("resamplefd a pipe", rs(ev, 0, pipe_fd), EINVAL),
        ("resamplefd a pipe's write end", rs(ev, 0, pipe_w), EINVAL),
        ("resamplefd a memfd", rs(ev, 0, memfd), EINVAL),
        ("resamplefd /dev/null", rs(ev, 0, devnull), EINVAL),
        ("resamplefd the context's own fd", rs(ev, 0, own), EINVAL),
        (
            "flag bit 2, a valid resamplefd",
            flag2(rs(ev, 0, rv)),
            EINVAL,
        ),
        (
            "flag bit 2 and resamplefd -1 (flags checked before resamplefd)",
            flag2(rs(ev, 0, bad_fd)),
            EINVAL,
        ),
        (
            "pad[0] = 1 and resamplefd -1 (pad checked before resamplefd)",
            padded(0, rs(ev, 0, bad_fd)),
            EINVAL,
        ),
        ("gsi = nr_gsis, a valid resamplefd", rs(ev, n, rv), EINVAL),
        (
            "gsi = nr_gsis and resamplefd -1 (gsi checked before resamplefd)",
            rs(ev, n, bad_fd),
            EINVAL,
        ),
        ("fd -1, a valid resamplefd", rs(bad_fd, 0, rv), EBADF),
        (
            "fd -1 and resamplefd a pipe (fd checked before resamplefd)",
            rs(bad_fd, 0, pipe_fd),
            EBADF,
        ),
        (
            "fd a pipe and resamplefd -1 (fd checked before resamplefd)",
            rs(pipe_fd, 0, bad_fd),
            EINVAL,
        ),
        (
            "an eventfd bound in another context, a valid resamplefd",
            rs(busy, 0, rv),
            EBUSY,
        ),
        (
            "an eventfd bound in another context and resamplefd -1 \
             (resamplefd checked before EBUSY)",
            rs(busy, 0, bad_fd),
            EBADF,
        ),
        (
            "an eventfd bound in another context and resamplefd a pipe \
             (resamplefd checked before EBUSY)",
            rs(busy, 0, pipe_fd),
            EINVAL,
        ),
    ];
    let gsi_fd = [
        // 4. gsi range
        ("assign: gsi = nr_gsis", req(ev, n, 0), EINVAL),
        ("assign: gsi = 0xffffffff", req(ev, u32::MAX, 0), EINVAL),
        (
            "assign: gsi = nr_gsis and fd -1 (gsi checked before fd)",
            req(bad_fd, n, 0),
            EINVAL,
        ),
        // 5. fd
        ("assign: fd -1", req(bad_fd, 0, 0), EBADF),
        ("assign: fd 0x7fffffff", req(0x7fff_ffff, 0, 0), EBADF),
        ("assign: a closed fd", req(closed, 0, 0), EBADF),
        ("assign: a pipe", req(pipe_fd, 0, 0), EINVAL),
        ("assign: a pipe's write end", req(pipe_w, 0, 0), EINVAL),
        ("assign: a memfd (regular file)", req(memfd, 0, 0), EINVAL),
        ("assign: /dev/null", req(devnull, 0, 0), EINVAL),
        ("assign: the context's own fd", req(own, 0, 0), EINVAL),
        ("deassign: fd -1", req(bad_fd, 0, d), EBADF),
        ("deassign: a closed fd", req(closed, 0, d), EBADF),
        (
            "deassign: gsi = 0xffffffff and fd -1 (gsi not checked, fd is)",
            req(bad_fd, u32::MAX, d),
            EBADF,
        ),
        ("deassign: a pipe", req(pipe_fd, 0, d), EINVAL),
        ("deassign: a memfd (regular file)", req(memfd, 0, d), EINVAL),
        // Deassign ignores RESAMPLE (and resamplefd) and does not
        // range-check gsi.
        (
            "deassign: RESAMPLE is ignored",
            req(ev, 0, d | FLAG_RESAMPLE),
            OK,
        ),
        (
            "deassign: RESAMPLE with resamplefd -1 is ignored",
            rreq(ev, 0, d | FLAG_RESAMPLE, bad_fd),
            OK,
        ),
        (
            "deassign: gsi = 0xffffffff is not range checked",
            req(ev, u32::MAX, d),
            OK,
        ),
    ];
    let rows: Vec<(String, RustIrqfd, i32)> = flags_pad
        .into_iter()
        .map(|(what, rq, errno)| (what.to_string(), rq, errno))
        .chain(resample.map(|(what, rq, errno)| (format!("assign: RESAMPLE, {what}"), rq, errno)))
        .chain(gsi_fd.map(|(what, rq, errno)| (what.to_string(), rq, errno)))
        .collect();

    // KVM checks neither the pad nor, on assign, the GSI's range: its
    // answers to those rows are the ones of the rest of the request, and
    // `kvm_unchecked` pins what it does with such requests alone.
    let rows: Vec<_> = match c.kind() {
        Kind::Module => rows,
        Kind::Kvm => {
            kvm_unchecked(&c, n)?;
            rows.into_iter()
                .filter(|(_, rq, _)| {
                    rq.pad == [0; 16] && (rq.flags & FLAG_DEASSIGN != 0 || rq.gsi < n)
                })
                .collect()
        }
    };
    table(&rows, |rq| c.irqfd(rq))?;

    expect_nr_irqfds(&c, 0, "after the refused requests")?;
    expect_nr_irqfds(&oc, 1, "of the other context after the refused requests")?;
    // The refused requests left the eventfd free: it binds and works.
    ok("assign(gsi 0) after the table", c.assign(&e, 0))?;
    signal_one(env, &c, &e, 0)?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))?;
    // And as a resample irqfd, with the resamplefd of the refused rows
    // (none of them kept a reference that would make it busy or signal it).
    ok(
        "assign(gsi 0, RESAMPLE) after the table",
        c.assign_resample(&e, 0, &r),
    )?;
    ok("deassign(gsi 0) of the resample irqfd", c.deassign(&e, 0))?;
    fails(
        "read(resamplefd) (nothing acked it)",
        sys::eventfd_read(r.as_fd()),
        libc::EAGAIN,
    )
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
        ("RUST_IRQFD_SET_ROUTE", RUST_IRQFD_SET_ROUTE),
        ("RUST_IRQFD_SET_MASK", RUST_IRQFD_SET_MASK),
        ("RUST_IRQFD_ACK", RUST_IRQFD_ACK),
    ];
    let addrs = [
        ("8", BadAddr::Low),
        ("a PROT_NONE page", BadAddr::Guard(&guard)),
    ];
    all(cmds.into_iter().flat_map(|(name, cmd)| {
        addrs.map(|(aname, addr)| {
            let got = sys::ioctl_bad_addr(c.as_fd(), cmd, addr);
            fails(&format!("{name} with arg = {aname}"), got, libc::EFAULT)
        })
    }))?;
    expect_nr_irqfds(&c, 0, "after the faulting ioctls")?;

    // read(2) into a bad buffer, with a record pending.
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    inject(env, &c, &e, 0, 1)?;
    let len = RustIrqfdDelivery::SIZE;
    let got = sys::read_bad_addr(c.as_fd(), BadAddr::Guard(&guard), len);
    fails(
        "read(context) into a PROT_NONE page with a record pending",
        got,
        libc::EFAULT,
    )?;
    let got = sys::read_bad_addr(c.as_fd(), BadAddr::Low, len);
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
        gsi_stats!(last),
    )
}

/// A row of a table that must succeed (the others give their errno).
const OK: i32 = 0;

/// Runs a table of requests: `(what, request, errno)`, each expecting that
/// errno (or success, [`OK`]); every row runs, the failures are reported
/// together.
/// What KVM does with the requests the modules refuse and it does not
/// check (the two rows of "Differences from KVM" in the documentation):
/// an assign with a GSI past its routes binds (and injects nothing), and a
/// non-zero pad changes nothing, on assign and on deassign.
fn kvm_unchecked(c: &Ctx, nr_gsis: u32) -> TestResult {
    for gsi in [nr_gsis, u32::MAX] {
        let e = new_eventfd()?;
        ok(
            &format!("KVM: assign(gsi {gsi:#x}), past its routes"),
            c.assign(&e, gsi),
        )?;
        fails(
            &format!("KVM: assign(the same eventfd, gsi {gsi:#x}) again"),
            c.assign(&e, gsi),
            EBUSY,
        )?;
        ok(&format!("KVM: deassign(gsi {gsi:#x})"), c.deassign(&e, gsi))?;
    }
    let e = new_eventfd()?;
    let mut rq = RustIrqfd {
        fd: sys::fd_u32(&e),
        ..Default::default()
    };
    rq.pad[15] = 0xff;
    ok("KVM: assign with pad[15] = 0xff", c.irqfd(&rq))?;
    rq.flags = FLAG_DEASSIGN;
    ok("KVM: deassign with pad[15] = 0xff", c.irqfd(&rq))?;
    ok("KVM: assign again after that deassign", c.assign(&e, 0))?;
    ok("KVM: deassign", c.deassign(&e, 0))
}

fn table<T: Debug, R: Debug>(
    rows: &[(impl AsRef<str>, T, i32)],
    run: impl Fn(&T) -> SysResult<R>,
) -> TestResult {
    let mut errs = Vec::new();
    for (what, rq, want) in rows {
        let (what, got) = (what.as_ref(), run(rq));
        let res = match *want {
            OK => ok(what, got).map(drop),
            errno => fails(what, got, errno),
        };
        if let Err(m) = res {
            errs.push(format!("{m} [request {rq:?}]"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} rows failed:\n{}",
            errs.len(),
            rows.len(),
            errs.join("\n")
        ))
    }
}

/// A route that the refused requests must leave alone.
const KEEP_ADDR: u64 = 0xfee0_0000;
const KEEP_DATA: u32 = 0x41;

/// SET_ROUTE: `gsi` out of range, unknown flags, non-zero pad, an MSI
/// address that is 0 or not 4-byte aligned, a clear with a non-zero
/// address or data: `EINVAL`, and the GSI's route is left as it was (a
/// record raised afterwards carries it). The edges that are valid (address
/// 4, the highest aligned address, data 0 and `u32::MAX`, the last gsi)
/// are accepted.
fn set_route_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let n = env.nr_gsis();
    let last = n - 1;
    ok(
        "SET_ROUTE(gsi 0, the route to keep)",
        c.set_route(0, KEEP_ADDR, KEEP_DATA),
    )?;
    // A valid route on gsi 0, and a route or a clear with one field changed.
    let valid = msi_route(0, 0xfee0_1000, 1);
    let flags = |flags, r| RustIrqfdRoute { flags, ..r };
    let pad = |pad, r| RustIrqfdRoute { pad, ..r };
    let clear_with = |msi_addr, msi_data| RustIrqfdRoute {
        msi_addr,
        msi_data,
        ..no_route(0)
    };
    let mut rows: Vec<(String, RustIrqfdRoute, i32)> = vec![
        (
            format!("gsi = nr_gsis ({n})"),
            msi_route(n, 0xfee0_1000, 1),
            EINVAL,
        ),
        (
            "gsi = 0xffffffff".into(),
            msi_route(u32::MAX, 0xfee0_1000, 1),
            EINVAL,
        ),
        (format!("clear, gsi = nr_gsis ({n})"), no_route(n), EINVAL),
        ("flags bit 1".into(), flags(1 << 1, valid), EINVAL),
        (
            "flags MSI | bit 1".into(),
            flags(ROUTE_MSI | 1 << 1, valid),
            EINVAL,
        ),
        ("flags bit 31".into(), flags(1 << 31, valid), EINVAL),
        (
            "flags bit 31 on a clear".into(),
            flags(1 << 31, no_route(0)),
            EINVAL,
        ),
        ("pad 1".into(), pad(1, valid), EINVAL),
        ("pad 0x80000000".into(), pad(0x8000_0000, valid), EINVAL),
        ("pad 1 on a clear".into(), pad(1, no_route(0)), EINVAL),
        ("MSI, msi_addr 0".into(), msi_route(0, 0, 0x41), EINVAL),
        (
            "MSI, msi_addr 0, msi_data 0".into(),
            msi_route(0, 0, 0),
            EINVAL,
        ),
        (
            "clear with msi_addr 0xfee01000".into(),
            clear_with(0xfee0_1000, 0),
            EINVAL,
        ),
        ("clear with msi_data 1".into(), clear_with(0, 1), EINVAL),
        (
            "clear with msi_addr 4 and msi_data 0xffffffff".into(),
            clear_with(4, u32::MAX),
            EINVAL,
        ),
    ];
    for a in [
        0xfee0_1001u64,
        0xfee0_1002,
        0xfee0_1003,
        1,
        2,
        0xffff_ffff_ffff_ffff,
        0x8000_0000_0000_0002,
    ] {
        rows.push((
            format!("MSI, msi_addr {a:#x} (not 4-byte aligned)"),
            msi_route(0, a, 7),
            EINVAL,
        ));
    }
    // Valid edges, on the last gsi (the last one set stays).
    rows.extend([
        (
            format!("gsi {last}: MSI, msi_addr 4, msi_data 0"),
            msi_route(last, 4, 0),
            OK,
        ),
        (
            format!("gsi {last}: MSI, msi_addr 0xfffffffffffffffc, msi_data 0xffffffff"),
            msi_route(last, 0xffff_ffff_ffff_fffc, u32::MAX),
            OK,
        ),
        (format!("gsi {last}: clear"), no_route(last), OK),
        (
            format!("gsi {last}: clear of a clear route"),
            no_route(last),
            OK,
        ),
        (
            format!("gsi {last}: MSI, msi_addr 0x123456789abcdef0"),
            msi_route(last, 0x1234_5678_9abc_def0, 0x5a5a_5a5a),
            OK,
        ),
    ]);
    table(&rows, |r| c.set_route_raw(r).map(|()| 0))?;

    // The refused requests left gsi 0's route alone; the last valid one
    // is the last gsi's route.
    for (gsi, addr, data) in [
        (0, KEEP_ADDR, KEEP_DATA),
        (last, 0x1234_5678_9abc_def0, 0x5a5a_5a5a),
    ] {
        let e = new_eventfd()?;
        ok(&format!("assign(gsi {gsi})"), c.assign(&e, gsi))?;
        signal(&e)?;
        let v = read_n(env, &c, 1)?;
        eq(&format!("records of gsi {gsi}"), v.len(), 1)?;
        check_record_any(&v[0], n)?;
        eq(
            &format!("gsi {gsi}: (gsi, flags, msi_addr, msi_data) of the record"),
            (v[0].gsi, v[0].flags, v[0].msi_addr, v[0].msi_data),
            (gsi, DELIVERY_MSI, addr, data),
        )?;
        ok(&format!("deassign(gsi {gsi})"), c.deassign(&e, gsi))?;
    }
    expect_nothing(&c, "after the two records")
}

/// SET_MASK: `gsi` out of range or unknown flags: `EINVAL`, and the GSI
/// stays unmasked (an injection raises a record at once).
fn set_mask_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let n = env.nr_gsis();
    let m = |gsi: u32, flags: u32| RustIrqfdMask { gsi, flags };
    let rows: Vec<(String, RustIrqfdMask, i32)> = vec![
        (
            format!("mask, gsi = nr_gsis ({n})"),
            m(n, MASK_MASKED),
            EINVAL,
        ),
        (format!("unmask, gsi = nr_gsis ({n})"), m(n, 0), EINVAL),
        (
            "mask, gsi = 0xffffffff".into(),
            m(u32::MAX, MASK_MASKED),
            EINVAL,
        ),
        ("gsi 0, flags bit 1".into(), m(0, 1 << 1), EINVAL),
        (
            "gsi 0, flags MASKED | bit 1".into(),
            m(0, MASK_MASKED | 1 << 1),
            EINVAL,
        ),
        ("gsi 0, flags bit 31".into(), m(0, 1 << 31), EINVAL),
        ("gsi 0, flags 0xffffffff".into(), m(0, u32::MAX), EINVAL),
        // Valid: unmask of an unmasked gsi is a no-op.
        ("gsi 0, unmask (not masked: no-op)".into(), m(0, 0), OK),
    ];
    table(&rows, |r| c.set_mask_raw(r).map(|()| 0))?;
    expect_full(&c, 0, gsi_stats!(0))?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    signal_one(env, &c, &e, 0)?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))
}

/// ACK: `gsi` out of range or a non-zero pad: `EINVAL`, and an asserted
/// line stays asserted (no ack counted, the resamplefd not signalled); an
/// ACK of a line that is not asserted returns 0.
fn ack_errors(env: &Env) -> TestResult {
    let c = env.open()?;
    let n = env.nr_gsis();
    let e = new_eventfd()?;
    let r = new_eventfd()?;
    ok("assign(gsi 0, RESAMPLE)", c.assign_resample(&e, 0, &r))?;
    inject(env, &c, &e, 0, 1)?;
    let a = |gsi: u32, pad: u32| RustIrqfdAck { gsi, pad };
    let rows: Vec<(String, RustIrqfdAck, i32)> = vec![
        (format!("gsi = nr_gsis ({n})"), a(n, 0), EINVAL),
        ("gsi = 0xffffffff".into(), a(u32::MAX, 0), EINVAL),
        ("gsi 0 (asserted), pad 1".into(), a(0, 1), EINVAL),
        (
            "gsi 0 (asserted), pad 0x80000000".into(),
            a(0, 0x8000_0000),
            EINVAL,
        ),
        (format!("gsi = nr_gsis ({n}), pad 1"), a(n, 1), EINVAL),
    ];
    table(&rows, |q| c.ack_raw(q))?;
    let s = stats(&c, 0)?;
    eq(
        "gsi 0 after the refused ACKs: (asserted, acks)",
        (s.asserted, s.acks),
        (1, 0),
    )?;
    fails(
        "read(resamplefd) after the refused ACKs",
        sys::eventfd_read(r.as_fd()),
        libc::EAGAIN,
    )?;
    let last = n - 1;
    eq(
        &format!("ACK(gsi {last}), never asserted: signalled"),
        ok(&format!("ACK(gsi {last})"), c.ack(last))?,
        0,
    )?;
    eq(
        "ACK(gsi 0), asserted: signalled",
        ok("ACK(gsi 0)", c.ack(0))?,
        1,
    )?;
    eq(
        "read(resamplefd) after the ACK",
        ok("read(resamplefd)", sys::eventfd_read(r.as_fd()))?,
        1,
    )?;
    ok("deassign(gsi 0)", c.deassign(&e, 0))
}

/// A buffer smaller than one record gives EINVAL, and leaves the pending
/// record in place.
fn read_small_buffer_einval(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    inject(env, &c, &e, 0, 1)?;
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
    signal_one(env, &c, &e, 0)?;
    expect_nothing(&c, "after the record was read")?;
    // O_NONBLOCK set later with fcntl counts too.
    let b = ok(
        "open(O_RDWR) blocking",
        Ctx::open_flags(&env.device, libc::O_RDWR),
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

/// GSIs of [`read_fault_tail`], one record each: more than one batch of
/// the C reference's read(2) (16 records), less than one of Rust's (64).
const READ_FAULT_GSIS: u32 = 20;

/// read(2) of every pending record into a buffer whose tail is unmapped,
/// with room for 0, 3 and 17 whole records (and half of the next one)
/// before the unmapped page: the result is the bytes of the whole records
/// copied, oldest first (`EFAULT` when there is none), and the records
/// that did not fit are not lost: they stay pending, in order, and the
/// next read(2) returns them. The counters read as if they had never been
/// taken.
fn read_fault_tail(env: &Env) -> TestResult {
    let c = env.open()?;
    let efds = (0..READ_FAULT_GSIS)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    for (g, e) in (0..).zip(&efds) {
        ok(&format!("assign(gsi {g})"), c.assign(e, g))?;
    }
    let sz = RustIrqfdDelivery::SIZE;
    let all = READ_FAULT_GSIS as usize;
    for (round, fit) in (1..).zip([0usize, 3, 17]) {
        let when = format!("with room for {fit} records before the unmapped page");
        // One record per GSI, raised in GSI order.
        for (g, e) in (0..).zip(&efds) {
            inject(env, &c, e, g, round)?;
        }
        let mut buf = ok("mmap", TailGuard::new(fit * sz + sz / 2))?;
        let got = buf.read(c.as_fd(), all * sz);
        let mut seen: Vec<RustIrqfdDelivery> = if fit == 0 {
            fails(&format!("read(context) {when}"), got, libc::EFAULT)?;
            Vec::new()
        } else {
            eq(&format!("read(context) {when}"), got, Ok(fit * sz))?;
            buf.bytes()
                .chunks_exact(sz)
                .filter_map(RustIrqfdDelivery::from_bytes)
                .collect()
        };
        // The rest, still pending: one read(2) takes them all.
        let rest = ok(
            &format!("read(context) after the read {when}"),
            c.read_records(all),
        )?;
        eq(
            &format!("records left pending by the read {when}"),
            rest.len(),
            all - fit,
        )?;
        seen.extend(rest);
        expect_nothing(&c, &format!("after both reads {when}"))?;
        for (g, d) in (0..).zip(&seen) {
            check_record_any(d, env.nr_gsis())?;
            eq(
                &format!("(gsi, count, flags) of record {g} {when}"),
                (d.gsi, d.count, d.flags),
                (g, 1, 0),
            )?;
        }
        ensure(seen.windows(2).all(|w| w[0].seq < w[1].seq), || {
            format!("records {when} not in raise order: {seen:?}")
        })?;
        for g in 0..READ_FAULT_GSIS {
            let n = round;
            expect_full(&c, g, gsi_stats!(g, injected: n, raised: n, delivered: n))?;
        }
    }
    ok("close(context)", c.close())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::RUST_IRQFD_IRQFD_BATCH;

    /// The near misses are named as the header's macros write them, and
    /// none of them is a command of the ABI.
    #[test]
    fn near_misses() {
        let (name, cmd) = near_miss(NEAR_MISSES[0]);
        assert_eq!((name.as_str(), cmd), ("_IO(0xB9, 0x7f)", io(0xB9, 0x7f)));
        let (name, cmd) = near_miss(NEAR_MISSES[4]);
        assert_eq!(name, "_IOW(0xB9, 0x76, 4 bytes) (IRQFD with a wrong size)");
        assert_eq!(cmd, iow(0xB9, 0x76, 4));
        let real = [
            RUST_IRQFD_IRQFD,
            RUST_IRQFD_GET_INFO,
            RUST_IRQFD_GSI_STATS,
            RUST_IRQFD_IRQFD_BATCH,
            RUST_IRQFD_SET_ROUTE,
            RUST_IRQFD_SET_MASK,
            RUST_IRQFD_ACK,
        ];
        for m in NEAR_MISSES {
            assert!(!real.contains(&near_miss(m).1), "{m:?}");
        }
    }
}

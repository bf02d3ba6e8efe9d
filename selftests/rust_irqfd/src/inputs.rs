// SPDX-License-Identifier: GPL-2.0
//! Descriptors from unusual places: a socket and the context itself (not
//! eventfds), an `EFD_SEMAPHORE` eventfd, an eventfd received over
//! `SCM_RIGHTS` from another process, and a context used by a forked child.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use crate::abi::{RustIrqfd, FLAG_DEASSIGN};
use crate::harness::{
    eq, expect_nr_irqfds, fails, new_eventfd, ok, one_record, signal, test, wait_until, Env, Needs,
    Test, TestResult,
};
use crate::sys;

/// The input tests, in run order.
pub const TESTS: &[Test] = &[
    test!(socket_and_context_fd_einval, Needs::NONE),
    test!(efd_semaphore_accepted, Needs::NONE),
    test!(eventfd_over_scm_rights, Needs::gsis(2)),
    test!(context_shared_with_forked_child, Needs::gsis(4)),
];

/// A Unix socket and the context's own descriptor are not eventfds:
/// `EINVAL` for assign and deassign, and nothing is bound.
fn socket_and_context_fd_einval(env: &Env) -> TestResult {
    let c = env.open()?;
    let (s, _peer) = UnixDatagram::pair().map_err(|e| format!("socketpair: {e}"))?;
    let cases = [
        ("a Unix socket", s.as_raw_fd()),
        ("the context itself", c.as_fd().as_raw_fd()),
    ];
    for (what, fd) in cases {
        let fd = fd as u32;
        let req = |flags| RustIrqfd {
            fd,
            gsi: 0,
            flags,
            ..Default::default()
        };
        fails(&format!("assign: {what}"), c.irqfd(&req(0)), libc::EINVAL)?;
        fails(
            &format!("deassign: {what}"),
            c.irqfd(&req(FLAG_DEASSIGN)),
            libc::EINVAL,
        )?;
    }
    expect_nr_irqfds(&c, 0, "after the refused descriptors")?;
    ok("close(context)", c.close())
}

/// An `EFD_SEMAPHORE` eventfd binds like any other (KVM accepts it too).
/// Each write wakes the irqfd once, which takes one unit of the counter and
/// injects once; what a write of more than one leaves in the counter stays
/// there until the next write's wakeup takes one more.
fn efd_semaphore_accepted(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = ok(
        "eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK)",
        sys::eventfd(0, libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK),
    )?;
    ok("assign(semaphore eventfd, gsi 0)", c.assign(&e, 0))?;
    signal(&e)?;
    one_record(env, &c, 0, 1)?;
    ok("write(eventfd, 3)", sys::eventfd_signal(e.as_fd(), 3))?;
    one_record(env, &c, 0, 1)?;
    ok("deassign", c.deassign(&e, 0))?;
    // Two units of the 3 were left: the semaphore hands them out one by one.
    eq(
        "semaphore read after deassign",
        ok("read(eventfd)", sys::eventfd_read(e.as_fd()))?,
        1,
    )?;
    ok("close(context)", c.close())
}

/// Sends `fd` over `sock` with `SCM_RIGHTS`.
fn send_fd(sock: &UnixDatagram, fd: RawFd) -> Result<(), String> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one descriptor, aligned as `cmsghdr` wants.
    let mut buf = [0u64; 4];
    // SAFETY: `CMSG_SPACE` only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: All-zero is a valid `msghdr`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` has a control buffer of `space` bytes, enough for one
    // header and one descriptor, so the first header and its data fit.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    if n == 1 {
        Ok(())
    } else {
        Err(format!("sendmsg: {}", std::io::Error::last_os_error()))
    }
}

/// Receives one descriptor sent with [`send_fd`].
fn recv_fd(sock: &UnixDatagram) -> Result<OwnedFd, String> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut buf = [0u64; 4];
    // SAFETY: All-zero is a valid `msghdr`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&buf) as _;
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n != 1 {
        return Err(format!("recvmsg: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `msg` was filled in by the kernel; the header, if any, lies in `buf`.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Err("recvmsg: no control message".into());
    }
    // SAFETY: `cmsg` is a header the kernel wrote into `buf`.
    let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        return Err(format!("recvmsg: control message {level}/{kind}"));
    }
    // SAFETY: An `SCM_RIGHTS` message carries descriptor numbers after its header.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()) };
    // SAFETY: The kernel installed `fd` in our table for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits for a forked child and returns its exit status.
fn wait_child(pid: libc::pid_t) -> Result<i32, String> {
    let mut status = 0;
    // SAFETY: `status` is a valid `int` to write to.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    if r != pid {
        return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Err(format!("child ended abnormally (status {status:#x})"))
    }
}

/// A child process creates an eventfd and sends it over `SCM_RIGHTS`; the
/// parent binds the received descriptor. A signal by the child, through its
/// own descriptor, injects into the parent's context; once both copies are
/// closed the irqfd goes away by `EPOLLHUP`.
fn eventfd_over_scm_rights(env: &Env) -> TestResult {
    let c = env.open()?;
    let (parent_sock, child_sock) = UnixDatagram::pair().map_err(|e| format!("socketpair: {e}"))?;
    // The child waits for one byte from the parent before it signals.
    let (go_r, go_w) = ok("pipe", sys::pipe())?;
    // SAFETY: The child only makes system calls and exits with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let code = (|| -> Option<()> {
            let e = sys::eventfd(0, libc::EFD_NONBLOCK).ok()?;
            send_fd(&child_sock, e.as_raw_fd()).ok()?;
            let mut b = [0u8; 1];
            sys::read(go_r.as_fd(), &mut b).ok()?;
            sys::eventfd_signal(e.as_fd(), 1).ok()
        })()
        .map_or(1, |()| 0);
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let result = (|| -> TestResult {
        let e = recv_fd(&parent_sock)?;
        ok("assign(received eventfd, gsi 1)", c.assign(&e, 1))?;
        ok("let the child signal", sys::write(go_w.as_fd(), &[1]))?;
        eq("child exit status", wait_child(pid)?, 0)?;
        one_record(env, &c, 1, 1)?;
        // The child's copy is gone; closing ours releases the eventfd.
        ok("close(received eventfd)", sys::close(e))?;
        wait_until(env, "EPOLLHUP once every copy is closed", || {
            let n = crate::harness::nr_irqfds(&c)?;
            Ok((n == 0, format!("nr_irqfds {n}")))
        })
    })();
    if result.is_err() {
        // Do not leave the child blocked on the pipe.
        let _ = sys::write(go_w.as_fd(), &[1]);
        let _ = wait_child(pid);
    }
    result?;
    ok("close(context)", c.close())
}

/// After `fork(2)` the child shares the context (one open file): what it
/// assigns is in the parent's context, its exit closes only its copy, and the
/// binding keeps working for the parent.
fn context_shared_with_forked_child(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    let ctx_fd = c.as_fd().as_raw_fd() as u32;
    let efd = e.as_raw_fd() as u32;
    // SAFETY: The child only makes one ioctl and exits with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        let mut req = crate::abi::RustIrqfd {
            fd: efd,
            gsi: 3,
            ..Default::default()
        };
        let code = sys::ioctl_ptr_raw(ctx_fd as RawFd, crate::abi::RUST_IRQFD_IRQFD, &mut req)
            .map_or(1, |_| 0);
        // SAFETY: Ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    eq("child's assign (exit status)", wait_child(pid)?, 0)?;
    expect_nr_irqfds(&c, 1, "in the parent after the child assigned and exited")?;
    signal(&e)?;
    one_record(env, &c, 3, 1)?;
    fails(
        "assign of the same eventfd again in the parent",
        c.assign(&e, 3),
        libc::EBUSY,
    )?;
    ok("deassign in the parent", c.deassign(&e, 3))?;
    expect_nr_irqfds(&c, 0, "after the parent's deassign")?;
    ok("close(context)", c.close())
}

// SPDX-License-Identifier: GPL-2.0
//! Descriptors from unusual places: a socket and the context itself (not
//! eventfds), an `EFD_SEMAPHORE` eventfd, an eventfd received over
//! `SCM_RIGHTS` from another process, and a context used by a forked child.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

use crate::abi::{RustIrqfd, FLAG_DEASSIGN, RUST_IRQFD_IRQFD};
use crate::harness::{
    eq, expect_nr_irqfds, fails, new_eventfd, ok, one_record, signal_one, test, wait_nr_irqfds,
    Env, Needs, Test, TestResult,
};
use crate::sys::{self, Received};

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
    signal_one(env, &c, &e, 0)?;
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

/// `e` as `std::io::Error` prints it: the description and the number.
fn os_error(e: sys::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.0)
}

/// Receives one descriptor sent with `SCM_RIGHTS`.
fn recv_fd(sock: &UnixDatagram) -> Result<OwnedFd, String> {
    match sys::recv_fd(sock.as_fd()) {
        Ok(Received::Fd(fd)) => Ok(fd),
        Ok(Received::NoControl) => Err("recvmsg: no control message".into()),
        Ok(Received::Other { level, kind }) => {
            Err(format!("recvmsg: control message {level}/{kind}"))
        }
        Err(e) => Err(format!("recvmsg: {}", os_error(e))),
    }
}

/// Waits for a forked child and returns its exit status.
fn wait_child(pid: libc::pid_t) -> Result<i32, String> {
    let status = sys::waitpid(pid).map_err(|e| format!("waitpid: {}", os_error(e)))?;
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
    let pid = sys::fork_eventfd_sender(child_sock.as_fd(), go_r.as_fd())
        .map_err(|e| format!("fork: {}", os_error(e)))?;
    let result = (|| -> TestResult {
        let e = recv_fd(&parent_sock)?;
        ok("assign(received eventfd, gsi 1)", c.assign(&e, 1))?;
        ok("let the child signal", sys::write(go_w.as_fd(), &[1]))?;
        eq("child exit status", wait_child(pid)?, 0)?;
        one_record(env, &c, 1, 1)?;
        // The child's copy is gone; closing ours releases the eventfd.
        ok("close(received eventfd)", sys::close(e))?;
        wait_nr_irqfds(env, &c, 0, "EPOLLHUP once every copy is closed")
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
    let mut req = RustIrqfd {
        fd: e.as_raw_fd() as u32,
        gsi: 3,
        ..Default::default()
    };
    let pid = sys::fork_ioctl(c.as_fd(), RUST_IRQFD_IRQFD, &mut req)
        .map_err(|e| format!("fork: {}", os_error(e)))?;
    eq("child's assign (exit status)", wait_child(pid)?, 0)?;
    expect_nr_irqfds(&c, 1, "in the parent after the child assigned and exited")?;
    signal_one(env, &c, &e, 3)?;
    fails(
        "assign of the same eventfd again in the parent",
        c.assign(&e, 3),
        libc::EBUSY,
    )?;
    ok("deassign in the parent", c.deassign(&e, 3))?;
    expect_nr_irqfds(&c, 0, "after the parent's deassign")?;
    ok("close(context)", c.close())
}

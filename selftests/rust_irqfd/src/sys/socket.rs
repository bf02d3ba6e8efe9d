// SPDX-License-Identifier: GPL-2.0
//! A descriptor passed over a Unix socket (`SCM_RIGHTS`), one byte of data
//! with it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{Errno, SysResult};

/// What [`recv_fd`] found in the control data of the message.
#[derive(Debug)]
pub enum Received {
    /// The descriptor sent, now installed in this process.
    Fd(OwnedFd),
    /// No control message came with the byte.
    NoControl,
    /// A control message that is not `SOL_SOCKET`/`SCM_RIGHTS`.
    Other { level: i32, kind: i32 },
}

/// Sends `fd` over the Unix socket `sock` with `SCM_RIGHTS`, along with
/// one byte. Allocates nothing (a forked child may call it).
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> SysResult<()> {
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
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
    }
    // SAFETY: `msg` points at live buffers for the duration of the call.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    if n == 1 {
        Ok(())
    } else {
        Err(Errno::last())
    }
}

/// Receives one byte and the descriptor [`send_fd`] sent with it
/// (`MSG_CMSG_CLOEXEC`).
pub fn recv_fd(sock: BorrowedFd<'_>) -> SysResult<Received> {
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
        return Err(Errno::last());
    }
    // SAFETY: `msg` was filled in by the kernel; the header, if any, lies in `buf`.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Ok(Received::NoControl);
    }
    // SAFETY: `cmsg` is a header the kernel wrote into `buf`.
    let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
    if level != libc::SOL_SOCKET || kind != libc::SCM_RIGHTS {
        return Ok(Received::Other { level, kind });
    }
    // SAFETY: An `SCM_RIGHTS` message carries descriptor numbers after its header.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()) };
    // SAFETY: The kernel installed `fd` in our table for us; nothing else owns it.
    Ok(Received::Fd(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    use super::super::{eventfd, eventfd_read, eventfd_signal};
    use super::*;

    /// The descriptor received is another one for the same eventfd.
    #[test]
    fn send_and_receive_an_eventfd() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        send_fd(a.as_fd(), e.as_fd()).unwrap();
        let Ok(Received::Fd(got)) = recv_fd(b.as_fd()) else {
            panic!("no descriptor received");
        };
        assert_ne!(got.as_raw_fd(), e.as_raw_fd());
        eventfd_signal(got.as_fd(), 5).unwrap();
        assert_eq!(eventfd_read(e.as_fd()), Ok(5));
        // A byte without control data.
        a.send(&[0]).unwrap();
        assert!(matches!(recv_fd(b.as_fd()), Ok(Received::NoControl)));
        // Nothing to receive on a non-blocking socket.
        b.set_nonblocking(true).unwrap();
        assert_eq!(recv_fd(b.as_fd()).unwrap_err(), Errno(libc::EAGAIN));
    }
}

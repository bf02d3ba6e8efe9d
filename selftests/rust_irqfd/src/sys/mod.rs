// SPDX-License-Identifier: GPL-2.0
//! Thin syscall wrappers: every `unsafe` of the test lives in this folder,
//! behind safe functions whose `// SAFETY:` comments say why they are.
//!
//! Each wrapper returns `Result<_, Errno>` and never panics, so that the tests
//! can report exactly which errno a call gave. Here: descriptors, `read(2)`,
//! `write(2)`, `ioctl(2)` and eventfds; in `fault` the bad addresses of the
//! `EFAULT` checks, in `socket` descriptor passing, in `process` the thread,
//! its limits and forked children, in `aio` Linux AIO.

mod aio;
mod fault;
mod process;
mod socket;

pub use aio::Aio;
pub use fault::{ioctl_bad_addr, read_bad_addr, BadAddr, GuardPage, TailGuard};
pub use process::{
    allowed_cpus, delete_module, fork_eventfd_sender, fork_ioctl, fork_signal, gettid,
    interrupt_thread, nofile_limit, pin_to_cpu, set_nofile_limit, waitpid,
};
pub use socket::{recv_fd, send_fd, Received};

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// An errno value returned by a failed syscall.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Result of a syscall wrapper.
pub type SysResult<T> = Result<T, Errno>;

impl Errno {
    /// The calling thread's `errno`.
    pub fn last() -> Self {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The symbolic name (`"EINVAL"`), or `"errno N"` for unlisted values.
    pub fn name(self) -> String {
        errno_name(self.0)
            .map(str::to_string)
            .unwrap_or_else(|| format!("errno {}", self.0))
    }
}

/// Symbolic name of an errno value, from the project's one table
/// ([`rust_irqfd_abi::errno`]).
pub fn errno_name(e: i32) -> Option<&'static str> {
    rust_irqfd_abi::errno::name(e)
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

fn check(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn check_fd(ret: libc::c_int) -> SysResult<OwnedFd> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: the syscall just returned `ret` as a new descriptor that
        // nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

/// `open(path, flags | O_CLOEXEC)`.
pub fn open(path: &Path, flags: i32) -> SysResult<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    check_fd(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// `eventfd(initval, flags | EFD_CLOEXEC)`.
pub fn eventfd(initval: u32, flags: i32) -> SysResult<OwnedFd> {
    // SAFETY: plain syscall without pointers.
    check_fd(unsafe { libc::eventfd(initval, flags | libc::EFD_CLOEXEC) })
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
pub fn pipe() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }.into())?;
    // SAFETY: pipe2 succeeded, both descriptors are new and owned by nobody.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `memfd_create(name, MFD_CLOEXEC)`: an anonymous regular file.
pub fn memfd(name: &str) -> SysResult<OwnedFd> {
    let c = CString::new(name).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    check_fd(unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) })
}

/// `ioctl(fd, cmd, arg)` with `arg` pointing at `*arg`, which the kernel may
/// read and write (its size must be the one encoded in `cmd`, or larger).
pub fn ioctl_ptr<T: Copy>(fd: BorrowedFd<'_>, cmd: u32, arg: &mut T) -> SysResult<i32> {
    // SAFETY: `arg` is a valid, exclusively borrowed `T` for the whole call;
    // `T: Copy` so any bytes the kernel writes leave it a valid value for
    // the plain-integer ABI structs this is used with.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, std::ptr::from_mut(arg)) };
    check(ret.into()).map(|r| r as i32)
}

/// `ioctl(fd, cmd, arg)` with a plain integer argument (KVM's `_IO`
/// commands).
pub fn ioctl_val(fd: BorrowedFd<'_>, cmd: u32, arg: libc::c_ulong) -> SysResult<i32> {
    // SAFETY: `arg` is passed by value; the commands used with this take no
    // pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg) };
    check(ret.into()).map(|r| r as i32)
}

/// `ioctl(fd, cmd, arg)` for a command that returns a new descriptor
/// (`KVM_CREATE_VM`), with a plain integer argument.
pub fn ioctl_new_fd(fd: BorrowedFd<'_>, cmd: u32, arg: libc::c_ulong) -> SysResult<OwnedFd> {
    // SAFETY: `arg` is passed by value; the commands used with this take no
    // pointer and return a new descriptor, which `check_fd` takes over.
    check_fd(unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, arg) })
}

/// `read(fd, buf)`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let ret = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    check(ret as libc::c_long).map(|r| r as usize)
}

/// `write(fd, buf)`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let ret = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    check(ret as libc::c_long).map(|r| r as usize)
}

/// Adds `v` to an eventfd's counter (signals it).
pub fn eventfd_signal(fd: BorrowedFd<'_>, v: u64) -> SysResult<()> {
    match write(fd, &v.to_ne_bytes())? {
        8 => Ok(()),
        _ => Err(Errno(libc::EIO)),
    }
}

/// Reads (and resets) an eventfd's counter.
pub fn eventfd_read(fd: BorrowedFd<'_>) -> SysResult<u64> {
    let mut b = [0u8; 8];
    match read(fd, &mut b)? {
        8 => Ok(u64::from_ne_bytes(b)),
        _ => Err(Errno(libc::EIO)),
    }
}

/// Whether `fd` is readable now: `poll(2)` for `POLLIN`, not waiting.
pub fn readable(fd: BorrowedFd<'_>) -> SysResult<bool> {
    wait_readable(fd, Duration::ZERO)
}

/// Whether `fd` became readable within `timeout` (whole milliseconds):
/// `poll(2)` for `POLLIN`.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Duration) -> SysResult<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `p` is one valid `pollfd` for the whole call.
    check(unsafe { libc::poll(&mut p, 1, ms) }.into())?;
    Ok(p.revents & libc::POLLIN != 0)
}

/// Sets or clears `O_NONBLOCK` on `fd`.
pub fn set_nonblock(fd: BorrowedFd<'_>, on: bool) -> SysResult<()> {
    // SAFETY: F_GETFL takes no pointer.
    let fl = check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) }.into())? as i32;
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: F_SETFL takes an integer.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl) }.into())?;
    Ok(())
}

/// Closes `fd` and reports the result of `close(2)` (dropping an `OwnedFd`
/// ignores it).
pub fn close(fd: OwnedFd) -> SysResult<()> {
    use std::os::fd::IntoRawFd;
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` came out of an `OwnedFd`, so we own it and close it once.
    check(unsafe { libc::close(raw) }.into()).map(|_| ())
}

/// The raw number of a descriptor, as the ABI's `__u32 fd` wants it.
pub fn fd_u32(fd: impl AsFd) -> u32 {
    fd.as_fd().as_raw_fd() as u32
}

// --- For the race scenarios (races/, stress/) ---

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: another descriptor for the same open file.
pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and returns a new descriptor.
    check_fd(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })
}

/// `dup3(src, dst, O_CLOEXEC)`: the number of `dst` names the open file of
/// `src` from now on, and the file it named is closed, in one step (the
/// last reference to it maybe, which releases it). The number is never
/// free meanwhile, so no other thread's `open(2)` can take it: a thread
/// that reads `/proc/self/fdinfo/<dst>` finds one file or the other.
pub fn dup_over(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> SysResult<()> {
    // SAFETY: dup3 takes two descriptor numbers and returns one of them;
    // `dst` stays open (on the file of `src`), so its owner still owns an
    // open descriptor.
    check(unsafe { libc::dup3(src.as_raw_fd(), dst.as_raw_fd(), libc::O_CLOEXEC) }.into())
        .map(|_| ())
}

/// `ioctl(fd, cmd, arg)` on a raw descriptor number, for races where another
/// thread closes that number: the kernel then answers `EBADF`. The caller
/// makes sure that no other file can take the number meanwhile (no thread
/// opens anything while the race runs), or that any file that can is one
/// the command is harmless on.
pub fn ioctl_ptr_raw<T: Copy>(fd: RawFd, cmd: u32, arg: &mut T) -> SysResult<i32> {
    // SAFETY: as `ioctl_ptr`: `arg` is a valid, exclusively borrowed `T`.
    let ret = unsafe { libc::ioctl(fd, cmd as _, std::ptr::from_mut(arg)) };
    check(ret.into()).map(|r| r as i32)
}

/// Adds `v` to the eventfd counter of a raw descriptor number that another
/// thread may be closing (`EBADF`); same contract as [`ioctl_ptr_raw`]:
/// the number is closed or an eventfd of the test.
pub fn eventfd_signal_raw(fd: RawFd, v: u64) -> SysResult<()> {
    let b = v.to_ne_bytes();
    // SAFETY: `b` is valid for reads of 8 bytes.
    let ret = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
    match check(ret as libc::c_long)? {
        8 => Ok(()),
        _ => Err(Errno(libc::EIO)),
    }
}

/// `pipe2(O_CLOEXEC | O_NONBLOCK)`: (read end, write end).
pub fn pipe_nonblock() -> SysResult<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) }.into())?;
    // SAFETY: pipe2 succeeded, both descriptors are new and owned by nobody.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared table's values are this target's (libc's) errnos.
    #[test]
    fn errno_table_matches_libc() {
        let libc_names = [
            (libc::EPERM, "EPERM"),
            (libc::ENOENT, "ENOENT"),
            (libc::ESRCH, "ESRCH"),
            (libc::EINTR, "EINTR"),
            (libc::EIO, "EIO"),
            (libc::ENXIO, "ENXIO"),
            (libc::E2BIG, "E2BIG"),
            (libc::EBADF, "EBADF"),
            (libc::EAGAIN, "EAGAIN"),
            (libc::ENOMEM, "ENOMEM"),
            (libc::EACCES, "EACCES"),
            (libc::EFAULT, "EFAULT"),
            (libc::EBUSY, "EBUSY"),
            (libc::EEXIST, "EEXIST"),
            (libc::ENODEV, "ENODEV"),
            (libc::ENOTDIR, "ENOTDIR"),
            (libc::EISDIR, "EISDIR"),
            (libc::EINVAL, "EINVAL"),
            (libc::ENFILE, "ENFILE"),
            (libc::EMFILE, "EMFILE"),
            (libc::ENOTTY, "ENOTTY"),
            (libc::ENOSPC, "ENOSPC"),
            (libc::ESPIPE, "ESPIPE"),
            (libc::EROFS, "EROFS"),
            (libc::EPIPE, "EPIPE"),
            (libc::ERANGE, "ERANGE"),
            (libc::ENOSYS, "ENOSYS"),
            (libc::EOVERFLOW, "EOVERFLOW"),
            (libc::EOPNOTSUPP, "EOPNOTSUPP"),
            (libc::ETIMEDOUT, "ETIMEDOUT"),
        ];
        for (v, n) in libc_names {
            assert_eq!(errno_name(v), Some(n), "{n}");
        }
        // The rest of the table is the kernel-internal restart values.
        assert_eq!(rust_irqfd_abi::errno::TABLE.len(), libc_names.len() + 5);
        assert_eq!(Errno(libc::EBUSY).name(), "EBUSY");
        assert_eq!(Errno(133).name(), "errno 133");
    }

    #[test]
    fn raw_fd_helpers() {
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        let n = e.as_raw_fd();
        eventfd_signal_raw(n, 3).unwrap();
        let d = dup(e.as_fd()).unwrap();
        assert_ne!(d.as_raw_fd(), n);
        assert_eq!(eventfd_read(d.as_fd()), Ok(3));
        drop(e);
        drop(d);
        assert_eq!(eventfd_signal_raw(n, 1), Err(Errno(libc::EBADF)));
        let mut x = 0u64;
        assert_eq!(
            ioctl_ptr_raw(n, 0, &mut x).map(|_| ()),
            Err(Errno(libc::EBADF))
        );
    }
}

// SPDX-License-Identifier: GPL-2.0
//! [`EventFd`]: an owned eventfd, the doorbell a device rings to interrupt.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use std::time::Duration;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::io::{read, write, Errno};

use crate::error::{Error, Op, Result};

/// An eventfd (`eventfd(2)`), owned: closed on drop.
///
/// Hand [`as_fd`](AsFd::as_fd) to a device model, or to
/// [`IrqFdBackend::assign`](crate::IrqFdBackend::assign); [`signal`](Self::signal)
/// is what the device does to raise the interrupt.
///
/// `EventFd` is `Send` and `Sync`: it is an `OwnedFd`, and concurrent
/// `write(2)`/`read(2)` on an eventfd are atomic in the kernel.
///
/// ```
/// use rust_irqfd_vmm::EventFd;
///
/// let e = EventFd::new_nonblocking()?;
/// assert_eq!(e.try_read()?, None);
/// e.signal()?;
/// e.add(2)?;
/// assert!(e.is_signalled()?); // polling does not consume
/// assert_eq!(e.read()?, 3);
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A new eventfd with counter 0 (`EFD_CLOEXEC`).
    pub fn new() -> Result<Self> {
        Self::with_flags(EventfdFlags::CLOEXEC)
    }

    /// A new non-blocking eventfd (`EFD_CLOEXEC | EFD_NONBLOCK`):
    /// [`read`](Self::read) fails with `EAGAIN` instead of blocking, which
    /// [`try_read`](Self::try_read) turns into `None`.
    pub fn new_nonblocking() -> Result<Self> {
        Self::with_flags(EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
    }

    fn with_flags(flags: EventfdFlags) -> Result<Self> {
        let fd = eventfd(0, flags).map_err(|e| Error::kernel(Op::CreateEventFd, None, e))?;
        Ok(Self { fd })
    }

    /// Adds 1 to the counter: the device's "interrupt now". While the eventfd
    /// is bound to an irqfd, the kernel consumes the counter and injects.
    pub fn signal(&self) -> Result<()> {
        self.add(1)
    }

    /// Adds `n` (at least 1) to the counter.
    pub fn add(&self, n: u64) -> Result<()> {
        let buf = n.to_ne_bytes();
        match write(&self.fd, &buf) {
            Ok(8) => Ok(()),
            Ok(_) => Err(Error::kernel(Op::SignalEventFd, None, Errno::IO)),
            Err(e) => Err(Error::kernel(Op::SignalEventFd, None, e)),
        }
    }

    /// Reads and resets the counter. Blocks while it is 0, unless the
    /// eventfd is non-blocking (then an [`Error::Kernel`] with `EAGAIN`).
    pub fn read(&self) -> Result<u64> {
        let mut buf = [0u8; 8];
        match read(&self.fd, &mut buf) {
            Ok(8) => Ok(u64::from_ne_bytes(buf)),
            Ok(_) => Err(Error::kernel(Op::ReadEventFd, None, Errno::IO)),
            Err(e) => Err(Error::kernel(Op::ReadEventFd, None, e)),
        }
    }

    /// [`read`](Self::read) on a non-blocking eventfd: `None` when the
    /// counter is 0.
    pub fn try_read(&self) -> Result<Option<u64>> {
        match self.read() {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.errno() == Some(Errno::AGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the counter is non-zero now (`poll(2)` for `POLLIN`, without
    /// waiting), without reading it. While the eventfd is bound to an
    /// irqfd the kernel consumes the counter, so a signalled eventfd that
    /// stays signalled is one nobody is bound to.
    pub fn is_signalled(&self) -> Result<bool> {
        self.wait_signalled(Duration::ZERO)
    }

    /// Waits at most `timeout` for the counter to become non-zero
    /// (`poll(2)` for `POLLIN`), without reading it; `false` if it did not.
    pub fn wait_signalled(&self, timeout: Duration) -> Result<bool> {
        let ts = Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let n = poll(&mut fds, Some(&ts)).map_err(|e| Error::kernel(Op::PollEventFd, None, e))?;
        Ok(n > 0 && fds.iter().any(|p| p.revents().contains(PollFlags::IN)))
    }

    /// The descriptor number, for ABIs that take one.
    pub fn as_raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl From<EventFd> for OwnedFd {
    fn from(e: EventFd) -> OwnedFd {
        e.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_then_read() {
        let e = EventFd::new_nonblocking().unwrap();
        assert_eq!(e.try_read().unwrap(), None);
        e.signal().unwrap();
        e.signal().unwrap();
        e.add(5).unwrap();
        assert_eq!(e.read().unwrap(), 7);
        assert_eq!(e.try_read().unwrap(), None);
    }

    #[test]
    fn polling_does_not_consume() {
        let e = EventFd::new().unwrap();
        assert!(!e.is_signalled().unwrap());
        assert!(!e
            .wait_signalled(std::time::Duration::from_millis(5))
            .unwrap());
        e.add(3).unwrap();
        assert!(e.is_signalled().unwrap());
        assert!(e.wait_signalled(std::time::Duration::MAX).unwrap());
        assert_eq!(e.read().unwrap(), 3);
        assert!(!e.is_signalled().unwrap());
    }

    #[test]
    fn overflow_is_an_error_not_a_panic() {
        let e = EventFd::new_nonblocking().unwrap();
        // u64::MAX is not a valid increment.
        let err = e.add(u64::MAX).unwrap_err();
        assert_eq!(err.op(), Some(Op::SignalEventFd));
        assert_eq!(err.errno(), Some(Errno::INVAL));
    }
}

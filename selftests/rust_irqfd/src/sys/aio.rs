// SPDX-License-Identifier: GPL-2.0
//! Linux AIO (`io_setup`, `io_submit`, `io_getevents`): a signaller that is
//! not `write(2)`, for the race scenarios.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use super::{check, Errno, SysResult};

/// `IOCB_CMD_POLL` (include/uapi/linux/aio_abi.h).
const IOCB_CMD_POLL: u16 = 5;
/// `IOCB_FLAG_RESFD`: signal `aio_resfd` (an eventfd) on completion.
const IOCB_FLAG_RESFD: u32 = 1 << 0;

/// `struct iocb` (little-endian layout, as on x86_64).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: i32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

/// `struct io_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct IoEvent {
    pub data: u64,
    pub obj: u64,
    pub res: i64,
    pub res2: i64,
}

const _: () = {
    assert!(std::mem::size_of::<Iocb>() == 64);
    assert!(std::mem::size_of::<IoEvent>() == 32);
};

/// A Linux AIO context (`io_setup`), destroyed on drop. Used as a signaller
/// that is not `write(2)`: an `IOCB_CMD_POLL` with `IOCB_FLAG_RESFD` on a
/// pipe completes from inside the pipe's wakeup, so the kernel calls
/// `eventfd_signal()` with another wait-queue lock held and interrupts off.
pub struct Aio {
    ctx: libc::c_ulong,
}

impl Aio {
    /// `io_setup(nr)`.
    pub fn new(nr: u32) -> SysResult<Self> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: `ctx` is a valid, zeroed aio_context_t the kernel writes.
        check(unsafe { libc::syscall(libc::SYS_io_setup, nr as libc::c_long, &mut ctx) })?;
        Ok(Aio { ctx })
    }

    /// Submits one poll for `events` on `fd`, signalling the eventfd
    /// number `resfd` when it completes (`EBADF` if `resfd` is closed).
    pub fn submit_poll(&self, fd: BorrowedFd<'_>, events: u16, resfd: RawFd) -> SysResult<()> {
        let mut cb = Iocb {
            aio_lio_opcode: IOCB_CMD_POLL,
            aio_fildes: fd.as_raw_fd() as u32,
            aio_buf: u64::from(events),
            aio_flags: IOCB_FLAG_RESFD,
            aio_resfd: resfd as u32,
            ..Default::default()
        };
        let mut list = [std::ptr::from_mut(&mut cb)];
        // SAFETY: `list` holds one pointer to a valid iocb; the kernel copies
        // the iocb during the call and keeps its address only as a key.
        let n = check(unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.ctx,
                1 as libc::c_long,
                list.as_mut_ptr(),
            )
        })?;
        if n == 1 {
            Ok(())
        } else {
            Err(Errno(libc::EIO))
        }
    }

    /// Reaps between `min` and `max` completions, waiting at most `timeout`.
    pub fn reap(
        &self,
        min: usize,
        max: usize,
        timeout: std::time::Duration,
    ) -> SysResult<Vec<IoEvent>> {
        let mut ev = vec![IoEvent::default(); max];
        // SAFETY: an all-zero timespec is valid; the fields are set below
        // (with `as _`, whatever width the libc gives tv_sec).
        let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
        ts.tv_sec = timeout.as_secs() as _;
        ts.tv_nsec = timeout.subsec_nanos() as _;
        // SAFETY: `ev` has room for `max` events and `ts` is a valid timespec.
        let n = check(unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                self.ctx,
                min as libc::c_long,
                max as libc::c_long,
                ev.as_mut_ptr(),
                &ts,
            )
        })?;
        ev.truncate(n as usize);
        Ok(ev)
    }
}

impl Drop for Aio {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from io_setup and is destroyed once; this waits
        // for (or cancels) every request still in flight.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.ctx) };
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::time::Duration;

    use super::super::{eventfd, eventfd_read, pipe_nonblock, write};
    use super::*;

    /// The iocb layout and the flags: a poll with IOCB_FLAG_RESFD on a pipe
    /// signals the eventfd when the pipe gets a byte.
    #[test]
    fn aio_poll_signals_resfd() {
        let aio = match Aio::new(8) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("io_setup: {e}: AIO test skipped");
                return;
            }
        };
        let efd = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        let (r, w) = pipe_nonblock().unwrap();
        aio.submit_poll(r.as_fd(), libc::POLLIN as u16, efd.as_raw_fd())
            .unwrap();
        assert_eq!(eventfd_read(efd.as_fd()), Err(Errno(libc::EAGAIN)));
        write(w.as_fd(), &[7]).unwrap();
        let ev = aio.reap(1, 1, Duration::from_secs(5)).unwrap();
        assert_eq!(ev.len(), 1);
        assert_ne!(ev[0].res & i64::from(libc::POLLIN), 0);
        assert_eq!(eventfd_read(efd.as_fd()), Ok(1));
        // A closed resfd is refused at submit.
        let closed = efd.as_raw_fd();
        drop(efd);
        assert_eq!(
            aio.submit_poll(r.as_fd(), libc::POLLIN as u16, closed),
            Err(Errno(libc::EBADF))
        );
        // Nothing pending: a reap with a short timeout returns nothing.
        assert!(aio
            .reap(0, 1, Duration::from_millis(10))
            .unwrap()
            .is_empty());
    }
}

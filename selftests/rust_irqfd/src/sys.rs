// SPDX-License-Identifier: GPL-2.0
//! Thin syscall wrappers: every `unsafe` of the test lives in this file.
//!
//! Each wrapper returns `Result<_, Errno>` and never panics, so that the tests
//! can report exactly which errno a call gave.

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

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

/// Symbolic name of an errno value, for the ones a test may meet.
pub fn errno_name(e: i32) -> Option<&'static str> {
    Some(match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        // Kernel-internal values that must never reach userspace.
        512 => "ERESTARTSYS(512)",
        513 => "ERESTARTNOINTR(513)",
        514 => "ERESTARTNOHAND(514)",
        515 => "ENOIOCTLCMD(515)",
        516 => "ERESTART_RESTARTBLOCK(516)",
        _ => return None,
    })
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

/// `ioctl(fd, cmd, addr)` with an arbitrary address, for `EFAULT` checks.
///
/// # Safety
///
/// `addr` must not point into memory of this process that the kernel could
/// write (use an unmapped or `PROT_NONE` address, see [`GuardPage`]).
pub unsafe fn ioctl_addr(fd: BorrowedFd<'_>, cmd: u32, addr: usize) -> SysResult<i32> {
    // SAFETY: the caller guarantees that whatever the kernel does with
    // `addr` cannot touch memory this program uses.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, addr) };
    check(ret.into()).map(|r| r as i32)
}

/// `read(fd, buf)`.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let ret = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    check(ret as libc::c_long).map(|r| r as usize)
}

/// `read(fd, addr, len)` into an arbitrary address, for `EFAULT` checks.
///
/// # Safety
///
/// As [`ioctl_addr`]: `addr .. addr + len` must not be memory this process
/// uses.
pub unsafe fn read_addr(fd: BorrowedFd<'_>, addr: usize, len: usize) -> SysResult<usize> {
    // SAFETY: the caller guarantees the range is not memory we use.
    let ret = unsafe { libc::read(fd.as_raw_fd(), addr as *mut libc::c_void, len) };
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

/// Thread id of the calling thread.
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// One anonymous `PROT_NONE` page: any kernel access to it faults, so its
/// address is a safe "bad pointer". Unmapped on drop.
pub struct GuardPage {
    addr: *mut libc::c_void,
    len: usize,
}

impl GuardPage {
    /// Maps the page.
    pub fn new() -> SysResult<Self> {
        let len = 4096;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choice touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        Ok(GuardPage { addr, len })
    }

    /// The page's address.
    pub fn addr(&self) -> usize {
        self.addr as usize
    }
}

impl Drop for GuardPage {
    fn drop(&mut self) {
        // SAFETY: `addr .. addr + len` is the mapping made in `new`, which
        // nothing else refers to.
        unsafe { libc::munmap(self.addr, self.len) };
    }
}

// --- For the race scenarios (races.rs, stress.rs) ---

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: another descriptor for the same open file.
pub fn dup(fd: BorrowedFd<'_>) -> SysResult<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an integer and returns a new descriptor.
    check_fd(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })
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

/// `delete_module(name, flags)`: what `rmmod` does.
pub fn delete_module(name: &str, flags: i32) -> SysResult<()> {
    let c = CString::new(name).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    check(unsafe { libc::syscall(libc::SYS_delete_module, c.as_ptr(), flags as libc::c_long) })
        .map(|_| ())
}

/// The CPUs the calling thread may run on (empty if that cannot be read).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let ret = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if ret != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `c` is below CPU_SETSIZE, inside the set.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`.
pub fn pin_to_cpu(cpu: usize) -> SysResult<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE, inside the set.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size passed; 0 is this thread.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    check(ret.into()).map(|_| ())
}

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

/// Forks a child that adds `v` to the eventfd `fd` with one `write(2)` and
/// exits (status 0 if the write took, 1 otherwise); waits for it and returns
/// its exit status (128 + the signal number if it was killed). The child
/// shares every descriptor of the process until it exits.
pub fn fork_signal(fd: BorrowedFd<'_>, v: u64) -> SysResult<i32> {
    let raw = fd.as_raw_fd();
    let buf = v.to_ne_bytes();
    // SAFETY: after fork() in a multithreaded process the child may only
    // make async-signal-safe calls: it makes one write(2) from a buffer
    // prepared before the fork and _exit()s, touching no lock or allocation.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid == 0 {
        // SAFETY: `buf` is valid for reads of 8 bytes; see above.
        let n = unsafe { libc::write(raw, buf.as_ptr().cast(), buf.len()) };
        // SAFETY: _exit is async-signal-safe and does not return.
        unsafe { libc::_exit(if n == 8 { 0 } else { 1 }) };
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int the kernel writes.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = Errno::last();
        if r < 0 && e.0 == libc::EINTR {
            continue;
        }
        return Err(e);
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Ok(128 + libc::WTERMSIG(status))
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
    use std::time::Duration;

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

    /// A forked child's write lands in the parent's eventfd.
    #[test]
    fn fork_signal_writes() {
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        assert_eq!(fork_signal(e.as_fd(), 3), Ok(0));
        assert_eq!(eventfd_read(e.as_fd()), Ok(3));
        let (r, _w) = pipe().unwrap();
        // The read end of a pipe: the child's write fails, status 1.
        assert_eq!(fork_signal(r.as_fd(), 1), Ok(1));
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

    #[test]
    fn cpus_and_modules() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        std::thread::spawn(move || pin_to_cpu(cpus[0]).unwrap())
            .join()
            .unwrap();
        assert_eq!(pin_to_cpu(1 << 20), Err(Errno(libc::EINVAL)));
        // Never a real module: ENOENT as root, EPERM otherwise (ENOSYS in
        // a sandbox without module support).
        let r = delete_module("rust_irqfd_test_no_such_module", libc::O_NONBLOCK);
        assert!(
            [libc::ENOENT, libc::EPERM, libc::ENOSYS].contains(&r.unwrap_err().0),
            "{r:?}"
        );
    }
}

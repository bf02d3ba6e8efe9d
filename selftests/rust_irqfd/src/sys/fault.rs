// SPDX-License-Identifier: GPL-2.0
//! Bad addresses for the `EFAULT` checks: system calls pointed at memory
//! that this program does not use and the kernel cannot access.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::{check, Errno, SysResult};

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

/// Where a bad-address call points.
#[derive(Clone, Copy)]
pub enum BadAddr<'a> {
    /// Address 8, in the first page of the address space, which no mapping
    /// of this process covers (`mmap_min_addr` keeps it out of reach, and
    /// nothing here maps at a fixed address).
    Low,
    /// The start of a [`GuardPage`].
    Guard(&'a GuardPage),
}

impl BadAddr<'_> {
    /// The address, and how many bytes from it stay inside the page that
    /// makes it bad.
    fn span(self) -> (usize, usize) {
        match self {
            BadAddr::Low => (8, 4096 - 8),
            BadAddr::Guard(g) => (g.addr(), g.len),
        }
    }
}

/// `ioctl(fd, cmd, at)`: the command's argument at a bad address (`EINVAL`
/// here if the size `cmd` encodes reaches past the bad page).
pub fn ioctl_bad_addr(fd: BorrowedFd<'_>, cmd: u32, at: BadAddr<'_>) -> SysResult<i32> {
    let (addr, room) = at.span();
    if (cmd >> 16) as usize & 0x3fff > room {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: every byte the kernel may access for `cmd` lies in a page
    // that no memory of this program occupies: it can only fault.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, addr) };
    check(ret.into()).map(|r| r as i32)
}

/// `read(fd, at, len)` into a bad address (`EINVAL` here if `len` reaches
/// past the bad page).
pub fn read_bad_addr(fd: BorrowedFd<'_>, at: BadAddr<'_>, len: usize) -> SysResult<usize> {
    let (addr, room) = at.span();
    if len > room {
        return Err(Errno(libc::EINVAL));
    }
    // SAFETY: `addr .. addr + len` lies in a page that no memory of this
    // program occupies: the kernel's copy can only fault.
    let ret = unsafe { libc::read(fd.as_raw_fd(), addr as *mut libc::c_void, len) };
    check(ret as libc::c_long).map(|r| r as usize)
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::super::{eventfd, eventfd_signal, pipe};
    use super::*;

    /// Reads and ioctls at either bad address fault; a size past the bad
    /// page is refused before any system call.
    #[test]
    fn bad_addresses_fault() {
        let g = GuardPage::new().unwrap();
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        for at in [BadAddr::Low, BadAddr::Guard(&g)] {
            eventfd_signal(e.as_fd(), 1).unwrap();
            assert_eq!(read_bad_addr(e.as_fd(), at, 8), Err(Errno(libc::EFAULT)));
            assert_eq!(read_bad_addr(e.as_fd(), at, 4097), Err(Errno(libc::EINVAL)));
        }
        // FIONREAD writes an int: to a bad address, EFAULT.
        let (r, _w) = pipe().unwrap();
        let fionread = libc::FIONREAD as u32;
        for at in [BadAddr::Low, BadAddr::Guard(&g)] {
            assert_eq!(
                ioctl_bad_addr(r.as_fd(), fionread, at),
                Err(Errno(libc::EFAULT))
            );
        }
        // _IOR('x', 1, 8192 bytes): larger than the page.
        let big = (2 << 30) | (8192 << 16) | (u32::from(b'x') << 8) | 1;
        assert_eq!(
            ioctl_bad_addr(r.as_fd(), big, BadAddr::Guard(&g)),
            Err(Errno(libc::EINVAL))
        );
    }
}

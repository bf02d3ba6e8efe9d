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

/// The page size of the test's targets (x86_64).
const PAGE: usize = 4096;

/// `len` bytes of this program's memory that end where a `PROT_NONE` page
/// begins: a buffer whose tail, past `len`, the kernel cannot reach. A call
/// given the buffer with a larger size copies up to the page and faults
/// there. Zeroed when made; unmapped on drop.
pub struct TailGuard {
    map: *mut libc::c_void,
    map_len: usize,
    len: usize,
    sealed: bool,
}

impl TailGuard {
    /// Maps `len` bytes followed by the guard page.
    pub fn new(len: usize) -> SysResult<Self> {
        let pages = len.div_ceil(PAGE);
        let map_len = (pages + 1) * PAGE;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choice touches no existing memory.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let me = TailGuard {
            map,
            map_len,
            len,
            sealed: false,
        };
        // SAFETY: the last page of the mapping made above, which nothing
        // refers to yet.
        let guard = unsafe { map.cast::<u8>().add(pages * PAGE) };
        // SAFETY: as above; changing its protection affects nothing else.
        check(unsafe { libc::mprotect(guard.cast(), PAGE, libc::PROT_NONE) }.into())?;
        Ok(me)
    }

    /// The buffer's first byte: `len` bytes before the guard page.
    fn start(&self) -> *mut u8 {
        // SAFETY: `len <= map_len - PAGE`, so the result lies in the mapping.
        unsafe { self.map.cast::<u8>().add(self.map_len - PAGE - self.len) }
    }

    /// The buffer's address.
    pub fn addr(&self) -> usize {
        self.start() as usize
    }

    /// The buffer's `len` bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the `len` bytes from `start` are mapped readable (sealed
        // or not) and zero-initialised, and only `&mut self` methods write
        // them.
        unsafe { std::slice::from_raw_parts(self.start(), self.len) }
    }

    /// Writes `value` as the `index`-th `T` of the buffer (`EINVAL` if it
    /// does not fit before the guard page, `EACCES` once sealed).
    pub fn put<T: Copy>(&mut self, index: usize, value: T) -> SysResult<()> {
        let size = std::mem::size_of::<T>();
        if (index + 1) * size > self.len {
            return Err(Errno(libc::EINVAL));
        }
        if self.sealed {
            return Err(Errno(libc::EACCES));
        }
        // SAFETY: the bytes written lie in the buffer (checked above), which
        // is writable (not sealed) and exclusively borrowed.
        unsafe {
            self.start()
                .add(index * size)
                .cast::<T>()
                .write_unaligned(value)
        };
        Ok(())
    }

    /// Makes the buffer read-only: the kernel can still read it, but a
    /// write to it faults.
    pub fn seal(&mut self) -> SysResult<()> {
        let pages = self.map_len - PAGE;
        // SAFETY: the mapping's pages before the guard page, which hold the
        // buffer; nothing else lies there.
        check(unsafe { libc::mprotect(self.map, pages, libc::PROT_READ) }.into())?;
        self.sealed = true;
        Ok(())
    }

    /// `read(fd, buffer, n)`, where `n` may reach past the buffer into the
    /// guard page (`EINVAL` here if it reaches past that too).
    pub fn read(&mut self, fd: BorrowedFd<'_>, n: usize) -> SysResult<usize> {
        if n > self.len + PAGE {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: the kernel writes at most `n` bytes from `start`: into the
        // buffer, exclusively borrowed, and then the guard page, where it
        // faults.
        let ret = unsafe { libc::read(fd.as_raw_fd(), self.start().cast(), n) };
        check(ret as libc::c_long).map(|r| r as usize)
    }

    /// `ioctl(fd, cmd, buffer)`: the argument is the buffer, and the size
    /// `cmd` encodes may reach past it into the guard page (`EINVAL` here
    /// if it reaches past that too).
    pub fn ioctl(&mut self, fd: BorrowedFd<'_>, cmd: u32) -> SysResult<i32> {
        if (cmd >> 16) as usize & 0x3fff > self.len + PAGE {
            return Err(Errno(libc::EINVAL));
        }
        // SAFETY: the kernel accesses at most the size `cmd` encodes from
        // `start`: the buffer, exclusively borrowed, and then the guard
        // page, where it faults.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), cmd as _, self.start()) };
        check(ret.into()).map(|r| r as i32)
    }
}

impl Drop for TailGuard {
    fn drop(&mut self) {
        // SAFETY: `map .. map + map_len` is the mapping made in `new`, which
        // nothing else refers to once `self` goes.
        unsafe { libc::munmap(self.map, self.map_len) };
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

    /// An ioctl's argument in a tail-guarded buffer is written up to the
    /// guard page; a sealed buffer can be read but not written.
    #[test]
    fn tail_guard_ioctl() {
        let mut t = TailGuard::new(4).unwrap();
        assert_eq!(t.addr() % PAGE, PAGE - 4);
        t.put(1, 0xabu8).unwrap();
        assert_eq!(t.put(1, 0u32), Err(Errno(libc::EINVAL)));
        assert_eq!(t.bytes(), &[0, 0xab, 0, 0]);
        // FIONREAD writes an int: the bytes the pipe holds.
        let (r, w) = pipe().unwrap();
        crate::sys::write(w.as_fd(), b"12345").unwrap();
        let fionread = libc::FIONREAD as u32;
        assert_eq!(t.ioctl(r.as_fd(), fionread), Ok(0));
        assert_eq!(t.bytes(), 5i32.to_ne_bytes());
        // An int does not fit in 3 bytes before the guard page.
        let mut short = TailGuard::new(3).unwrap();
        assert_eq!(short.ioctl(r.as_fd(), fionread), Err(Errno(libc::EFAULT)));
        t.seal().unwrap();
        assert_eq!(t.put(0, 0u8), Err(Errno(libc::EACCES)));
        assert_eq!(t.ioctl(r.as_fd(), fionread), Err(Errno(libc::EFAULT)));
        assert_eq!(t.bytes(), 5i32.to_ne_bytes());
    }

    /// A read(2) into a tail-guarded buffer fills it up to the guard page,
    /// and one that must copy past it faults.
    #[test]
    fn tail_guard_read() {
        let mut t = TailGuard::new(8).unwrap();
        let e = eventfd(0, libc::EFD_NONBLOCK).unwrap();
        eventfd_signal(e.as_fd(), 3).unwrap();
        assert_eq!(t.read(e.as_fd(), 8), Ok(8));
        assert_eq!(t.bytes(), 3u64.to_ne_bytes());
        assert_eq!(t.read(e.as_fd(), 8 + PAGE + 1), Err(Errno(libc::EINVAL)));
        // The eventfd's 8 bytes reach the guard page: the copy faults.
        let mut short = TailGuard::new(5).unwrap();
        eventfd_signal(e.as_fd(), 1).unwrap();
        assert_eq!(short.read(e.as_fd(), 8), Err(Errno(libc::EFAULT)));
    }
}

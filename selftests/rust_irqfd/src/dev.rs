// SPDX-License-Identifier: GPL-2.0
//! A context (one `open(2)` of a device node) and its ioctls, in ABI terms.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::abi::{
    RustIrqfd, RustIrqfdAck, RustIrqfdDelivery, RustIrqfdGsiStats, RustIrqfdInfo, RustIrqfdMask,
    RustIrqfdRoute, FLAG_DEASSIGN, FLAG_RESAMPLE, MASK_MASKED, ROUTE_MSI, RUST_IRQFD_ACK,
    RUST_IRQFD_GET_INFO, RUST_IRQFD_GSI_STATS, RUST_IRQFD_IRQFD, RUST_IRQFD_SET_MASK,
    RUST_IRQFD_SET_ROUTE,
};
use crate::sys::{self, SysResult};

/// A `RUST_IRQFD_SET_ROUTE` request routing `gsi` to the MSI message
/// (`msi_addr`, `msi_data`).
pub fn msi_route(gsi: u32, msi_addr: u64, msi_data: u32) -> RustIrqfdRoute {
    RustIrqfdRoute {
        gsi,
        flags: ROUTE_MSI,
        msi_addr,
        msi_data,
        pad: 0,
    }
}

/// A `RUST_IRQFD_SET_ROUTE` request clearing the route of `gsi`.
pub fn no_route(gsi: u32) -> RustIrqfdRoute {
    RustIrqfdRoute {
        gsi,
        ..Default::default()
    }
}

/// One context of `/dev/rust_irqfd` or `/dev/c_irqfd`.
pub struct Ctx {
    fd: OwnedFd,
}

impl Ctx {
    /// Opens a context `O_RDWR | O_NONBLOCK`: reads never block unless the
    /// test clears `O_NONBLOCK` itself.
    pub fn open(path: &Path) -> SysResult<Self> {
        Self::open_flags(path, libc::O_RDWR | libc::O_NONBLOCK)
    }

    /// Opens a context with explicit `open(2)` flags.
    pub fn open_flags(path: &Path, flags: i32) -> SysResult<Self> {
        Ok(Ctx {
            fd: sys::open(path, flags)?,
        })
    }

    /// Another descriptor for the same context (the same open file, so the
    /// same `O_NONBLOCK` flag): for a thread that reads while the test goes
    /// on with the original.
    pub fn try_clone(&self) -> SysResult<Self> {
        Ok(Ctx {
            fd: sys::dup(self.fd.as_fd())?,
        })
    }

    /// Closes the context, reporting what `close(2)` returned.
    pub fn close(self) -> SysResult<()> {
        sys::close(self.fd)
    }

    /// `RUST_IRQFD_IRQFD` with a request built by the caller.
    pub fn irqfd(&self, req: &RustIrqfd) -> SysResult<()> {
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_IRQFD, &mut r).map(|_| ())
    }

    /// Binds `efd` to `gsi`.
    pub fn assign(&self, efd: impl AsFd, gsi: u32) -> SysResult<()> {
        self.irqfd(&RustIrqfd {
            fd: sys::fd_u32(efd),
            gsi,
            ..Default::default()
        })
    }

    /// Unbinds `efd` from `gsi`.
    pub fn deassign(&self, efd: impl AsFd, gsi: u32) -> SysResult<()> {
        self.irqfd(&RustIrqfd {
            fd: sys::fd_u32(efd),
            gsi,
            flags: FLAG_DEASSIGN,
            ..Default::default()
        })
    }

    /// Binds `efd` to `gsi` as a resample (level) irqfd that signals
    /// `resamplefd` at each `RUST_IRQFD_ACK` that deasserts the line.
    pub fn assign_resample(
        &self,
        efd: impl AsFd,
        gsi: u32,
        resamplefd: impl AsFd,
    ) -> SysResult<()> {
        self.irqfd(&RustIrqfd {
            fd: sys::fd_u32(efd),
            gsi,
            flags: FLAG_RESAMPLE,
            resamplefd: sys::fd_u32(resamplefd),
            ..Default::default()
        })
    }

    /// `RUST_IRQFD_SET_ROUTE` with a request built by the caller.
    pub fn set_route_raw(&self, req: &RustIrqfdRoute) -> SysResult<()> {
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_SET_ROUTE, &mut r).map(|_| ())
    }

    /// Routes `gsi` to the MSI message (`msi_addr`, `msi_data`).
    pub fn set_route(&self, gsi: u32, msi_addr: u64, msi_data: u32) -> SysResult<()> {
        self.set_route_raw(&msi_route(gsi, msi_addr, msi_data))
    }

    /// Clears the route of `gsi` (a plain line again).
    pub fn clear_route(&self, gsi: u32) -> SysResult<()> {
        self.set_route_raw(&no_route(gsi))
    }

    /// Routes `gsi` to `route` (`msi_addr`, `msi_data`), or clears its
    /// route (`None`).
    pub fn route_to(&self, gsi: u32, route: Option<(u64, u32)>) -> SysResult<()> {
        match route {
            Some((msi_addr, msi_data)) => self.set_route(gsi, msi_addr, msi_data),
            None => self.clear_route(gsi),
        }
    }

    /// `RUST_IRQFD_SET_MASK` with a request built by the caller.
    pub fn set_mask_raw(&self, req: &RustIrqfdMask) -> SysResult<()> {
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_SET_MASK, &mut r).map(|_| ())
    }

    /// Masks (`true`) or unmasks (`false`) `gsi`.
    pub fn set_mask(&self, gsi: u32, masked: bool) -> SysResult<()> {
        self.set_mask_raw(&RustIrqfdMask {
            gsi,
            flags: if masked { MASK_MASKED } else { 0 },
        })
    }

    /// `RUST_IRQFD_ACK` with a request built by the caller: what the ioctl
    /// returned (the number of resamplefds signalled).
    pub fn ack_raw(&self, req: &RustIrqfdAck) -> SysResult<i32> {
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_ACK, &mut r)
    }

    /// `RUST_IRQFD_ACK` of `gsi`: the number of resamplefds signalled.
    pub fn ack(&self, gsi: u32) -> SysResult<u32> {
        self.ack_raw(&RustIrqfdAck { gsi, pad: 0 })
            .map(|n| n as u32)
    }

    /// `RUST_IRQFD_GET_INFO`. The struct is pre-filled with a non-zero
    /// pattern so that bytes the kernel leaves unwritten show up.
    pub fn info(&self) -> SysResult<RustIrqfdInfo> {
        let mut info = RustIrqfdInfo {
            version: 0xa5a5_a5a5,
            nr_gsis: 0xa5a5_a5a5,
            flags: 0xa5a5_a5a5,
            nr_irqfds: 0xa5a5_a5a5,
            shutdowns: 0xa5a5_a5a5_a5a5_a5a5,
            max_irqfds: 0xa5a5_a5a5,
            reserved: [0xa5; 4],
        };
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_GET_INFO, &mut info)?;
        Ok(info)
    }

    /// `RUST_IRQFD_GSI_STATS` for `gsi`.
    pub fn stats(&self, gsi: u32) -> SysResult<RustIrqfdGsiStats> {
        self.stats_raw(gsi, 0)
    }

    /// `RUST_IRQFD_GSI_STATS` with an explicit `pad`; the out fields are
    /// pre-filled with a pattern.
    pub fn stats_raw(&self, gsi: u32, pad: u32) -> SysResult<RustIrqfdGsiStats> {
        const P: u64 = 0xa5a5_a5a5_a5a5_a5a5;
        let mut s = RustIrqfdGsiStats {
            gsi,
            pad,
            injected: P,
            raised: P,
            coalesced: P,
            delivered: P,
            pending: P,
            latched: P,
            acks: P,
            masked: P as u32,
            asserted: P as u32,
        };
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_GSI_STATS, &mut s)?;
        Ok(s)
    }

    /// One `read(2)` with a buffer of `max` records. `Ok(vec![])` never
    /// happens on a correct device (it blocks or gives `EAGAIN` instead);
    /// a short read that is not a whole number of records gives `EIO`
    /// here so that the caller reports it.
    pub fn read_records(&self, max: usize) -> SysResult<Vec<RustIrqfdDelivery>> {
        let mut buf = vec![0u8; max * RustIrqfdDelivery::SIZE];
        let n = sys::read(self.fd.as_fd(), &mut buf)?;
        if n % RustIrqfdDelivery::SIZE != 0 {
            return Err(sys::Errno(libc::EIO));
        }
        Ok(buf[..n]
            .chunks_exact(RustIrqfdDelivery::SIZE)
            .filter_map(RustIrqfdDelivery::from_bytes)
            .collect())
    }

    /// `read(2)` with a raw buffer of `len` bytes: the byte count.
    pub fn read_len(&self, len: usize) -> SysResult<usize> {
        let mut buf = vec![0u8; len];
        sys::read(self.fd.as_fd(), &mut buf)
    }
}

impl AsFd for Ctx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// SPDX-License-Identifier: GPL-2.0
//! [`ModuleBackend`]: one context of `/dev/rust_irqfd` or `/dev/c_irqfd`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{open, Mode, OFlags};
use rustix::io::{read, Errno};

use crate::abi::module::{
    Delivery, GsiStats, Info, Mask, Route, ABI_VERSION, FLAG_DEASSIGN, MASK_MASKED,
};
use crate::abi::RawIrqfd;
use crate::backend::{irqfd_op, IrqFdBackend};
use crate::error::{Error, Op, Result};
use crate::sys;

/// One context (one `open(2)`) of a rust_irqfd module device: the stand-in
/// for a VM, with its own irqfds and a virtual interrupt controller of
/// [`nr_gsis`](IrqFdBackend::nr_gsis) lines. Closing it (dropping the
/// backend) shuts every irqfd of the context down.
///
/// Every [`IrqFdBackend`] operation maps to one ioctl of ABI version 2:
/// `assign`/`deassign`/`assign_resample` to `RUST_IRQFD_IRQFD`,
/// `set_msi`/`clear_msi` to `RUST_IRQFD_SET_ROUTE` (per GSI, in place),
/// `mask`/`unmask` to `RUST_IRQFD_SET_MASK` (MSI-X style pending latch),
/// `ack` to `RUST_IRQFD_ACK` (returns the number of resamplefds signalled),
/// `line_asserted` to `RUST_IRQFD_GSI_STATS`.
///
/// Besides those it exposes the module's test interface:
/// [`info`](Self::info), [`gsi_stats`](Self::gsi_stats) and the delivery
/// records ([`read_deliveries`](Self::read_deliveries)), each carrying the
/// route it was raised with and whether a level irqfd raised it.
///
/// `Send + Sync`: it holds a descriptor and plain data; the kernel
/// serialises what must be serialised per context.
///
/// ```
/// use rust_irqfd_vmm::{EventFd, IrqFdBackend, ModuleBackend};
/// use std::os::fd::AsFd;
///
/// let Ok(ctx) = ModuleBackend::open_c() else { return Ok(()) }; // module not loaded
/// let e = EventFd::new()?;
/// ctx.assign(e.as_fd(), 3)?;
/// ctx.mask(3)?; // the module's own per-GSI latch
/// e.signal()?;
/// let st = ctx.wait_gsi_stats(3, std::time::Duration::from_secs(5), |s| s.latched == 1)?;
/// assert_eq!((st.latched, st.raised), (1, 0));
/// ctx.unmask(3)?; // one record, carrying what the latch held
/// assert_eq!(ctx.read_deliveries()?.len(), 1);
/// ctx.deassign(e.as_fd(), 3)?;
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
#[derive(Debug)]
pub struct ModuleBackend {
    ctx: OwnedFd,
    path: PathBuf,
    name: String,
    nr_gsis: u32,
}

impl ModuleBackend {
    /// The Rust module's device node.
    pub const RUST_PATH: &'static str = "/dev/rust_irqfd";
    /// The C reference module's device node.
    pub const C_PATH: &'static str = "/dev/c_irqfd";

    /// Opens a new context of `/dev/rust_irqfd`.
    pub fn open_rust() -> Result<Self> {
        Self::open(Self::RUST_PATH)
    }

    /// Opens a new context of `/dev/c_irqfd`.
    pub fn open_c() -> Result<Self> {
        Self::open(Self::C_PATH)
    }

    /// Opens a new context of the device at `path` and checks that it speaks
    /// [`ABI_VERSION`] ([`Error::AbiVersion`] otherwise).
    ///
    /// The context is opened `O_NONBLOCK`, so that reading deliveries never
    /// blocks (the devices do not implement `poll(2)`);
    /// [`wait_deliveries`](Self::wait_deliveries) bounds its wait instead.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let ctx = open(
            &path,
            OFlags::RDWR | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|errno| Error::Open {
            path: path.clone(),
            errno,
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("irqfd module")
            .to_owned();
        let info =
            sys::module_get_info(ctx.as_fd()).map_err(|e| Error::kernel(Op::GetInfo, None, e))?;
        if info.version != ABI_VERSION {
            return Err(Error::AbiVersion {
                what: path.display().to_string(),
                expected: ABI_VERSION,
                found: info.version,
            });
        }
        Ok(Self {
            ctx,
            path,
            name,
            nr_gsis: info.nr_gsis,
        })
    }

    /// The device node this context was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The context's descriptor.
    pub fn context_fd(&self) -> BorrowedFd<'_> {
        self.ctx.as_fd()
    }

    /// `RUST_IRQFD_GET_INFO`: the interrupt controller's shape and the
    /// context's irqfd counters, now.
    pub fn info(&self) -> Result<Info> {
        sys::module_get_info(self.ctx.as_fd()).map_err(|e| Error::kernel(Op::GetInfo, None, e))
    }

    /// `RUST_IRQFD_GSI_STATS`: `gsi`'s counters (`EINVAL` out of range).
    pub fn gsi_stats(&self, gsi: u32) -> Result<GsiStats> {
        sys::module_gsi_stats(self.ctx.as_fd(), gsi)
            .map_err(|e| Error::kernel(Op::GsiStats, Some(gsi), e))
    }

    /// `RUST_IRQFD_IRQFD_BATCH`: binds (or, with `deassign`, unbinds) every
    /// entry of `entries` in one call, at most
    /// [`BATCH_MAX`](crate::abi::module::BATCH_MAX); each entry is a plain
    /// [`RawIrqfd::assign`] (descriptor number and GSI, flags 0). Binding is
    /// all or nothing: on failure the error comes with the index of the entry
    /// at fault (`entries.len()` if none is), and nothing is left bound.
    /// Unbinding waits once for every shutdown.
    pub fn irqfd_batch(
        &self,
        entries: &[RawIrqfd],
        deassign: bool,
    ) -> std::result::Result<(), (u32, Error)> {
        let (op, flags) = if deassign {
            (Op::Deassign, FLAG_DEASSIGN)
        } else {
            (Op::Assign, 0)
        };
        match sys::module_irqfd_batch(self.ctx.as_fd(), entries, flags) {
            (Ok(()), _) => Ok(()),
            (Err(e), index) => {
                let gsi = usize::try_from(index)
                    .ok()
                    .and_then(|i| entries.get(i))
                    .map(|r| r.gsi);
                Err((index, Error::kernel(op, gsi, e)))
            }
        }
    }

    /// Polls [`gsi_stats`](Self::gsi_stats) every millisecond until `until`
    /// holds for them or `timeout` has passed, and returns the last ones
    /// read (the caller checks `until` again to tell which). For waiting
    /// until injections have landed, which may be deferred to a work item.
    pub fn wait_gsi_stats(
        &self,
        gsi: u32,
        timeout: Duration,
        until: impl Fn(&GsiStats) -> bool,
    ) -> Result<GsiStats> {
        let start = Instant::now();
        loop {
            let st = self.gsi_stats(gsi)?;
            if until(&st) || start.elapsed() >= timeout {
                return Ok(st);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Reads the delivery records pending now, oldest first, and removes
    /// them from the context; empty if there are none. Never blocks (the
    /// context is non-blocking), and stops after 4096 records.
    pub fn read_deliveries(&self) -> Result<Vec<Delivery>> {
        const BATCH: usize = 64;
        let mut out = Vec::new();
        // Bounded, so that a storm of injections cannot keep us here: what
        // is left is for the next call.
        const MAX_READS: usize = 64;
        let mut buf = [0u8; BATCH * Delivery::SIZE];
        for _ in 0..MAX_READS {
            let n = match read(&self.ctx, &mut buf) {
                Ok(n) => n,
                Err(Errno::AGAIN) => break,
                Err(e) => return Err(Error::kernel(Op::ReadDeliveries, None, e)),
            };
            let got = buf.get(..n).unwrap_or_default();
            let records = got.chunks_exact(Delivery::SIZE);
            if !records.remainder().is_empty() {
                // The ABI returns whole records only.
                return Err(Error::kernel(Op::ReadDeliveries, None, Errno::IO));
            }
            out.extend(records.filter_map(Delivery::from_bytes));
            if n == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Like [`read_deliveries`](Self::read_deliveries), but waits (by
    /// polling every millisecond, at most `timeout`) until at least one
    /// record is there. Empty if none came in time.
    pub fn wait_deliveries(&self, timeout: Duration) -> Result<Vec<Delivery>> {
        let start = Instant::now();
        loop {
            let d = self.read_deliveries()?;
            if !d.is_empty() || start.elapsed() >= timeout {
                return Ok(d);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl IrqFdBackend for ModuleBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn nr_gsis(&self) -> u32 {
        self.nr_gsis
    }

    fn irqfd(&self, req: &RawIrqfd) -> Result<()> {
        sys::module_irqfd(self.ctx.as_fd(), *req)
            .map_err(|e| Error::kernel(irqfd_op(req), Some(req.gsi), e))
    }

    /// `RUST_IRQFD_SET_ROUTE` with `RUST_IRQFD_ROUTE_MSI`: `EINVAL` for a
    /// GSI out of range, or an address that is zero or not 4-byte aligned.
    fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()> {
        sys::module_set_route(self.ctx.as_fd(), Route::msi(gsi, addr, data))
            .map_err(|e| Error::kernel(Op::SetMsi, Some(gsi), e))
    }

    /// `RUST_IRQFD_SET_ROUTE` with flags 0: the GSI is a plain line again.
    fn clear_msi(&self, gsi: u32) -> Result<()> {
        sys::module_set_route(self.ctx.as_fd(), Route::clear(gsi))
            .map_err(|e| Error::kernel(Op::ClearMsi, Some(gsi), e))
    }

    /// `RUST_IRQFD_SET_MASK` with `RUST_IRQFD_MASK_MASKED`.
    fn mask(&self, gsi: u32) -> Result<()> {
        let mask = Mask {
            gsi,
            flags: MASK_MASKED,
        };
        sys::module_set_mask(self.ctx.as_fd(), mask)
            .map_err(|e| Error::kernel(Op::Mask, Some(gsi), e))
    }

    /// `RUST_IRQFD_SET_MASK` with flags 0: latched injections become one
    /// record now, with the GSI's current route.
    fn unmask(&self, gsi: u32) -> Result<()> {
        sys::module_set_mask(self.ctx.as_fd(), Mask { gsi, flags: 0 })
            .map_err(|e| Error::kernel(Op::Unmask, Some(gsi), e))
    }

    /// `RUST_IRQFD_ACK`.
    fn ack(&self, gsi: u32) -> Result<u32> {
        sys::module_ack(self.ctx.as_fd(), gsi).map_err(|e| Error::kernel(Op::Ack, Some(gsi), e))
    }

    /// The `asserted` field of `RUST_IRQFD_GSI_STATS`.
    fn line_asserted(&self, gsi: u32) -> Result<bool> {
        Ok(self.gsi_stats(gsi)?.is_asserted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_an_open_error() {
        let e = ModuleBackend::open("/nonexistent/rust_irqfd").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOENT));
        assert!(matches!(e, Error::Open { .. }));
    }

    #[test]
    fn a_device_that_is_not_ours_is_enotty() {
        // /dev/null answers no ioctl: GET_INFO fails with ENOTTY.
        let e = ModuleBackend::open("/dev/null").unwrap_err();
        assert_eq!(e, Error::kernel(Op::GetInfo, None, Errno::NOTTY));
    }
}

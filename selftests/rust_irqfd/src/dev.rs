// SPDX-License-Identifier: GPL-2.0
//! A context (one `open(2)` of a device node, or a KVM VM) and its ioctls,
//! in ABI terms.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use crate::abi::kvm::{KVM_CREATE_IRQCHIP, KVM_CREATE_VM};
use crate::abi::{
    RustIrqfd, RustIrqfdAck, RustIrqfdDelivery, RustIrqfdGsiStats, RustIrqfdInfo, RustIrqfdMask,
    RustIrqfdRoute, FLAG_DEASSIGN, FLAG_RESAMPLE, KVM_IRQFD, MASK_MASKED, ROUTE_MSI,
    RUST_IRQFD_ACK, RUST_IRQFD_GET_INFO, RUST_IRQFD_GSI_STATS, RUST_IRQFD_IRQFD,
    RUST_IRQFD_SET_MASK, RUST_IRQFD_SET_ROUTE,
};
use crate::kvm::Deliveries;
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

/// What answers the irqfd ABI behind a device node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `/dev/rust_irqfd` or `/dev/c_irqfd`: each open is a context with its
    /// virtual irqchip, and every ioctl of the ABI.
    Module,
    /// `/dev/kvm`: a context is a VM with the in-kernel irqchip
    /// (`KVM_CREATE_VM`, `KVM_CREATE_IRQCHIP`, no vCPU), and the only
    /// command of the ABI is `KVM_IRQFD` (assign, deassign, resample).
    Kvm,
}

impl Kind {
    /// The kind of the node at `path`: KVM for a node named `kvm`.
    pub fn of(path: &Path) -> Kind {
        match path.file_name() {
            Some(n) if n == "kvm" => Kind::Kvm,
            _ => Kind::Module,
        }
    }
}

/// One context of `/dev/rust_irqfd` or `/dev/c_irqfd`, or a KVM VM.
pub struct Ctx {
    fd: OwnedFd,
    kind: Kind,
    /// On a VM: where its injections are seen, shared with its clones.
    deliveries: Option<Arc<Deliveries>>,
}

impl Ctx {
    /// Opens a context `O_RDWR | O_NONBLOCK`: reads never block unless the
    /// test clears `O_NONBLOCK` itself. On `/dev/kvm`, creates a VM.
    pub fn open(path: &Path) -> SysResult<Self> {
        Self::open_flags(path, libc::O_RDWR | libc::O_NONBLOCK)
    }

    /// Opens a context with explicit `open(2)` flags; on `/dev/kvm` the
    /// flags are those of the `/dev/kvm` descriptor, closed once the VM
    /// exists.
    pub fn open_flags(path: &Path, flags: i32) -> SysResult<Self> {
        let fd = sys::open(path, flags)?;
        match Kind::of(path) {
            Kind::Module => Ok(Ctx {
                fd,
                kind: Kind::Module,
                deliveries: None,
            }),
            Kind::Kvm => Self::create_vm(fd.as_fd()),
        }
    }

    /// `KVM_CREATE_VM` and `KVM_CREATE_IRQCHIP` on the `/dev/kvm`
    /// descriptor `kvm`, and vCPU 0 where injections are seen
    /// ([`Deliveries`]). `KVM_CREATE_VM` may give `EINTR` (a signal while
    /// it sets up the VM's MMU notifier): retried a few times.
    fn create_vm(kvm: BorrowedFd<'_>) -> SysResult<Self> {
        let mut tries = 0;
        let vm = loop {
            match sys::ioctl_new_fd(kvm, KVM_CREATE_VM, 0) {
                Err(e) if e.0 == libc::EINTR && tries < 8 => tries += 1,
                r => break r?,
            }
        };
        sys::ioctl_val(vm.as_fd(), KVM_CREATE_IRQCHIP, 0)?;
        let deliveries = Deliveries::set_up(vm.as_fd())?;
        Ok(Ctx {
            fd: vm,
            kind: Kind::Kvm,
            deliveries: Some(Arc::new(deliveries)),
        })
    }

    /// On a VM, where its injections are seen.
    pub fn deliveries(&self) -> Option<&Deliveries> {
        self.deliveries.as_deref()
    }

    /// What this context is a context of.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The command that assigns and deassigns irqfds here:
    /// `RUST_IRQFD_IRQFD`, or `KVM_IRQFD` on a VM.
    pub fn irqfd_cmd(&self) -> u32 {
        match self.kind {
            Kind::Module => RUST_IRQFD_IRQFD,
            Kind::Kvm => KVM_IRQFD,
        }
    }

    /// `Ok` on a module context; `ENOTTY` on a KVM VM, which has no such
    /// command (the KVM target's plan keeps the tests that need one off
    /// KVM; this keeps a command of the module's from ever reaching KVM).
    fn module_only(&self) -> SysResult<()> {
        match self.kind {
            Kind::Module => Ok(()),
            Kind::Kvm => Err(sys::Errno(libc::ENOTTY)),
        }
    }

    /// Another descriptor for the same context (the same open file, so the
    /// same `O_NONBLOCK` flag): for a thread that reads while the test goes
    /// on with the original.
    pub fn try_clone(&self) -> SysResult<Self> {
        Ok(Ctx {
            fd: sys::dup(self.fd.as_fd())?,
            kind: self.kind,
            deliveries: self.deliveries.clone(),
        })
    }

    /// Closes the context, reporting what `close(2)` returned.
    pub fn close(self) -> SysResult<()> {
        sys::close(self.fd)
    }

    /// `RUST_IRQFD_IRQFD` (`KVM_IRQFD` on a VM: the same request) with a
    /// request built by the caller.
    pub fn irqfd(&self, req: &RustIrqfd) -> SysResult<()> {
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), self.irqfd_cmd(), &mut r).map(|_| ())
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
        self.module_only()?;
        let mut r = *req;
        sys::ioctl_ptr(self.fd.as_fd(), RUST_IRQFD_SET_ROUTE, &mut r).map(|_| ())
    }

    /// Routes `gsi` to the MSI message (`msi_addr`, `msi_data`). On a VM,
    /// routes it with `KVM_SET_GSI_ROUTING` to a vector that stands for
    /// this route ([`Deliveries::route`]).
    pub fn set_route(&self, gsi: u32, msi_addr: u64, msi_data: u32) -> SysResult<()> {
        match &self.deliveries {
            Some(d) => d.route(self.fd.as_fd(), gsi, Some((msi_addr, msi_data))),
            None => self.set_route_raw(&msi_route(gsi, msi_addr, msi_data)),
        }
    }

    /// Clears the route of `gsi` (a plain line again; on a VM, its default
    /// vector again).
    pub fn clear_route(&self, gsi: u32) -> SysResult<()> {
        match &self.deliveries {
            Some(d) => d.route(self.fd.as_fd(), gsi, None),
            None => self.set_route_raw(&no_route(gsi)),
        }
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
        self.module_only()?;
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
        self.module_only()?;
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
        self.module_only()?;
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
        self.module_only()?;
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
    ///
    /// On a VM, the records are made up from what vCPU 0's local APIC
    /// shows ([`Deliveries::read`]).
    pub fn read_records(&self, max: usize) -> SysResult<Vec<RustIrqfdDelivery>> {
        if let Some(d) = &self.deliveries {
            return d.read(max);
        }
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
        self.module_only()?;
        let mut buf = vec![0u8; len];
        sys::read(self.fd.as_fd(), &mut buf)
    }
}

impl AsFd for Ctx {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// SPDX-License-Identifier: GPL-2.0
//! [`KvmBackend`]: a real KVM VM with an in-kernel irqchip, through
//! `/dev/kvm`.

use std::ops::Range;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rustix::fs::{open, Mode, OFlags};
use rustix::io::Errno;

use crate::abi::kvm::{
    default_routes, RoutingEntry, API_VERSION, CAP_IRQFD, CAP_IRQ_ROUTING, IRQCHIP_IOAPIC,
    IRQ_ROUTING_IRQCHIP, IRQ_ROUTING_MSI, NR_DEFAULT_GSIS,
};
use crate::abi::RawIrqfd;
use crate::backend::{irqfd_op, raw_assign, raw_assign_resample, raw_deassign, IrqFdBackend};
use crate::error::{Error, Op, Result};
use crate::sys;

/// A KVM VM (`KVM_CREATE_VM`, type 0) with an in-kernel irqchip
/// (`KVM_CREATE_IRQCHIP`), no vCPUs: enough for `KVM_IRQFD` and
/// `KVM_SET_GSI_ROUTING`, which is what a VMM's interrupt plumbing uses.
///
/// KVM's routing ABI replaces the whole table at once, so the backend keeps
/// the table in userspace, starting from the routes the kernel installs with
/// the irqchip ([`default_routes`]): [`set_msi`](IrqFdBackend::set_msi)
/// replaces one GSI's routes and pushes the whole table;
/// [`clear_msi`](IrqFdBackend::clear_msi) removes the GSI's MSI route and
/// pushes it. The userspace copy changes only when the kernel took the new
/// table, so the two never disagree, as long as nothing else sets the VM's
/// routes (one backend per VM).
///
/// Resample (level) irqfds work as KVM implements them
/// ([`assign_resample`](IrqFdBackend::assign_resample) is
/// `KVM_IRQFD_FLAG_RESAMPLE`): on a GSI routed to the in-kernel irqchip
/// (GSIs `0 .. 24` by default) a signal asserts the IOAPIC/PIC input, and
/// the guest's EOI deasserts it and signals the resamplefd. KVM checks
/// neither the GSI's range nor its route at assign time.
///
/// What KVM does not have returns [`Error::Unsupported`]:
/// [`mask`](IrqFdBackend::mask) and [`unmask`](IrqFdBackend::unmask) (no
/// per-GSI mask; an [`IrqFdRoute`](crate::IrqFdRoute) emulates masking by
/// unbinding its eventfd, see there), and [`ack`](IrqFdBackend::ack) (the
/// EOI comes from the guest, through a vCPU, not from userspace).
/// [`line_asserted`](IrqFdBackend::line_asserted) reads the IOAPIC's IRR
/// (`KVM_GET_IRQCHIP`) for GSIs routed to an IOAPIC pin.
///
/// Dropping the backend closes the VM descriptor, which tears the VM and its
/// irqfds down.
///
/// `Send + Sync`: a descriptor, and the routing table behind a mutex that is
/// held across each `KVM_SET_GSI_ROUTING`, so concurrent route updates are
/// applied one at a time.
///
/// ```
/// use rust_irqfd_vmm::{EventFd, IrqFdBackend, KvmBackend};
/// use std::os::fd::AsFd;
///
/// let Ok(vm) = KvmBackend::new() else { return Ok(()) }; // no /dev/kvm here
/// assert_eq!(vm.reserved_gsis(), 0..24); // the irqchip's default routes
/// let e = EventFd::new()?;
/// vm.set_msi(30, 0xfee0_0000, 0x41)?;
/// vm.assign(e.as_fd(), 30)?;
/// assert_eq!(vm.msi_route(30), Some((0xfee0_0000, 0x41)));
/// assert!(vm.mask(30).unwrap_err().is_unsupported()); // KVM has no per-GSI mask
/// vm.deassign(e.as_fd(), 30)?;
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
///
/// With the `kvm-ioctls` feature, `from_vm_fd` builds the backend over a
/// rust-vmm `kvm_ioctls::VmFd` instead: assign, resample assign, deassign
/// and routing then go through kvm-ioctls; the raw request
/// ([`irqfd`](IrqFdBackend::irqfd)) and the IOAPIC read stay the crate's
/// own ioctls.
#[derive(Debug)]
pub struct KvmBackend {
    vm: Vm,
    max_routes: u32,
    routes: Mutex<Vec<RoutingEntry>>,
}

/// The VM descriptor, and who issues its ioctls.
#[derive(Debug)]
enum Vm {
    /// This crate's own ioctls (`sys`).
    Own(OwnedFd),
    /// rust-vmm's kvm-ioctls.
    #[cfg(feature = "kvm-ioctls")]
    Ioctls(std::sync::Arc<kvm_ioctls::VmFd>),
}

impl Vm {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Vm::Own(fd) => fd.as_fd(),
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(vm) => sys::rust_vmm::vm_fd(vm),
        }
    }
}

/// A kvm-ioctls error as this crate's.
#[cfg(feature = "kvm-ioctls")]
fn rust_vmm_error(op: Op, gsi: Option<u32>, e: &kvm_ioctls::Error) -> Error {
    Error::kernel(op, gsi, Errno::from_raw_os_error(e.errno()))
}

impl KvmBackend {
    /// The KVM device node.
    pub const PATH: &'static str = "/dev/kvm";

    /// Creates a VM on `/dev/kvm`. See [`open`](Self::open).
    pub fn new() -> Result<Self> {
        Self::open(Self::PATH)
    }

    /// Creates a VM through the KVM device at `path`: checks the API version
    /// (12) and the `KVM_CAP_IRQFD` and `KVM_CAP_IRQ_ROUTING` capabilities,
    /// then `KVM_CREATE_VM` and `KVM_CREATE_IRQCHIP`.
    ///
    /// Each step is one non-blocking system call; any failure (no
    /// `/dev/kvm`, no permission, no virtualisation support, ...) is
    /// returned as an error, so probing for KVM cannot hang.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let kvm = open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(|errno| {
            Error::Open {
                path: path.to_path_buf(),
                errno,
            }
        })?;
        let version = sys::kvm_get_api_version(kvm.as_fd())
            .map_err(|e| Error::kernel(Op::GetApiVersion, None, e))?;
        if version != API_VERSION {
            return Err(Error::AbiVersion {
                what: path.display().to_string(),
                expected: API_VERSION.unsigned_abs(),
                found: version.unsigned_abs(),
            });
        }
        let cap = |cap: usize, name: &'static str| -> Result<u32> {
            match sys::kvm_check_extension(kvm.as_fd(), cap) {
                Ok(n) if n > 0 => Ok(n.unsigned_abs()),
                Ok(_) => Err(Error::MissingCapability { cap: name }),
                Err(e) => Err(Error::kernel(Op::CheckExtension, None, e)),
            }
        };
        cap(CAP_IRQFD, "KVM_CAP_IRQFD")?;
        let max_routes = cap(CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING")?;
        let vm = create_vm(kvm.as_fd())?;
        drop(kvm);
        sys::kvm_create_irqchip(vm.as_fd())
            .map_err(|e| Error::kernel(Op::CreateIrqchip, None, e))?;
        Ok(Self {
            vm: Vm::Own(vm),
            max_routes,
            routes: Mutex::new(default_routes()),
        })
    }

    /// The backend over a VM a rust-vmm VMM made with kvm-ioctls, which
    /// must have its in-kernel irqchip (`VmFd::create_irq_chip`); the VMM
    /// keeps its `Arc` for its vCPUs and memory.
    ///
    /// The backend then owns the VM's GSI routing (`KVM_SET_GSI_ROUTING`
    /// replaces the whole table, and KVM has no way to read it back): it
    /// starts from the irqchip's default routes, so hand the VM over before
    /// setting any route of your own (one set earlier is replaced by the
    /// first [`set_msi`](IrqFdBackend::set_msi)), and set every later route
    /// through it. Checks `KVM_CAP_IRQFD` and
    /// `KVM_CAP_IRQ_ROUTING`, and that the irqchip is there
    /// (`KVM_GET_IRQCHIP` answers `ENXIO` without one).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use rust_irqfd_vmm::{IrqFd, KvmBackend};
    ///
    /// let Ok(kvm) = kvm_ioctls::Kvm::new() else { return Ok(()) }; // no /dev/kvm here
    /// let vm = Arc::new(kvm.create_vm().map_err(std::io::Error::from)?);
    /// vm.create_irq_chip().map_err(std::io::Error::from)?;
    /// let irqfd = IrqFd::new(KvmBackend::from_vm_fd(Arc::clone(&vm))?);
    /// let route = irqfd.new_route()?;
    /// route.set_msi(0xfee0_0000, 0x41)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "kvm-ioctls")]
    pub fn from_vm_fd(vm: std::sync::Arc<kvm_ioctls::VmFd>) -> Result<Self> {
        use kvm_ioctls::Cap;
        if !vm.check_extension(Cap::Irqfd) {
            return Err(Error::MissingCapability {
                cap: "KVM_CAP_IRQFD",
            });
        }
        let max_routes = u32::try_from(vm.check_extension_int(Cap::IrqRouting))
            .ok()
            .filter(|n| *n > 0)
            .ok_or(Error::MissingCapability {
                cap: "KVM_CAP_IRQ_ROUTING",
            })?;
        let backend = Self {
            vm: Vm::Ioctls(vm),
            max_routes,
            routes: Mutex::new(default_routes()),
        };
        backend.ioapic_irr()?;
        Ok(backend)
    }

    /// The kvm-ioctls VM, for a backend made by
    /// [`from_vm_fd`](Self::from_vm_fd).
    #[cfg(feature = "kvm-ioctls")]
    pub fn kvm_ioctls_vm(&self) -> Option<&std::sync::Arc<kvm_ioctls::VmFd>> {
        match &self.vm {
            Vm::Ioctls(vm) => Some(vm),
            Vm::Own(_) => None,
        }
    }

    /// The VM descriptor.
    pub fn vm_fd(&self) -> BorrowedFd<'_> {
        self.vm.fd()
    }

    /// A copy of the routing table as the kernel has it.
    pub fn routes(&self) -> Vec<RoutingEntry> {
        self.lock().clone()
    }

    /// The MSI `(address, data)` `gsi` is routed to, if any.
    pub fn msi_route(&self, gsi: u32) -> Option<(u64, u32)> {
        self.lock()
            .iter()
            .filter(|e| e.gsi == gsi)
            .find_map(RoutingEntry::as_msi)
    }

    /// The in-kernel IOAPIC's IRR (`KVM_GET_IRQCHIP`): bit `n` is set while
    /// the input of pin `n` is asserted (for an edge-triggered pin, until it
    /// is delivered; in a VM without vCPUs, where every pin is masked,
    /// nothing is delivered).
    ///
    /// On either kind of VM this is the crate's own `KVM_GET_IRQCHIP`, into
    /// its own mirror of the IOAPIC state, which needs no C union.
    pub fn ioapic_irr(&self) -> Result<u32> {
        sys::kvm_get_irqchip(self.vm.fd(), IRQCHIP_IOAPIC)
            .map_err(|e| Error::kernel(Op::GetIrqchip, None, e))?
            .ioapic_irr()
            .ok_or_else(|| Error::kernel(Op::GetIrqchip, None, Errno::IO))
    }

    /// The IOAPIC pin `gsi` is routed to, if any.
    pub fn ioapic_pin(&self, gsi: u32) -> Option<u32> {
        self.lock()
            .iter()
            .find(|e| e.gsi == gsi && e.kind == IRQ_ROUTING_IRQCHIP && e.u[0] == IRQCHIP_IOAPIC)
            .map(|e| e.u[1])
    }

    fn unsupported(&self, op: Op) -> Error {
        Error::Unsupported {
            op,
            backend: self.name().to_owned(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<RoutingEntry>> {
        // The table is replaced whole, after the kernel accepted it: it is
        // consistent whatever a panicking holder was doing.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pushes `next` to the kernel and, if it took it, makes it the table.
    fn replace_table(
        &self,
        table: &mut Vec<RoutingEntry>,
        next: Vec<RoutingEntry>,
        op: Op,
        gsi: u32,
    ) -> Result<()> {
        let words: Vec<[u32; 12]> = next.iter().map(RoutingEntry::to_words).collect();
        match &self.vm {
            Vm::Own(fd) => sys::kvm_set_gsi_routing(fd.as_fd(), &words)
                .map_err(|e| Error::kernel(op, Some(gsi), e))?,
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(vm) => {
                let entries: Vec<_> = words.iter().map(rust_vmm_entry).collect();
                let routing = kvm_bindings::KvmIrqRouting::from_entries(&entries)
                    .map_err(|_| Error::kernel(op, Some(gsi), Errno::INVAL))?;
                vm.set_gsi_routing(&routing)
                    .map_err(|e| rust_vmm_error(op, Some(gsi), &e))?;
            }
        }
        *table = next;
        Ok(())
    }
}

/// A routing entry's twelve words as kvm-bindings' struct.
#[cfg(feature = "kvm-ioctls")]
fn rust_vmm_entry(w: &[u32; 12]) -> kvm_bindings::kvm_irq_routing_entry {
    let [gsi, type_, flags, pad, u @ ..] = *w;
    kvm_bindings::kvm_irq_routing_entry {
        gsi,
        type_,
        flags,
        pad,
        u: kvm_bindings::kvm_irq_routing_entry__bindgen_ty_1 { pad: u },
    }
}

/// `KVM_CREATE_VM(0)`, retried a few times on `EINTR` (which it can return
/// when a signal arrives while the VM is being set up).
fn create_vm(kvm: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut tries = 0;
    loop {
        match sys::kvm_create_vm(kvm, 0) {
            Err(Errno::INTR) if tries < 3 => tries += 1,
            r => return r.map_err(|e| Error::kernel(Op::CreateVm, None, e)),
        }
    }
}

impl IrqFdBackend for KvmBackend {
    /// `kvm`, or `kvm-ioctls` over a kvm-ioctls VM.
    fn name(&self) -> &str {
        match self.vm {
            Vm::Own(_) => "kvm",
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(_) => "kvm-ioctls",
        }
    }

    /// `KVM_MAX_IRQ_ROUTES` (`KVM_CHECK_EXTENSION(KVM_CAP_IRQ_ROUTING)`):
    /// the GSIs a route can be set for. `KVM_IRQFD` itself does not range
    /// check the GSI.
    fn nr_gsis(&self) -> u32 {
        self.max_routes
    }

    /// GSIs `0 .. 24`, which carry the irqchip's default routes.
    fn reserved_gsis(&self) -> Range<u32> {
        0..NR_DEFAULT_GSIS
    }

    /// Issued as is, with this crate's `KVM_IRQFD` on either kind of VM:
    /// a raw request may carry what kvm-ioctls' typed calls cannot (unknown
    /// flags, a non-zero pad, a descriptor that is not open).
    fn irqfd(&self, req: &RawIrqfd) -> Result<()> {
        sys::kvm_irqfd(self.vm.fd(), *req)
            .map_err(|e| Error::kernel(irqfd_op(req), Some(req.gsi), e))
    }

    /// `VmFd::register_irqfd` over kvm-ioctls, else `KVM_IRQFD`.
    fn assign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        match &self.vm {
            Vm::Own(_) => raw_assign(self, eventfd, gsi),
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(vm) => sys::rust_vmm::with_eventfd(eventfd, |e| vm.register_irqfd(e, gsi))
                .map_err(|e| rust_vmm_error(Op::Assign, Some(gsi), &e)),
        }
    }

    /// `VmFd::register_irqfd_with_resample` over kvm-ioctls, else
    /// `KVM_IRQFD` with `KVM_IRQFD_FLAG_RESAMPLE`.
    fn assign_resample(
        &self,
        eventfd: BorrowedFd<'_>,
        gsi: u32,
        resamplefd: BorrowedFd<'_>,
    ) -> Result<()> {
        match &self.vm {
            Vm::Own(_) => raw_assign_resample(self, eventfd, gsi, resamplefd),
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(vm) => sys::rust_vmm::with_eventfd(eventfd, |e| {
                sys::rust_vmm::with_eventfd(resamplefd, |r| {
                    vm.register_irqfd_with_resample(e, r, gsi)
                })
            })
            .map_err(|e| rust_vmm_error(Op::AssignResample, Some(gsi), &e)),
        }
    }

    /// `VmFd::unregister_irqfd` over kvm-ioctls, else `KVM_IRQFD` with
    /// `KVM_IRQFD_FLAG_DEASSIGN`.
    fn deassign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        match &self.vm {
            Vm::Own(_) => raw_deassign(self, eventfd, gsi),
            #[cfg(feature = "kvm-ioctls")]
            Vm::Ioctls(vm) => sys::rust_vmm::with_eventfd(eventfd, |e| vm.unregister_irqfd(e, gsi))
                .map_err(|e| rust_vmm_error(Op::Deassign, Some(gsi), &e)),
        }
    }

    /// Replaces every route of `gsi` (KVM allows no other route beside an
    /// MSI one) with an MSI route, and pushes the table.
    fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()> {
        let mut table = self.lock();
        let mut next: Vec<RoutingEntry> = table.iter().filter(|e| e.gsi != gsi).copied().collect();
        next.push(RoutingEntry::msi(gsi, addr, data));
        self.replace_table(&mut table, next, Op::SetMsi, gsi)
    }

    /// Removes `gsi`'s MSI route, if it has one, and pushes the table.
    /// A GSI without one needs no call into KVM; a GSI beyond the routing
    /// table is `EINVAL`, as `KVM_SET_GSI_ROUTING` would answer for it (and
    /// as the modules answer).
    fn clear_msi(&self, gsi: u32) -> Result<()> {
        if gsi >= self.max_routes {
            return Err(Error::kernel(Op::ClearMsi, Some(gsi), Errno::INVAL));
        }
        let mut table = self.lock();
        let is_msi = |e: &RoutingEntry| e.gsi == gsi && e.kind == IRQ_ROUTING_MSI;
        if !table.iter().any(is_msi) {
            return Ok(());
        }
        let next = table.iter().filter(|e| !is_msi(e)).copied().collect();
        self.replace_table(&mut table, next, Op::ClearMsi, gsi)
    }

    /// [`Error::Unsupported`]: KVM has no per-GSI mask.
    fn mask(&self, _gsi: u32) -> Result<()> {
        Err(self.unsupported(Op::Mask))
    }

    /// [`Error::Unsupported`]: KVM has no per-GSI mask.
    fn unmask(&self, _gsi: u32) -> Result<()> {
        Err(self.unsupported(Op::Unmask))
    }

    /// [`Error::Unsupported`]: on KVM the guest acknowledges a level line
    /// (its EOI to the IOAPIC or PIC, through a vCPU), which is what
    /// deasserts it and signals the resamplefds.
    fn ack(&self, _gsi: u32) -> Result<u32> {
        Err(self.unsupported(Op::Ack))
    }

    /// The IOAPIC IRR bit of the pin `gsi` is routed to;
    /// [`Error::Unsupported`] for a GSI with no IOAPIC route.
    fn line_asserted(&self, gsi: u32) -> Result<bool> {
        let pin = self
            .ioapic_pin(gsi)
            .ok_or_else(|| self.unsupported(Op::LineState))?;
        let irr = self.ioapic_irr()?;
        Ok(irr.checked_shr(pin).is_some_and(|v| v & 1 != 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_an_open_error() {
        let e = KvmBackend::open("/nonexistent/kvm").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::NOENT));
    }

    #[test]
    fn a_device_that_is_not_kvm_is_enotty() {
        let e = KvmBackend::open("/dev/null").unwrap_err();
        assert_eq!(e, Error::kernel(Op::GetApiVersion, None, Errno::NOTTY));
    }
}

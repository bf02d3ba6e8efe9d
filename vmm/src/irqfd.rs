// SPDX-License-Identifier: GPL-2.0
//! [`IrqFd`], [`IrqFdRoute`] and [`IrqFdLine`]: the VMM-facing API.

use std::fmt;
use std::ops::Deref;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::IrqFdBackend;
use crate::error::{Error, Result};
use crate::eventfd::EventFd;
use crate::gsi::GsiAllocator;

/// Called with the errors a route's or a line's `Drop` could not return.
pub type DropErrorHook = Box<dyn Fn(&Error) + Send + Sync>;

/// The irqfd side of a VM: a backend and the GSIs handed out on it.
///
/// [`new_route`](Self::new_route) makes an [`IrqFdRoute`]: a fresh GSI, a
/// fresh eventfd bound to it, and, once [`set_msi`](IrqFdRoute::set_msi) is
/// called, an MSI route for it. The route undoes all of that when dropped.
/// [`new_level_line`](Self::new_level_line) makes an [`IrqFdLine`]: a
/// level-triggered (resample) irqfd on a fixed line, for legacy INTx.
///
/// ```no_run
/// use rust_irqfd_vmm::{IrqFd, KvmBackend};
///
/// let irqfd = IrqFd::new(KvmBackend::new()?);
/// let route = irqfd.new_route()?;
/// route.set_msi(0xfee0_0000, 0x41)?; // vector 0x41 to APIC 0
/// let doorbell = route.event(); // give this to the device model
/// doorbell.signal()?; // the device interrupts; KVM injects the MSI
/// drop(route); // deassigned, route cleared, GSI freed
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
///
/// `IrqFd<B>` is `Send + Sync` whenever `B` is (which the trait requires):
/// its other parts are the allocator (a mutex) and the hook (`Send + Sync`
/// by type). Routes borrow it, so it outlives them.
pub struct IrqFd<B: IrqFdBackend> {
    backend: B,
    gsis: GsiAllocator,
    on_drop_error: Option<DropErrorHook>,
}

impl<B: IrqFdBackend> fmt::Debug for IrqFd<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFd")
            .field("backend", &self.backend.name())
            .field("gsis", &self.gsis)
            .field("on_drop_error", &self.on_drop_error.is_some())
            .finish()
    }
}

impl<B: IrqFdBackend> IrqFd<B> {
    /// Uses `backend`, with a table of
    /// `min(`[`GsiAllocator::DEFAULT_CAPACITY`]`, backend.nr_gsis())` GSIs,
    /// less the backend's [`reserved_gsis`](IrqFdBackend::reserved_gsis).
    pub fn new(backend: B) -> Self {
        let gsis = GsiAllocator::new(GsiAllocator::DEFAULT_CAPACITY.min(backend.nr_gsis()));
        Self::with_allocator(backend, gsis)
    }

    /// Uses `backend` with the given allocator (the backend's reserved
    /// GSIs are reserved in it as well).
    pub fn with_allocator(backend: B, gsis: GsiAllocator) -> Self {
        gsis.reserve(backend.reserved_gsis());
        Self {
            backend,
            gsis,
            on_drop_error: None,
        }
    }

    /// Sets the function that is given the errors of dropped routes and
    /// lines (a failed deassign, route clear or unmask), which `Drop` cannot
    /// return. Without
    /// one, those errors are ignored. The hook must not panic.
    pub fn set_drop_error_hook(&mut self, hook: impl Fn(&Error) + Send + Sync + 'static) {
        self.on_drop_error = Some(Box::new(hook));
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The GSI allocator.
    pub fn allocator(&self) -> &GsiAllocator {
        &self.gsis
    }

    /// Allocates the lowest free GSI, makes an eventfd and binds it to the
    /// GSI. Nothing is left behind on failure: the GSI is freed and the
    /// eventfd closed.
    ///
    /// Fails with [`Error::GsisExhausted`] when every GSI is taken, or with
    /// the backend's error from the assign.
    pub fn new_route(&self) -> Result<IrqFdRoute<'_, B>> {
        IrqFdRoute::new(Handle::Borrowed(self))
    }

    /// [`new_route`](Self::new_route) for an `IrqFd` shared through an
    /// `Arc`: the route keeps the `IrqFd` alive instead of borrowing it, so
    /// it can be stored anywhere (in a device model, say) as an
    /// `IrqFdRoute<'static, B>`.
    pub fn new_shared_route(self: &Arc<Self>) -> Result<IrqFdRoute<'static, B>>
    where
        B: 'static,
    {
        IrqFdRoute::new(Handle::Shared(Arc::clone(self)))
    }

    /// Binds a fresh eventfd to the fixed line `gsi` as a resample
    /// (level-triggered) irqfd, with a fresh resample eventfd: what a
    /// device's legacy INTx pin maps to. Several lines may share one GSI
    /// (a shared INTx line): they share the GSI's resampler, and one
    /// acknowledgement signals each of their resample eventfds.
    ///
    /// The GSI is not taken from the allocator: level lines are pins with a
    /// fixed meaning (on KVM, the irqchip's GSIs `0 .. 24`, which the
    /// allocator reserves; on the modules, reserve the lines you use with
    /// [`GsiAllocator::reserve`] and [`with_allocator`](Self::with_allocator)
    /// so that no route is handed the same GSI).
    ///
    /// Errors: those of
    /// [`IrqFdBackend::assign_resample`]; nothing is left behind.
    pub fn new_level_line(&self, gsi: u32) -> Result<IrqFdLine<'_, B>> {
        IrqFdLine::new(Handle::Borrowed(self), gsi)
    }

    /// [`new_level_line`](Self::new_level_line) for an `IrqFd` shared
    /// through an `Arc`: the line keeps it alive (an
    /// `IrqFdLine<'static, B>`).
    pub fn new_shared_level_line(self: &Arc<Self>, gsi: u32) -> Result<IrqFdLine<'static, B>>
    where
        B: 'static,
    {
        IrqFdLine::new(Handle::Shared(Arc::clone(self)), gsi)
    }

    fn report(&self, e: &Error) {
        if let Some(hook) = &self.on_drop_error {
            hook(e);
        }
    }
}

/// How a route holds its `IrqFd`.
enum Handle<'a, B: IrqFdBackend> {
    Borrowed(&'a IrqFd<B>),
    Shared(Arc<IrqFd<B>>),
}

impl<B: IrqFdBackend> Deref for Handle<'_, B> {
    type Target = IrqFd<B>;

    fn deref(&self) -> &IrqFd<B> {
        match self {
            Handle::Borrowed(r) => r,
            Handle::Shared(a) => a,
        }
    }
}

/// A GSI taken from the `IrqFd`'s allocator, given back on drop.
struct Lease<'a, B: IrqFdBackend> {
    irqfd: Handle<'a, B>,
    gsi: u32,
}

impl<B: IrqFdBackend> Drop for Lease<'_, B> {
    fn drop(&mut self) {
        self.irqfd.gsis.free(self.gsi);
    }
}

/// How a masked [`IrqFdRoute`] is masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaskKind {
    /// The backend masks the GSI ([`IrqFdBackend::mask`]; the modules'
    /// `RUST_IRQFD_SET_MASK`): injections are latched in the kernel and
    /// delivered as one interrupt, with the route current then, at unmask.
    Backend,
    /// The backend has no mask (KVM): the route unbound its eventfd, so a
    /// signal stays in the eventfd's counter (the latch); unmask binds it
    /// again, and the kernel, seeing the counter set, injects once, with
    /// the route current then.
    Unbound,
}

/// What a route has set on its GSI, to undo on drop.
#[derive(Debug, Default, Clone, Copy)]
struct RouteState {
    msi: Option<(u64, u32)>,
    masked: Option<MaskKind>,
}

/// One GSI with an eventfd bound to it: what a device's interrupt (an MSI-X
/// table entry, say) maps to.
///
/// The guest programs the entry: [`set_msi`](Self::set_msi) routes the GSI
/// (again and again, in place: the eventfd stays bound),
/// [`clear_msi`](Self::clear_msi) removes the route, [`mask`](Self::mask)
/// and [`unmask`](Self::unmask) follow the entry's mask bit. Masking is the
/// backend's where it has one ([`MaskKind::Backend`]) and emulated where it
/// has not ([`MaskKind::Unbound`], KVM): either way a signal while masked is
/// held, and unmasking delivers it once, with the route current at unmask.
///
/// Dropping it deassigns the eventfd (after which no injection from it
/// happens), clears the MSI route if one was set, unmasks the GSI if the
/// backend masked it (injections latched then are delivered as one record
/// with no route: the modules' ABI has no way to discard a latch, so a
/// reader sees a record for a GSI no route owns), closes the eventfd and
/// frees the GSI, in that order. Errors on the way are given to the
/// [`IrqFd`]'s drop hook, if it has one; `Drop` never panics.
///
/// A route is `Send + Sync` when `B` is (always, by the trait's bounds): it
/// holds a shared reference to the `IrqFd`, an [`EventFd`] and a mutex
/// around its own state, so any thread may signal or reroute it.
pub struct IrqFdRoute<'a, B: IrqFdBackend> {
    state: Mutex<RouteState>,
    // Field order matters: fields drop in declaration order, so the eventfd
    // is closed before the lease frees the GSI. Should the deassign in
    // `drop` fail, the close still deactivates the binding (EPOLLHUP) before
    // the GSI can be handed out again.
    event: EventFd,
    lease: Lease<'a, B>,
}

impl<B: IrqFdBackend> fmt::Debug for IrqFdRoute<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFdRoute")
            .field("backend", &self.backend().name())
            .field("gsi", &self.lease.gsi)
            .field("event", &self.event)
            .field("state", &*self.lock())
            .finish()
    }
}

impl<'a, B: IrqFdBackend> IrqFdRoute<'a, B> {
    fn new(irqfd: Handle<'a, B>) -> Result<Self> {
        let gsi = irqfd.gsis.alloc()?;
        let lease = Lease { irqfd, gsi };
        let event = EventFd::new()?;
        lease.irqfd.backend.assign(event.as_fd(), gsi)?;
        Ok(IrqFdRoute {
            state: Mutex::new(RouteState::default()),
            event,
            lease,
        })
    }

    fn backend(&self) -> &B {
        &self.lease.irqfd.backend
    }

    /// The GSI.
    pub fn gsi(&self) -> u32 {
        self.lease.gsi
    }

    /// The eventfd bound to the GSI: hand it to the device, which signals it
    /// to interrupt.
    pub fn event(&self) -> &EventFd {
        &self.event
    }

    /// The MSI address and data last set, if any.
    pub fn msi(&self) -> Option<(u64, u32)> {
        self.lock().msi
    }

    fn lock(&self) -> MutexGuard<'_, RouteState> {
        // Plain data, updated after each successful call: never torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Routes the GSI to the MSI `addr`/`data` (the guest programmed the
    /// device's MSI or MSI-X entry).
    pub fn set_msi(&self, addr: u64, data: u32) -> Result<()> {
        let mut st = self.lock();
        self.backend().set_msi(self.gsi(), addr, data)?;
        st.msi = Some((addr, data));
        Ok(())
    }

    /// Removes the GSI's MSI route (the guest disabled the vector).
    pub fn clear_msi(&self) -> Result<()> {
        let mut st = self.lock();
        self.backend().clear_msi(self.gsi())?;
        st.msi = None;
        Ok(())
    }

    /// Masks the GSI (the guest masked the MSI-X entry); a no-op if the
    /// route is masked already.
    ///
    /// Uses [`IrqFdBackend::mask`]; if the backend answers
    /// [`Error::Unsupported`] (KVM), deassigns the route's eventfd instead
    /// (synchronous: once this returns, no signal injects), so that signals
    /// accumulate in its counter. Any other error is returned and the route
    /// stays unmasked.
    pub fn mask(&self) -> Result<()> {
        let mut st = self.lock();
        if st.masked.is_some() {
            return Ok(());
        }
        let kind = match self.backend().mask(self.gsi()) {
            Ok(()) => MaskKind::Backend,
            Err(Error::Unsupported { .. }) => {
                self.backend().deassign(self.event.as_fd(), self.gsi())?;
                MaskKind::Unbound
            }
            Err(e) => return Err(e),
        };
        st.masked = Some(kind);
        Ok(())
    }

    /// Unmasks the GSI (a no-op if the route is not masked): what was
    /// signalled while masked is delivered now, once, with the current
    /// route. On error the route stays masked.
    pub fn unmask(&self) -> Result<()> {
        let mut st = self.lock();
        match st.masked {
            None => return Ok(()),
            Some(MaskKind::Backend) => self.backend().unmask(self.gsi())?,
            Some(MaskKind::Unbound) => self.backend().assign(self.event.as_fd(), self.gsi())?,
        }
        st.masked = None;
        Ok(())
    }

    /// How the route is masked, `None` if it is not.
    pub fn masked(&self) -> Option<MaskKind> {
        self.lock().masked
    }

    /// Whether the route is masked.
    pub fn is_masked(&self) -> bool {
        self.masked().is_some()
    }
}

impl<B: IrqFdBackend> Drop for IrqFdRoute<'_, B> {
    fn drop(&mut self) {
        let gsi = self.lease.gsi;
        let irqfd = &*self.lease.irqfd;
        let backend = &irqfd.backend;
        let st = *self.lock();
        // Masked by unbinding: nothing is bound to deassign.
        if st.masked != Some(MaskKind::Unbound) {
            if let Err(e) = backend.deassign(self.event.as_fd(), gsi) {
                irqfd.report(&e);
            }
        }
        if st.msi.is_some() {
            if let Err(e) = backend.clear_msi(gsi) {
                irqfd.report(&e);
            }
        }
        if st.masked == Some(MaskKind::Backend) {
            // Leave the line as a new route expects it.
            if let Err(e) = backend.unmask(gsi) {
                irqfd.report(&e);
            }
        }
        // Then `event` closes and `lease` frees the GSI (field order).
    }
}

/// A resample (level-triggered) irqfd on a fixed line: an eventfd bound to
/// a GSI with `FLAG_RESAMPLE`, and the resample eventfd the kernel signals
/// when the guest acknowledges the line. What a device's legacy INTx pin
/// maps to; made by [`IrqFd::new_level_line`].
///
/// The device signals [`event`](Self::event) to assert the line; the line
/// stays asserted (further signals coalesce into it) until it is
/// acknowledged ([`ack`](Self::ack) on the modules, the guest's EOI on
/// KVM), which deasserts it and signals [`resample`](Self::resample) (one
/// count per line of the GSI): the device then checks whether it still
/// needs service and, if so, signals again.
///
/// Dropping it deassigns the eventfd (when the last level line of the GSI
/// goes, the kernel deasserts the line) and closes both eventfds. A failed
/// deassign goes to the [`IrqFd`]'s drop hook; `Drop` never panics.
///
/// `Send + Sync` when `B` is, as [`IrqFdRoute`].
pub struct IrqFdLine<'a, B: IrqFdBackend> {
    irqfd: Handle<'a, B>,
    gsi: u32,
    event: EventFd,
    resample: EventFd,
}

impl<B: IrqFdBackend> fmt::Debug for IrqFdLine<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFdLine")
            .field("backend", &self.irqfd.backend.name())
            .field("gsi", &self.gsi)
            .field("event", &self.event)
            .field("resample", &self.resample)
            .finish()
    }
}

impl<'a, B: IrqFdBackend> IrqFdLine<'a, B> {
    fn new(irqfd: Handle<'a, B>, gsi: u32) -> Result<Self> {
        let event = EventFd::new()?;
        let resample = EventFd::new_nonblocking()?;
        irqfd
            .backend
            .assign_resample(event.as_fd(), gsi, resample.as_fd())?;
        Ok(Self {
            irqfd,
            gsi,
            event,
            resample,
        })
    }

    /// The GSI.
    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// The eventfd bound to the line: the device signals it to assert the
    /// line.
    pub fn event(&self) -> &EventFd {
        &self.event
    }

    /// The resample eventfd (non-blocking): signalled once per
    /// acknowledgement of the asserted line. Read it with
    /// [`EventFd::try_read`].
    pub fn resample(&self) -> &EventFd {
        &self.resample
    }

    /// Acknowledges the GSI ([`IrqFdBackend::ack`]): on the modules, the
    /// stand-in for the guest's EOI. Deasserts the line and signals the
    /// resample eventfd of every level line of the GSI (this one and any
    /// sharing it); returns how many. [`Error::Unsupported`] on KVM.
    pub fn ack(&self) -> Result<u32> {
        self.irqfd.backend.ack(self.gsi)
    }

    /// Whether the line is asserted now ([`IrqFdBackend::line_asserted`]).
    pub fn is_asserted(&self) -> Result<bool> {
        self.irqfd.backend.line_asserted(self.gsi)
    }
}

impl<B: IrqFdBackend> Drop for IrqFdLine<'_, B> {
    fn drop(&mut self) {
        if let Err(e) = self.irqfd.backend.deassign(self.event.as_fd(), self.gsi) {
            self.irqfd.report(&e);
        }
        // Then the eventfds close; the kernel keeps its own reference to the
        // resample eventfd for as long as it needed it.
    }
}

// Compile-time proof of the auto traits claimed above.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<IrqFd<crate::ModuleBackend>>();
    send_sync::<IrqFd<crate::KvmBackend>>();
    send_sync::<IrqFd<Box<dyn IrqFdBackend>>>();
    send_sync::<IrqFdRoute<'static, crate::KvmBackend>>();
    send_sync::<IrqFdRoute<'static, Box<dyn IrqFdBackend>>>();
    send_sync::<IrqFdRoute<'static, crate::ModuleBackend>>();
    send_sync::<IrqFdLine<'static, crate::KvmBackend>>();
    send_sync::<IrqFdLine<'static, crate::ModuleBackend>>();
    send_sync::<IrqFdLine<'static, Box<dyn IrqFdBackend>>>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::RawIrqfd;
    use crate::error::Op;
    use std::ops::Range;
    use std::sync::Arc;

    /// A backend in userspace that records calls, for the RAII logic.
    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<String>>,
        fail_deassign: bool,
        refuse_gsi: Option<u32>,
        nr_gsis: u32,
        reserved: u32,
        /// Masks natively (as the modules); otherwise `Unsupported` (KVM).
        native_mask: bool,
        /// `mask` fails with this errno.
        fail_mask: Option<rustix::io::Errno>,
        /// A re-assign (unmask by binding again) fails.
        fail_reassign: std::sync::atomic::AtomicBool,
    }

    impl Fake {
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
        fn push(&self, s: String) {
            self.log.lock().unwrap().push(s);
        }
    }

    impl IrqFdBackend for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn nr_gsis(&self) -> u32 {
            self.nr_gsis
        }
        fn reserved_gsis(&self) -> Range<u32> {
            0..self.reserved
        }
        fn irqfd(&self, req: &RawIrqfd) -> Result<()> {
            if req.is_deassign() {
                self.push(format!("deassign {}", req.gsi));
                if self.fail_deassign {
                    return Err(Error::kernel(
                        Op::Deassign,
                        Some(req.gsi),
                        rustix::io::Errno::IO,
                    ));
                }
            } else {
                if req.is_resample() {
                    let same = if req.resamplefd == req.fd {
                        "same"
                    } else {
                        "own"
                    };
                    self.push(format!("assign_resample {} {same}", req.gsi));
                } else {
                    self.push(format!("assign {}", req.gsi));
                }
                if self.refuse_gsi == Some(req.gsi) {
                    return Err(Error::kernel(
                        Op::Assign,
                        Some(req.gsi),
                        rustix::io::Errno::BUSY,
                    ));
                }
                if self
                    .fail_reassign
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    return Err(Error::kernel(
                        Op::Assign,
                        Some(req.gsi),
                        rustix::io::Errno::NOMEM,
                    ));
                }
            }
            Ok(())
        }
        fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()> {
            self.push(format!("set_msi {gsi} {addr:#x} {data:#x}"));
            Ok(())
        }
        fn clear_msi(&self, gsi: u32) -> Result<()> {
            self.push(format!("clear_msi {gsi}"));
            Ok(())
        }
        fn mask(&self, gsi: u32) -> Result<()> {
            if let Some(e) = self.fail_mask {
                return Err(Error::kernel(Op::Mask, Some(gsi), e));
            }
            if !self.native_mask {
                return Err(Error::Unsupported {
                    op: Op::Mask,
                    backend: "fake".into(),
                });
            }
            self.push(format!("mask {gsi}"));
            Ok(())
        }
        fn unmask(&self, gsi: u32) -> Result<()> {
            if !self.native_mask {
                return Err(Error::Unsupported {
                    op: Op::Unmask,
                    backend: "fake".into(),
                });
            }
            self.push(format!("unmask {gsi}"));
            Ok(())
        }
        fn ack(&self, gsi: u32) -> Result<u32> {
            self.push(format!("ack {gsi}"));
            Ok(2)
        }
    }

    fn fake(nr_gsis: u32, reserved: u32) -> Fake {
        Fake {
            nr_gsis,
            reserved,
            ..Fake::default()
        }
    }

    #[test]
    fn route_lifecycle() {
        let irqfd = IrqFd::new(fake(64, 2));
        assert_eq!(irqfd.allocator().capacity(), 64);
        {
            let r = irqfd.new_route().unwrap();
            assert_eq!(r.gsi(), 2, "lowest free after the reserved ones");
            r.set_msi(0xfee0_0000, 0x30).unwrap();
            assert_eq!(r.msi(), Some((0xfee0_0000, 0x30)));
            assert!(irqfd.allocator().is_allocated(2));
            assert!(!r.is_masked());
        }
        assert!(!irqfd.allocator().is_allocated(2));
        assert_eq!(
            irqfd.backend().log(),
            [
                "assign 2",
                "set_msi 2 0xfee00000 0x30",
                "deassign 2",
                "clear_msi 2"
            ]
        );
    }

    #[test]
    fn backend_masking() {
        let irqfd = IrqFd::new(Fake {
            native_mask: true,
            ..fake(8, 0)
        });
        {
            let r = irqfd.new_route().unwrap();
            r.unmask().unwrap(); // not masked: nothing to do
            r.mask().unwrap();
            assert_eq!(r.masked(), Some(MaskKind::Backend));
            r.mask().unwrap(); // masked already: nothing to do
            r.set_msi(0xfee0_0000, 0x31).unwrap();
            r.unmask().unwrap();
            assert!(!r.is_masked());
            r.mask().unwrap();
        }
        assert_eq!(
            irqfd.backend().log(),
            [
                "assign 0",
                "mask 0",
                "set_msi 0 0xfee00000 0x31",
                "unmask 0",
                "mask 0",
                // Drop: unbind, unroute, then unmask (leave the GSI clean).
                "deassign 0",
                "clear_msi 0",
                "unmask 0"
            ]
        );
    }

    #[test]
    fn masking_is_emulated_by_unbinding_where_the_backend_has_none() {
        let irqfd = IrqFd::new(fake(8, 0));
        {
            let r = irqfd.new_route().unwrap();
            r.mask().unwrap();
            assert_eq!(r.masked(), Some(MaskKind::Unbound));
            r.mask().unwrap();
            // Signals while masked stay in the eventfd: nothing consumes them.
            r.event().signal().unwrap();
            r.unmask().unwrap();
            assert_eq!(r.masked(), None);
            r.set_msi(0xfee0_0000, 0x32).unwrap();
            r.mask().unwrap();
        }
        assert_eq!(
            irqfd.backend().log(),
            [
                "assign 0",
                "deassign 0",
                "assign 0",
                "set_msi 0 0xfee00000 0x32",
                "deassign 0",
                // Drop while unbound: no deassign, no unmask.
                "clear_msi 0"
            ]
        );
        assert_eq!(irqfd.allocator().in_use(), 0);
    }

    #[test]
    fn a_failed_mask_or_unmask_leaves_the_state() {
        let irqfd = IrqFd::new(Fake {
            fail_mask: Some(rustix::io::Errno::NOMEM),
            ..fake(8, 0)
        });
        let r = irqfd.new_route().unwrap();
        assert_eq!(
            r.mask().unwrap_err(),
            Error::kernel(Op::Mask, Some(0), rustix::io::Errno::NOMEM)
        );
        assert!(!r.is_masked());
        drop(r);

        let irqfd = IrqFd::new(fake(8, 0));
        let r = irqfd.new_route().unwrap();
        r.mask().unwrap();
        irqfd
            .backend()
            .fail_reassign
            .store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            r.unmask().unwrap_err().errno(),
            Some(rustix::io::Errno::NOMEM)
        );
        assert_eq!(r.masked(), Some(MaskKind::Unbound), "still masked");
        irqfd
            .backend()
            .fail_reassign
            .store(false, std::sync::atomic::Ordering::Relaxed);
        r.unmask().unwrap();
        assert!(!r.is_masked());
    }

    #[test]
    fn level_lines() {
        let irqfd = IrqFd::new(fake(16, 0));
        {
            let a = irqfd.new_level_line(9).unwrap();
            let b = irqfd.new_level_line(9).unwrap();
            assert_eq!((a.gsi(), b.gsi()), (9, 9));
            assert_ne!(a.resample().as_raw(), b.resample().as_raw());
            assert_eq!(a.ack().unwrap(), 2);
            assert_eq!(a.resample().try_read().unwrap(), None);
            assert!(matches!(
                a.is_asserted(),
                Err(Error::Unsupported {
                    op: Op::LineState,
                    ..
                })
            ));
            // Lines do not take GSIs from the allocator.
            assert_eq!(irqfd.allocator().in_use(), 0);
        }
        assert_eq!(
            irqfd.backend().log(),
            [
                "assign_resample 9 own",
                "assign_resample 9 own",
                "ack 9",
                "deassign 9",
                "deassign 9"
            ]
        );
        let refused = IrqFd::new(Fake {
            refuse_gsi: Some(4),
            ..fake(8, 0)
        });
        assert_eq!(
            refused.new_level_line(4).unwrap_err(),
            Error::kernel(Op::Assign, Some(4), rustix::io::Errno::BUSY)
        );
        assert_eq!(refused.backend().log(), ["assign_resample 4 own"]);
    }

    #[test]
    fn shared_level_lines_move_across_threads() {
        let irqfd = Arc::new(IrqFd::new(fake(16, 0)));
        let line: IrqFdLine<'static, Fake> = irqfd.new_shared_level_line(3).unwrap();
        let t = std::thread::spawn(move || {
            line.event().signal().unwrap();
            line.gsi()
        });
        assert_eq!(t.join().unwrap(), 3);
        assert_eq!(
            irqfd.backend().log(),
            ["assign_resample 3 own", "deassign 3"]
        );
    }

    #[test]
    fn failed_assign_frees_the_gsi() {
        let irqfd = IrqFd::new(Fake {
            refuse_gsi: Some(3),
            ..fake(8, 3)
        });
        let e = irqfd.new_route().unwrap_err();
        assert_eq!(
            e,
            Error::kernel(Op::Assign, Some(3), rustix::io::Errno::BUSY)
        );
        assert_eq!(irqfd.allocator().in_use(), 3);
        assert!(!irqfd.allocator().is_allocated(3));
    }

    #[test]
    fn capacity_is_bounded_by_the_backend_and_2048() {
        assert_eq!(IrqFd::new(fake(4096, 0)).allocator().capacity(), 2048);
        assert_eq!(IrqFd::new(fake(1024, 0)).allocator().capacity(), 1024);
        let irqfd = IrqFd::new(fake(6, 4));
        let a = irqfd.new_route().unwrap();
        let b = irqfd.new_route().unwrap();
        assert_eq!((a.gsi(), b.gsi()), (4, 5));
        assert_eq!(
            irqfd.new_route().unwrap_err(),
            Error::GsisExhausted { capacity: 6 }
        );
        drop(a);
        assert_eq!(irqfd.new_route().unwrap().gsi(), 4);
    }

    #[test]
    fn drop_errors_go_to_the_hook() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut irqfd = IrqFd::new(Fake {
            fail_deassign: true,
            ..fake(8, 0)
        });
        let s = seen.clone();
        irqfd.set_drop_error_hook(move |e| s.lock().unwrap().push(e.to_string()));
        let r = irqfd.new_route().unwrap();
        drop(r);
        assert_eq!(irqfd.allocator().in_use(), 0, "freed all the same");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0] == "deassign irqfd (GSI 0): EIO (Input/output error)",
            "{}",
            seen[0]
        );
    }

    #[test]
    fn drop_errors_without_a_hook_are_ignored() {
        let irqfd = IrqFd::new(Fake {
            fail_deassign: true,
            ..fake(8, 0)
        });
        drop(irqfd.new_route().unwrap());
        assert_eq!(irqfd.allocator().in_use(), 0);
    }

    #[test]
    fn shared_routes_keep_the_irqfd_alive() {
        let irqfd = Arc::new(IrqFd::new(fake(8, 0)));
        let r: IrqFdRoute<'static, Fake> = irqfd.new_shared_route().unwrap();
        let weak = Arc::downgrade(&irqfd);
        drop(irqfd);
        let t = std::thread::spawn(move || {
            r.set_msi(0xfee0_0000, 0x51).unwrap();
            r.gsi()
        });
        assert_eq!(t.join().unwrap(), 0);
        assert!(weak.upgrade().is_none(), "the last route dropped the IrqFd");
    }

    #[test]
    fn routes_work_across_threads() {
        let irqfd = IrqFd::new(fake(256, 0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let r = irqfd.new_route().unwrap();
                        r.event().signal().unwrap();
                    }
                });
            }
        });
        assert_eq!(irqfd.allocator().in_use(), 0);
    }
}

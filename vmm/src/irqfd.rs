// SPDX-License-Identifier: GPL-2.0
//! [`IrqFd`], [`IrqFdRoute`] and [`IrqFdLine`]: the VMM-facing API.

use std::fmt;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::IrqFdBackend;
use crate::error::{Error, Result};
use crate::eventfd::EventFd;
use crate::gsi::GsiAllocator;

/// Called with the errors a route's or a line's `Drop` could not return.
pub type DropErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// The irqfd side of a VM: a backend and the GSIs handed out on it.
///
/// Cheap to clone: the clones share the backend, the GSI table and the drop
/// hook, and every route and line holds one, so they are `'static` and can
/// be stored anywhere (in a device model, as a trait object) whatever
/// happens to the `IrqFd` they came from.
///
/// [`new_route`](Self::new_route) makes an [`IrqFdRoute`]: a fresh GSI, a
/// fresh eventfd bound to it, and, once [`set_msi`](IrqFdRoute::set_msi) is
/// called, an MSI route for it. The route undoes all of that when dropped.
/// [`new_level_line`](Self::new_level_line) makes an [`IrqFdLine`]: a
/// level-triggered (resample) irqfd on a fixed line, for legacy INTx.
///
/// ```
/// use rust_irqfd_vmm::{IrqFd, KvmBackend};
///
/// let Ok(vm) = KvmBackend::new() else { return Ok(()) }; // no /dev/kvm here
/// let irqfd = IrqFd::new(vm);
/// let route = irqfd.new_route()?;
/// route.set_msi(0xfee0_0000, 0x41)?; // vector 0x41 to APIC 0
/// route.event().signal()?; // the device interrupts; KVM injects the MSI
/// let gsi = route.gsi();
/// drop(route); // deassigned, route cleared, GSI freed
/// assert!(!irqfd.allocator().is_allocated(gsi));
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
pub struct IrqFd<B: IrqFdBackend> {
    inner: Arc<Shared<B>>,
}

/// What the clones of an `IrqFd` share.
struct Shared<B: IrqFdBackend> {
    backend: B,
    gsis: GsiAllocator,
    on_drop_error: Mutex<Option<DropErrorHook>>,
}

impl<B: IrqFdBackend> Clone for IrqFd<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: IrqFdBackend> fmt::Debug for IrqFd<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFd")
            .field("backend", &self.backend().name())
            .field("gsis", &self.inner.gsis)
            .finish_non_exhaustive()
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
    ///
    /// ```
    /// use rust_irqfd_vmm::{GsiAllocator, IrqFd, ModuleBackend};
    ///
    /// let Ok(ctx) = ModuleBackend::open_rust() else { return Ok(()) }; // not loaded
    /// let gsis = GsiAllocator::new(64);
    /// gsis.reserve(0..16); // the INTx lines this VMM wires by hand
    /// let irqfd = IrqFd::with_allocator(ctx, gsis);
    /// assert_eq!(irqfd.new_route()?.gsi(), 16);
    /// # Ok::<(), rust_irqfd_vmm::Error>(())
    /// ```
    pub fn with_allocator(backend: B, gsis: GsiAllocator) -> Self {
        gsis.reserve(backend.reserved_gsis());
        Self {
            inner: Arc::new(Shared {
                backend,
                gsis,
                on_drop_error: Mutex::new(None),
            }),
        }
    }

    /// Sets the function that is given the errors of dropped routes and
    /// lines (a failed deassign or route clear), which `Drop` cannot return,
    /// for every clone; it replaces the one set before. Without one, those
    /// errors are ignored. The hook must not panic. It is called with no
    /// lock held, so it may drop routes or set another hook; a hook that
    /// holds a clone of this `IrqFd` (or one of its routes) keeps the
    /// backend alive for as long as it is set.
    ///
    /// ```
    /// use rust_irqfd_vmm::{IrqFd, ModuleBackend};
    ///
    /// let Ok(ctx) = ModuleBackend::open_c() else { return Ok(()) }; // not loaded
    /// let irqfd = IrqFd::new(ctx);
    /// irqfd.set_drop_error_hook(|e| eprintln!("irqfd teardown: {e}"));
    /// # Ok::<(), rust_irqfd_vmm::Error>(())
    /// ```
    pub fn set_drop_error_hook(&self, hook: impl Fn(&Error) + Send + Sync + 'static) {
        let old = self.hook().replace(Arc::new(hook));
        // Dropped here, with the slot unlocked: what the old hook owned
        // (a route, say) may report to the new one.
        drop(old);
    }

    fn hook(&self) -> MutexGuard<'_, Option<DropErrorHook>> {
        // A plain slot: valid whatever a panicking holder was doing.
        self.inner
            .on_drop_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.backend
    }

    /// The GSI allocator.
    pub fn allocator(&self) -> &GsiAllocator {
        &self.inner.gsis
    }

    /// Allocates the lowest free GSI, makes an eventfd and binds it to the
    /// GSI. Nothing is left behind on failure: the GSI is freed and the
    /// eventfd closed.
    ///
    /// Fails with [`Error::GsisExhausted`] when every GSI is taken, or with
    /// the backend's error from the assign.
    pub fn new_route(&self) -> Result<IrqFdRoute<B>> {
        IrqFdRoute::new(self.clone())
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
    /// Errors: those of [`IrqFdBackend::assign_resample`]; nothing is left
    /// behind.
    pub fn new_level_line(&self, gsi: u32) -> Result<IrqFdLine<B>> {
        IrqFdLine::new(self.clone(), gsi)
    }

    fn report(&self, e: &Error) {
        // Called with the slot unlocked (see `set_drop_error_hook`).
        let hook = self.hook().clone();
        if let Some(hook) = hook {
            hook(e);
        }
    }
}

/// What a route has set on its GSI, to undo on drop.
#[derive(Debug, Default, Clone, Copy)]
struct RouteState {
    msi: Option<(u64, u32)>,
    /// The eventfd is unbound: signals stay in its counter.
    masked: bool,
}

/// One GSI with an eventfd bound to it: what a device's interrupt (an MSI-X
/// table entry, say) maps to.
///
/// The guest programs the entry: [`set_msi`](Self::set_msi) routes the GSI
/// (again and again, in place: the eventfd stays bound),
/// [`clear_msi`](Self::clear_msi) removes the route, [`mask`](Self::mask)
/// and [`unmask`](Self::unmask) follow the entry's mask bit, and
/// [`pending`](Self::pending) is its pending bit (PBA).
///
/// Masking works the same on every backend: the route unbinds its eventfd,
/// so that a signal stays in the eventfd's counter, which is the pending
/// bit; [`take_pending`](Self::take_pending) reads and clears it, and
/// unmasking binds the eventfd again, which injects once, with the route
/// current then, if the counter is still set. (The modules also have a
/// per-GSI mask of their own, [`IrqFdBackend::mask`], whose latch the
/// kernel delivers at unmask; ABI v2 cannot clear it without delivering it,
/// so a route does not use it.)
///
/// Dropping it deassigns the eventfd (after which no injection from it
/// happens), clears the MSI route if one was set, closes the eventfd and
/// frees the GSI. If the deassign or the route clear fails, the GSI is
/// *not* freed: the eventfd may live on in a device model (a `dup`, or
/// VFIO's reference) and still fire into that GSI, so it is never handed
/// to another route; the error goes to the [`IrqFd`]'s drop hook. `Drop`
/// never panics.
///
/// `'static`, and `Send + Sync` (the backend is, by the trait's bounds):
/// it holds an [`IrqFd`] clone, an [`EventFd`] and a mutex around its own
/// state, so any thread may signal or reroute it, and it boxes as a trait
/// object.
///
/// ```
/// use rust_irqfd_vmm::{IrqFd, KvmBackend};
///
/// let Ok(vm) = KvmBackend::new() else { return Ok(()) }; // no /dev/kvm here
/// let route = IrqFd::new(vm).new_route()?; // the IrqFd may go: the route holds it
/// route.set_msi(0xfee0_0000, 0x30)?;
/// route.mask()?; // the guest masks the MSI-X entry
/// route.event().signal()?; // the device interrupts: held
/// assert!(route.pending()?); // the PBA bit the guest reads
/// route.unmask()?; // delivered now, once
/// assert!(!route.pending()?);
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
pub struct IrqFdRoute<B: IrqFdBackend> {
    state: Mutex<RouteState>,
    event: EventFd,
    irqfd: IrqFd<B>,
    gsi: u32,
}

impl<B: IrqFdBackend> fmt::Debug for IrqFdRoute<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFdRoute")
            .field("backend", &self.backend().name())
            .field("gsi", &self.gsi)
            .field("event", &self.event)
            .field("state", &*self.lock())
            .finish()
    }
}

impl<B: IrqFdBackend> IrqFdRoute<B> {
    fn new(irqfd: IrqFd<B>) -> Result<Self> {
        let gsi = irqfd.inner.gsis.alloc()?;
        // Non-blocking, so that take_pending's read never waits.
        let bound = EventFd::new_nonblocking().and_then(|event| {
            irqfd.backend().assign(event.as_fd(), gsi)?;
            Ok(event)
        });
        match bound {
            Ok(event) => Ok(Self {
                state: Mutex::new(RouteState::default()),
                event,
                irqfd,
                gsi,
            }),
            Err(e) => {
                // Nothing was bound: the GSI is clean.
                irqfd.inner.gsis.free(gsi);
                Err(e)
            }
        }
    }

    fn backend(&self) -> &B {
        self.irqfd.backend()
    }

    /// The GSI.
    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// The eventfd bound to the GSI (non-blocking): hand it to the device,
    /// which signals it to interrupt.
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
        self.backend().set_msi(self.gsi, addr, data)?;
        st.msi = Some((addr, data));
        Ok(())
    }

    /// Removes the GSI's MSI route (the guest disabled the vector).
    pub fn clear_msi(&self) -> Result<()> {
        let mut st = self.lock();
        self.backend().clear_msi(self.gsi)?;
        st.msi = None;
        Ok(())
    }

    /// Masks the route (the guest masked the MSI-X entry); a no-op if it is
    /// masked already. Unbinds the eventfd, synchronously: once this
    /// returns, no signal injects, and signals accumulate in the eventfd's
    /// counter ([`pending`](Self::pending)). On error the route stays
    /// unmasked.
    pub fn mask(&self) -> Result<()> {
        let mut st = self.lock();
        if !st.masked {
            self.backend().deassign(self.event.as_fd(), self.gsi)?;
            st.masked = true;
        }
        Ok(())
    }

    /// Unmasks the route (a no-op if it is not masked): binds the eventfd
    /// again, so that what is pending is delivered now, once, with the
    /// current route. On error the route stays masked.
    pub fn unmask(&self) -> Result<()> {
        let mut st = self.lock();
        if st.masked {
            self.backend().assign(self.event.as_fd(), self.gsi)?;
            st.masked = false;
        }
        Ok(())
    }

    /// Whether the route is masked.
    pub fn is_masked(&self) -> bool {
        self.lock().masked
    }

    /// The pending bit: whether a signal arrived while the route is masked
    /// and waits for the unmask. Always `false` while unmasked (a signal is
    /// delivered as it comes). Reading it changes nothing.
    pub fn pending(&self) -> Result<bool> {
        let st = self.lock();
        Ok(st.masked && self.event.is_signalled()?)
    }

    /// Reads and clears the pending bit, for a VMM that keeps the MSI-X
    /// pending bits itself: returns [`pending`](Self::pending), and what
    /// was pending is then no longer delivered at unmask (the caller
    /// delivers it, or drops it). `false`, and nothing done, while
    /// unmasked.
    ///
    /// One non-blocking `read(2)` of the eventfd's counter: it never waits,
    /// whoever else reads the eventfd.
    pub fn take_pending(&self) -> Result<bool> {
        let st = self.lock();
        Ok(st.masked && self.event.try_read()?.is_some())
    }
}

impl<B: IrqFdBackend> Drop for IrqFdRoute<B> {
    fn drop(&mut self) {
        let st = *self.lock();
        let mut clean = true;
        let mut report = |r: Result<()>| {
            if let Err(e) = r {
                self.irqfd.report(&e);
                clean = false;
            }
        };
        // Masked: the eventfd is not bound.
        if !st.masked {
            report(self.backend().deassign(self.event.as_fd(), self.gsi));
        }
        if st.msi.is_some() {
            report(self.backend().clear_msi(self.gsi));
        }
        // A GSI that may still be bound, or still routed, is never reused.
        if clean {
            self.irqfd.inner.gsis.free(self.gsi);
        }
        // Then the eventfd closes.
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
/// `'static` and `Send + Sync`, as [`IrqFdRoute`].
///
/// ```
/// use rust_irqfd_vmm::{IrqFd, ModuleBackend};
///
/// let Ok(ctx) = ModuleBackend::open_rust() else { return Ok(()) }; // not loaded
/// let line = IrqFd::new(ctx).new_level_line(9)?;
/// line.event().signal()?; // the device raises INTx
/// assert!(line.is_asserted()?);
/// assert_eq!(line.ack()?, 1); // the guest's EOI: one resample eventfd signalled
/// assert_eq!(line.resample().try_read()?, Some(1));
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
pub struct IrqFdLine<B: IrqFdBackend> {
    irqfd: IrqFd<B>,
    gsi: u32,
    event: EventFd,
    resample: EventFd,
}

impl<B: IrqFdBackend> fmt::Debug for IrqFdLine<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqFdLine")
            .field("backend", &self.irqfd.backend().name())
            .field("gsi", &self.gsi)
            .field("event", &self.event)
            .field("resample", &self.resample)
            .finish()
    }
}

impl<B: IrqFdBackend> IrqFdLine<B> {
    fn new(irqfd: IrqFd<B>, gsi: u32) -> Result<Self> {
        let event = EventFd::new()?;
        let resample = EventFd::new_nonblocking()?;
        irqfd
            .backend()
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
        self.irqfd.backend().ack(self.gsi)
    }

    /// Whether the line is asserted now ([`IrqFdBackend::line_asserted`]).
    pub fn is_asserted(&self) -> Result<bool> {
        self.irqfd.backend().line_asserted(self.gsi)
    }
}

impl<B: IrqFdBackend> Drop for IrqFdLine<B> {
    fn drop(&mut self) {
        if let Err(e) = self.irqfd.backend().deassign(self.event.as_fd(), self.gsi) {
            self.irqfd.report(&e);
        }
        // Then the eventfds close; the kernel keeps its own reference to the
        // resample eventfd for as long as it needed it.
    }
}

// Compile-time proof of the auto traits claimed above.
const _: () = {
    const fn send_sync_static<T: Send + Sync + 'static>() {}
    send_sync_static::<IrqFd<crate::ModuleBackend>>();
    send_sync_static::<IrqFd<crate::KvmBackend>>();
    send_sync_static::<IrqFd<Box<dyn IrqFdBackend>>>();
    send_sync_static::<IrqFdRoute<crate::KvmBackend>>();
    send_sync_static::<IrqFdRoute<Box<dyn IrqFdBackend>>>();
    send_sync_static::<IrqFdRoute<crate::ModuleBackend>>();
    send_sync_static::<IrqFdLine<crate::KvmBackend>>();
    send_sync_static::<IrqFdLine<crate::ModuleBackend>>();
    send_sync_static::<IrqFdLine<Box<dyn IrqFdBackend>>>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::RawIrqfd;
    use crate::error::{Errno, Op};
    use std::ops::Range;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    /// A backend in userspace that records calls, for the RAII logic.
    #[derive(Default)]
    struct Fake {
        log: Mutex<Vec<String>>,
        fail_deassign: AtomicBool,
        fail_clear: bool,
        refuse_gsi: Option<u32>,
        nr_gsis: u32,
        reserved: u32,
        /// An assign (a new route, or an unmask binding again) fails.
        fail_assign: AtomicBool,
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
                if self.fail_deassign.load(Relaxed) {
                    return Err(Error::kernel(Op::Deassign, Some(req.gsi), Errno::IO));
                }
                return Ok(());
            }
            if req.is_resample() {
                self.push(format!("assign_resample {}", req.gsi));
            } else {
                self.push(format!("assign {}", req.gsi));
            }
            if self.refuse_gsi == Some(req.gsi) {
                return Err(Error::kernel(Op::Assign, Some(req.gsi), Errno::BUSY));
            }
            if self.fail_assign.load(Relaxed) {
                return Err(Error::kernel(Op::Assign, Some(req.gsi), Errno::NOMEM));
            }
            Ok(())
        }
        fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()> {
            self.push(format!("set_msi {gsi} {addr:#x} {data:#x}"));
            Ok(())
        }
        fn clear_msi(&self, gsi: u32) -> Result<()> {
            self.push(format!("clear_msi {gsi}"));
            if self.fail_clear {
                return Err(Error::kernel(Op::ClearMsi, Some(gsi), Errno::NOMEM));
            }
            Ok(())
        }
        fn mask(&self, gsi: u32) -> Result<()> {
            self.push(format!("native mask {gsi}"));
            Ok(())
        }
        fn unmask(&self, gsi: u32) -> Result<()> {
            self.push(format!("native unmask {gsi}"));
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

    /// Masking unbinds on every backend (the native mask is never used):
    /// the eventfd's counter is the pending bit.
    #[test]
    fn masking_unbinds_and_the_counter_is_the_pending_bit() {
        let irqfd = IrqFd::new(fake(8, 0));
        {
            let r = irqfd.new_route().unwrap();
            assert!(!r.pending().unwrap(), "unmasked: nothing pending");
            r.event().signal().unwrap();
            assert!(!r.pending().unwrap(), "unmasked: delivered, not pending");
            assert!(!r.take_pending().unwrap());
            assert!(
                r.event().is_signalled().unwrap(),
                "untouched while unmasked"
            );
            r.event().read().unwrap();

            r.mask().unwrap();
            assert!(r.is_masked());
            r.mask().unwrap(); // masked already: nothing to do
            assert!(!r.pending().unwrap());
            r.event().signal().unwrap();
            r.event().signal().unwrap();
            assert!(r.pending().unwrap());
            assert!(r.pending().unwrap(), "reading does not clear");
            assert!(r.take_pending().unwrap());
            assert!(!r.pending().unwrap(), "read-and-clear cleared it");
            assert!(!r.take_pending().unwrap());
            r.event().signal().unwrap();
            r.unmask().unwrap();
            assert!(!r.is_masked());
            assert!(!r.pending().unwrap());
            r.unmask().unwrap(); // not masked: nothing to do
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
                // Drop while unbound: no deassign.
                "clear_msi 0"
            ]
        );
        assert_eq!(irqfd.allocator().in_use(), 0);
    }

    #[test]
    fn a_failed_mask_or_unmask_leaves_the_state() {
        let irqfd = IrqFd::new(fake(8, 0));
        let r = irqfd.new_route().unwrap();
        irqfd.backend().fail_deassign.store(true, Relaxed);
        assert_eq!(
            r.mask().unwrap_err(),
            Error::kernel(Op::Deassign, Some(0), Errno::IO)
        );
        assert!(!r.is_masked());
        irqfd.backend().fail_deassign.store(false, Relaxed);
        r.mask().unwrap();
        irqfd.backend().fail_assign.store(true, Relaxed);
        assert_eq!(r.unmask().unwrap_err().errno(), Some(Errno::NOMEM));
        assert!(r.is_masked(), "still masked");
        irqfd.backend().fail_assign.store(false, Relaxed);
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
                "assign_resample 9",
                "assign_resample 9",
                "ack 9",
                "deassign 9",
                "deassign 9"
            ]
        );
        let refused = IrqFd::new(Fake {
            refuse_gsi: Some(4),
            ..fake(8, 0)
        });
        assert!(refused.new_level_line(4).unwrap_err().is_busy());
        assert_eq!(refused.backend().log(), ["assign_resample 4"]);
    }

    #[test]
    fn lines_and_routes_are_static_and_move_across_threads() {
        let irqfd = IrqFd::new(fake(16, 0));
        let line: IrqFdLine<Fake> = irqfd.new_level_line(3).unwrap();
        let route: Box<dyn std::any::Any + Send + Sync> = Box::new(irqfd.new_route().unwrap());
        let t = std::thread::spawn(move || {
            line.event().signal().unwrap();
            drop(route);
            line.gsi()
        });
        assert_eq!(t.join().unwrap(), 3);
        assert_eq!(
            irqfd.backend().log(),
            ["assign_resample 3", "assign 0", "deassign 0", "deassign 3"]
        );
    }

    #[test]
    fn failed_assign_frees_the_gsi() {
        let irqfd = IrqFd::new(Fake {
            refuse_gsi: Some(3),
            ..fake(8, 3)
        });
        let e = irqfd.new_route().unwrap_err();
        assert_eq!(e, Error::kernel(Op::Assign, Some(3), Errno::BUSY));
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

    /// A GSI whose unbind failed may still be fired by a copy of the
    /// eventfd: it is reported and never handed out again.
    #[test]
    fn a_gsi_whose_unbind_failed_is_not_reused() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let irqfd = IrqFd::new(fake(8, 0));
        let s = seen.clone();
        irqfd.set_drop_error_hook(move |e| s.lock().unwrap().push(e.to_string()));
        let r = irqfd.new_route().unwrap();
        assert_eq!(r.gsi(), 0);
        irqfd.backend().fail_deassign.store(true, Relaxed);
        drop(r);
        irqfd.backend().fail_deassign.store(false, Relaxed);
        assert!(irqfd.allocator().is_allocated(0), "leaked, not freed");
        assert_eq!(irqfd.new_route().unwrap().gsi(), 1, "GSI 0 not reused");
        assert_eq!(
            *seen.lock().unwrap(),
            ["deassign irqfd (GSI 0): EIO (Input/output error)"]
        );
        // A masked route has nothing bound: only its route clear can fail.
        let r = irqfd.new_route().unwrap();
        r.mask().unwrap();
        irqfd.backend().fail_deassign.store(true, Relaxed);
        drop(r);
        irqfd.backend().fail_deassign.store(false, Relaxed);
        assert!(!irqfd.allocator().is_allocated(1), "nothing failed: freed");
    }

    #[test]
    fn a_gsi_whose_route_clear_failed_is_not_reused() {
        let irqfd = IrqFd::new(Fake {
            fail_clear: true,
            ..fake(8, 0)
        });
        let r = irqfd.new_route().unwrap();
        r.set_msi(0xfee0_0000, 0x40).unwrap();
        drop(r);
        assert!(irqfd.allocator().is_allocated(0));
        // Without a route set there is nothing to clear: freed.
        drop(irqfd.new_route().unwrap());
        assert!(!irqfd.allocator().is_allocated(1));
    }

    #[test]
    fn drop_errors_without_a_hook_are_ignored() {
        let irqfd = IrqFd::new(fake(8, 0));
        irqfd.backend().fail_deassign.store(true, Relaxed);
        drop(irqfd.new_route().unwrap());
        drop(irqfd.new_level_line(7).unwrap());
        irqfd.backend().fail_deassign.store(false, Relaxed);
        assert!(irqfd.new_route().is_ok(), "still usable");
    }

    /// The hook runs with no lock held: replacing a hook that owns a route
    /// drops that route, whose failed teardown reports to the new hook.
    #[test]
    fn hooks_run_unlocked() {
        let irqfd = IrqFd::new(fake(8, 0));
        let r = irqfd.new_route().unwrap();
        irqfd.set_drop_error_hook(move |_| {
            let _ = r.gsi();
        });
        irqfd.backend().fail_deassign.store(true, Relaxed);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        irqfd.set_drop_error_hook(move |e| s.lock().unwrap().push(e.gsi()));
        assert_eq!(*seen.lock().unwrap(), [Some(0)]);
    }

    #[test]
    fn routes_keep_the_irqfd_alive() {
        let irqfd = IrqFd::new(fake(8, 0));
        let r = irqfd.new_route().unwrap();
        let weak = Arc::downgrade(&irqfd.inner);
        drop(irqfd);
        let t = std::thread::spawn(move || {
            r.set_msi(0xfee0_0000, 0x51).unwrap();
            r.gsi()
        });
        assert_eq!(t.join().unwrap(), 0);
        assert!(weak.upgrade().is_none(), "the last route dropped the IrqFd");
    }

    #[test]
    fn clones_share_the_table_and_the_hook() {
        let irqfd = IrqFd::new(fake(8, 0));
        let other = irqfd.clone();
        let a = irqfd.new_route().unwrap();
        let b = other.new_route().unwrap();
        assert_eq!((a.gsi(), b.gsi()), (0, 1));
        let hits = Arc::new(Mutex::new(0));
        let h = hits.clone();
        other.set_drop_error_hook(move |_| *h.lock().unwrap() += 1);
        irqfd.backend().fail_deassign.store(true, Relaxed);
        drop(a);
        assert_eq!(*hits.lock().unwrap(), 1);
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

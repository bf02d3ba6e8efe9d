// SPDX-License-Identifier: GPL-2.0
//! [`IrqFdBackend`]: what an interrupt controller must offer an irqfd user.

use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use crate::abi::RawIrqfd;
use crate::error::{Errno, Error, Op, Result};

/// An in-kernel interrupt controller that eventfds can be bound to: one
/// module context ([`ModuleBackend`](crate::ModuleBackend)) or one KVM VM
/// ([`KvmBackend`](crate::KvmBackend)).
///
/// Every method takes `&self` and the trait requires `Send + Sync`: the
/// kernel serialises the ioctls of one descriptor, and any userspace state a
/// backend keeps (KVM's routing table) is behind a lock, so a backend can be
/// shared by the threads of a VMM.
///
/// Operations a backend's kernel interface lacks return
/// [`Error::Unsupported`]: KVM has no per-GSI [`mask`](Self::mask) /
/// [`unmask`](Self::unmask) (an [`IrqFdRoute`](crate::IrqFdRoute) emulates
/// them by unbinding its eventfd) and no userspace [`ack`](Self::ack) (the
/// guest's EOI acknowledges a level line), and reports
/// [`line_asserted`](Self::line_asserted) only for GSIs routed to its IOAPIC.
///
/// A backend picked at run time is a `Box<dyn IrqFdBackend>`, itself a
/// backend:
///
/// ```
/// use rust_irqfd_vmm::{IrqFd, IrqFdBackend, KvmBackend, ModuleBackend};
///
/// fn open(name: &str) -> rust_irqfd_vmm::Result<Box<dyn IrqFdBackend>> {
///     Ok(match name {
///         "kvm" => Box::new(KvmBackend::new()?),
///         path => Box::new(ModuleBackend::open(path)?),
///     })
/// }
/// let Ok(backend) = open("kvm") else { return Ok(()) }; // no /dev/kvm here
/// let irqfd = IrqFd::new(backend);
/// assert_eq!(irqfd.backend().name(), "kvm");
/// let route = irqfd.new_route()?;
/// assert!(route.gsi() >= 24);
/// # Ok::<(), rust_irqfd_vmm::Error>(())
/// ```
pub trait IrqFdBackend: Send + Sync {
    /// A short name for messages and tables (`rust_irqfd`, `c_irqfd`, `kvm`).
    fn name(&self) -> &str;

    /// How many GSIs the backend accepts: `0 .. nr_gsis()`.
    fn nr_gsis(&self) -> u32;

    /// GSIs with a fixed meaning that an allocator must not hand out
    /// (KVM's default irqchip routes). Empty by default.
    fn reserved_gsis(&self) -> Range<u32> {
        0..0
    }

    /// Issues one raw irqfd request (`struct rust_irqfd`, which both ABIs
    /// share), for conformance tests: the descriptor numbers in it are
    /// resolved by the kernel, which rejects what is not an open eventfd.
    /// Errors carry [`Op::Deassign`] or [`Op::Assign`] after the request's
    /// flag, and its GSI.
    fn irqfd(&self, req: &RawIrqfd) -> Result<()>;

    /// Binds `eventfd` to `gsi`: from now on a signal on it injects `gsi`.
    ///
    /// `EBUSY` ([`Error::is_busy`]) if the eventfd is bound already, anywhere;
    /// `EINVAL` ([`Error::is_invalid`]) if it is not an eventfd or (modules)
    /// `gsi` is out of range.
    fn assign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        raw_assign(self, eventfd, gsi)
    }

    /// Binds `eventfd` to `gsi` as a resample (level-triggered) irqfd, as
    /// `KVM_IRQFD_FLAG_RESAMPLE`: a signal asserts the line, which stays
    /// asserted (further signals coalescing into it) until the line is
    /// acknowledged ([`ack`](Self::ack) on the modules, the guest's EOI on
    /// KVM); then the line is deasserted and `resamplefd` signalled, so that
    /// the device can check whether it still needs service and signal again.
    ///
    /// Every resample irqfd of a GSI shares one resampler: an
    /// acknowledgement signals each of their resamplefds. The kernel takes
    /// its own reference to `resamplefd`: closing it later does not disable
    /// the irqfd. `resamplefd` may be `eventfd` itself. Unbind with
    /// [`deassign`](Self::deassign); when the last resample irqfd of a GSI
    /// goes, the line is deasserted.
    ///
    /// Errors (as [`Op::AssignResample`]): those of [`assign`](Self::assign),
    /// and `EBADF` ([`Error::is_bad_fd`]) if `resamplefd` is not open, `EINVAL`
    /// ([`Error::is_invalid`]) if it is not an eventfd.
    fn assign_resample(
        &self,
        eventfd: BorrowedFd<'_>,
        gsi: u32,
        resamplefd: BorrowedFd<'_>,
    ) -> Result<()> {
        raw_assign_resample(self, eventfd, gsi, resamplefd)
    }

    /// Unbinds `eventfd` from `gsi`. Succeeds whether or not it was bound;
    /// once it returns, no injection from that binding happens.
    fn deassign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        raw_deassign(self, eventfd, gsi)
    }

    /// Routes `gsi` to the MSI `addr`/`data`, replacing its previous route
    /// in place: irqfds bound to `gsi` stay bound and inject with the new
    /// route from their next injection on.
    ///
    /// `EINVAL` ([`Error::is_invalid`]) for a GSI out of range; the modules also
    /// reject an address that is zero or not 4-byte aligned (KVM accepts
    /// any).
    fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()>;

    /// Removes `gsi`'s MSI route (a no-op if it has none): the modules make
    /// it a plain line again; on KVM, signals on it then go nowhere.
    /// `EINVAL` for a GSI out of range.
    fn clear_msi(&self, gsi: u32) -> Result<()>;

    /// Masks `gsi`, MSI-X style: injections are latched, not delivered,
    /// until [`unmask`](Self::unmask). Masking a masked GSI changes nothing.
    fn mask(&self, gsi: u32) -> Result<()>;

    /// Unmasks `gsi`: if injections were latched while it was masked, they
    /// are delivered now, as one interrupt with the GSI's current route.
    /// Unmasking an unmasked GSI changes nothing.
    fn unmask(&self, gsi: u32) -> Result<()>;

    /// The guest's end of interrupt for level GSI `gsi`: if a resample
    /// irqfd's injection holds the line asserted, deasserts it and signals
    /// the resamplefd of every resample irqfd bound to `gsi`. Returns how
    /// many resamplefds were signalled (0 if the line was not asserted).
    ///
    /// [`Error::Unsupported`] by default, and on KVM, where the guest's EOI
    /// (to its IOAPIC or PIC) is what acknowledges the line.
    fn ack(&self, gsi: u32) -> Result<u32> {
        let _ = gsi;
        Err(Error::Unsupported {
            op: Op::Ack,
            backend: self.name().to_owned(),
        })
    }

    /// Whether a level injection holds `gsi`'s line asserted now (for
    /// tests and introspection). [`Error::Unsupported`] by default.
    fn line_asserted(&self, gsi: u32) -> Result<bool> {
        let _ = gsi;
        Err(Error::Unsupported {
            op: Op::LineState,
            backend: self.name().to_owned(),
        })
    }
}

/// [`IrqFdBackend::assign`] as one raw request: the default, and what a
/// backend that overrides it may fall back to.
pub(crate) fn raw_assign<B: IrqFdBackend + ?Sized>(
    b: &B,
    eventfd: BorrowedFd<'_>,
    gsi: u32,
) -> Result<()> {
    b.irqfd(&RawIrqfd::assign(fd_number(eventfd, Op::Assign, gsi)?, gsi))
}

/// [`IrqFdBackend::assign_resample`] as one raw request.
pub(crate) fn raw_assign_resample<B: IrqFdBackend + ?Sized>(
    b: &B,
    eventfd: BorrowedFd<'_>,
    gsi: u32,
    resamplefd: BorrowedFd<'_>,
) -> Result<()> {
    let fd = fd_number(eventfd, Op::AssignResample, gsi)?;
    let rfd = fd_number(resamplefd, Op::AssignResample, gsi)?;
    b.irqfd(&RawIrqfd::assign_resample(fd, gsi, rfd))
}

/// [`IrqFdBackend::deassign`] as one raw request.
pub(crate) fn raw_deassign<B: IrqFdBackend + ?Sized>(
    b: &B,
    eventfd: BorrowedFd<'_>,
    gsi: u32,
) -> Result<()> {
    b.irqfd(&RawIrqfd::deassign(
        fd_number(eventfd, Op::Deassign, gsi)?,
        gsi,
    ))
}

/// The number the ABI wants for a descriptor (never negative for a
/// `BorrowedFd`, but checked rather than cast).
fn fd_number(fd: BorrowedFd<'_>, op: Op, gsi: u32) -> Result<u32> {
    u32::try_from(fd.as_raw_fd()).map_err(|_| Error::kernel(op, Some(gsi), Errno::BADF))
}

/// The op an irqfd request stands for.
pub(crate) fn irqfd_op(req: &RawIrqfd) -> Op {
    if req.is_deassign() {
        Op::Deassign
    } else if req.is_resample() {
        Op::AssignResample
    } else {
        Op::Assign
    }
}

macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<B: IrqFdBackend + ?Sized> IrqFdBackend for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn nr_gsis(&self) -> u32 {
                (**self).nr_gsis()
            }
            fn reserved_gsis(&self) -> Range<u32> {
                (**self).reserved_gsis()
            }
            fn irqfd(&self, req: &RawIrqfd) -> Result<()> {
                (**self).irqfd(req)
            }
            fn assign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
                (**self).assign(eventfd, gsi)
            }
            fn assign_resample(
                &self,
                eventfd: BorrowedFd<'_>,
                gsi: u32,
                resamplefd: BorrowedFd<'_>,
            ) -> Result<()> {
                (**self).assign_resample(eventfd, gsi, resamplefd)
            }
            fn deassign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
                (**self).deassign(eventfd, gsi)
            }
            fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()> {
                (**self).set_msi(gsi, addr, data)
            }
            fn clear_msi(&self, gsi: u32) -> Result<()> {
                (**self).clear_msi(gsi)
            }
            fn mask(&self, gsi: u32) -> Result<()> {
                (**self).mask(gsi)
            }
            fn unmask(&self, gsi: u32) -> Result<()> {
                (**self).unmask(gsi)
            }
            fn ack(&self, gsi: u32) -> Result<u32> {
                (**self).ack(gsi)
            }
            fn line_asserted(&self, gsi: u32) -> Result<bool> {
                (**self).line_asserted(gsi)
            }
        }
    )*};
}

// A backend behind a `Box` (`Box<dyn IrqFdBackend>`, to pick one at run
// time), an `Arc` (to share one VM between an `IrqFd` and other users) or a
// reference is a backend too.
forward!(Box<B>, Arc<B>, &B);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventFd;
    use std::os::fd::AsFd;
    use std::sync::Mutex;

    /// Implements only what the trait requires: the defaults are under test.
    #[derive(Default)]
    struct Minimal {
        seen: Mutex<Vec<RawIrqfd>>,
    }

    impl IrqFdBackend for Minimal {
        fn name(&self) -> &str {
            "minimal"
        }
        fn nr_gsis(&self) -> u32 {
            16
        }
        fn irqfd(&self, req: &RawIrqfd) -> Result<()> {
            self.seen.lock().unwrap().push(*req);
            Err(Error::kernel(
                irqfd_op(req),
                Some(req.gsi),
                rustix::io::Errno::INVAL,
            ))
        }
        fn set_msi(&self, _: u32, _: u64, _: u32) -> Result<()> {
            Ok(())
        }
        fn clear_msi(&self, _: u32) -> Result<()> {
            Ok(())
        }
        fn mask(&self, _: u32) -> Result<()> {
            Ok(())
        }
        fn unmask(&self, _: u32) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn default_requests_and_ops() {
        let b = Minimal::default();
        let (e, r) = (EventFd::new().unwrap(), EventFd::new().unwrap());
        let err = b.assign_resample(e.as_fd(), 3, r.as_fd()).unwrap_err();
        assert_eq!(
            err,
            Error::kernel(Op::AssignResample, Some(3), rustix::io::Errno::INVAL)
        );
        assert_eq!(b.assign(e.as_fd(), 4).unwrap_err().op(), Some(Op::Assign));
        assert_eq!(
            b.deassign(e.as_fd(), 5).unwrap_err().op(),
            Some(Op::Deassign)
        );
        let seen = b.seen.lock().unwrap().clone();
        let fd = e.as_raw() as u32;
        assert_eq!(
            seen,
            [
                RawIrqfd::assign_resample(fd, 3, r.as_raw() as u32),
                RawIrqfd::assign(fd, 4),
                RawIrqfd::deassign(fd, 5)
            ]
        );
        // Deassign with RESAMPLE set is a deassign.
        let req = RawIrqfd {
            flags: crate::abi::module::FLAG_DEASSIGN | crate::abi::module::FLAG_RESAMPLE,
            ..RawIrqfd::assign(fd, 1)
        };
        assert_eq!(irqfd_op(&req), Op::Deassign);
    }

    #[test]
    fn ack_and_line_state_default_to_unsupported() {
        let b = Minimal::default();
        assert_eq!(
            b.ack(1),
            Err(Error::Unsupported {
                op: Op::Ack,
                backend: "minimal".into()
            })
        );
        assert_eq!(
            b.line_asserted(1),
            Err(Error::Unsupported {
                op: Op::LineState,
                backend: "minimal".into()
            })
        );
        // Through the forwarding impls too.
        let boxed: Box<dyn IrqFdBackend> = Box::new(Minimal::default());
        assert!(matches!(boxed.ack(2), Err(Error::Unsupported { .. })));
        let arc = Arc::new(Minimal::default());
        assert_eq!(arc.nr_gsis(), 16);
        let by_ref: &Minimal = &arc;
        assert!(matches!(
            IrqFdBackend::line_asserted(&by_ref, 0),
            Err(Error::Unsupported { .. })
        ));
    }
}

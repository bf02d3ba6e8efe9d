// SPDX-License-Identifier: GPL-2.0
//! [`IrqFdBackend`]: what an interrupt controller must offer an irqfd user.

use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use crate::abi::RawIrqfd;
use crate::error::{Error, Op, Result};

/// An in-kernel interrupt controller that eventfds can be bound to: one
/// module context ([`ModuleBackend`](crate::ModuleBackend)) or one KVM VM
/// ([`KvmBackend`](crate::KvmBackend)).
///
/// Every method takes `&self` and the trait requires `Send + Sync`: the
/// kernel serialises the ioctls of one descriptor, and any userspace state a
/// backend keeps (KVM's routing table) is behind a lock, so a backend can be
/// shared by the threads of a VMM.
///
/// Routing and masking ([`set_msi`](Self::set_msi),
/// [`clear_msi`](Self::clear_msi), [`mask`](Self::mask),
/// [`unmask`](Self::unmask)) return [`Error::Unsupported`] where the
/// backend's ABI has no such operation yet.
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
    /// `EBUSY` ([`Error::Busy`]) if the eventfd is bound already, anywhere;
    /// `EINVAL` ([`Error::Invalid`]) if it is not an eventfd or (modules)
    /// `gsi` is out of range.
    fn assign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        self.irqfd(&RawIrqfd::assign(fd_number(eventfd, Op::Assign, gsi)?, gsi))
    }

    /// Unbinds `eventfd` from `gsi`. Succeeds whether or not it was bound;
    /// once it returns, no injection from that binding happens.
    fn deassign(&self, eventfd: BorrowedFd<'_>, gsi: u32) -> Result<()> {
        self.irqfd(&RawIrqfd::deassign(
            fd_number(eventfd, Op::Deassign, gsi)?,
            gsi,
        ))
    }

    /// Routes `gsi` to the MSI `addr`/`data` (replacing its previous route).
    fn set_msi(&self, gsi: u32, addr: u64, data: u32) -> Result<()>;

    /// Removes `gsi`'s MSI route: signals on it then go nowhere.
    fn clear_msi(&self, gsi: u32) -> Result<()>;

    /// Masks `gsi`: injections are held back until [`unmask`](Self::unmask).
    fn mask(&self, gsi: u32) -> Result<()>;

    /// Unmasks `gsi`.
    fn unmask(&self, gsi: u32) -> Result<()>;
}

/// The number the ABI wants for a descriptor (never negative for a
/// `BorrowedFd`, but checked rather than cast).
fn fd_number(fd: BorrowedFd<'_>, op: Op, gsi: u32) -> Result<u32> {
    u32::try_from(fd.as_raw_fd()).map_err(|_| Error::BadFd { op, gsi: Some(gsi) })
}

/// The op an irqfd request stands for.
pub(crate) fn irqfd_op(req: &RawIrqfd) -> Op {
    if req.is_deassign() {
        Op::Deassign
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
        }
    )*};
}

// A backend behind a `Box` (`Box<dyn IrqFdBackend>`, to pick one at run
// time), an `Arc` (to share one VM between an `IrqFd` and other users) or a
// reference is a backend too.
forward!(Box<B>, Arc<B>, &B);

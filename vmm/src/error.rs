// SPDX-License-Identifier: GPL-2.0
//! Typed errors: what failed (the operation and, where there is one, the
//! GSI) and why (the errno the kernel returned).

use std::fmt;
use std::path::PathBuf;

pub use rustix::io::Errno;

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// The operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// `open(2)` of a device node.
    Open,
    /// `eventfd(2)`.
    CreateEventFd,
    /// `write(2)` to an eventfd's counter.
    SignalEventFd,
    /// `read(2)` of an eventfd's counter.
    ReadEventFd,
    /// `poll(2)` of an eventfd.
    PollEventFd,
    /// `KVM_GET_API_VERSION`.
    GetApiVersion,
    /// `KVM_CHECK_EXTENSION`.
    CheckExtension,
    /// `KVM_CREATE_VM`.
    CreateVm,
    /// `KVM_CREATE_IRQCHIP`.
    CreateIrqchip,
    /// Binding an eventfd to a GSI (`RUST_IRQFD_IRQFD` / `KVM_IRQFD`).
    Assign,
    /// Binding an eventfd to a GSI as a resample (level) irqfd
    /// (`... | FLAG_RESAMPLE`).
    AssignResample,
    /// Unbinding an eventfd (`... | FLAG_DEASSIGN`).
    Deassign,
    /// Setting a GSI's MSI address/data.
    SetMsi,
    /// Clearing a GSI's MSI route.
    ClearMsi,
    /// Masking a GSI.
    Mask,
    /// Unmasking a GSI.
    Unmask,
    /// Acknowledging a level GSI (`RUST_IRQFD_ACK`): the guest's EOI.
    Ack,
    /// Asking whether a level GSI's line is asserted.
    LineState,
    /// `KVM_GET_IRQCHIP`.
    GetIrqchip,
    /// `RUST_IRQFD_GET_INFO`.
    GetInfo,
    /// `RUST_IRQFD_GSI_STATS`.
    GsiStats,
    /// `read(2)` of delivery records from a module context.
    ReadDeliveries,
    /// Taking a GSI from a [`GsiAllocator`](crate::GsiAllocator).
    AllocGsi,
}

impl Op {
    /// A short lower-case name, as used in [`Error`]'s `Display`.
    ///
    /// ```
    /// assert_eq!(rust_irqfd_vmm::Op::Deassign.name(), "deassign irqfd");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::CreateEventFd => "create eventfd",
            Op::SignalEventFd => "signal eventfd",
            Op::ReadEventFd => "read eventfd",
            Op::PollEventFd => "poll eventfd",
            Op::GetApiVersion => "KVM_GET_API_VERSION",
            Op::CheckExtension => "KVM_CHECK_EXTENSION",
            Op::CreateVm => "KVM_CREATE_VM",
            Op::CreateIrqchip => "KVM_CREATE_IRQCHIP",
            Op::Assign => "assign irqfd",
            Op::AssignResample => "assign resample irqfd",
            Op::Deassign => "deassign irqfd",
            Op::SetMsi => "set MSI route",
            Op::ClearMsi => "clear MSI route",
            Op::Mask => "mask",
            Op::Unmask => "unmask",
            Op::Ack => "ack",
            Op::LineState => "line state",
            Op::GetIrqchip => "KVM_GET_IRQCHIP",
            Op::GetInfo => "RUST_IRQFD_GET_INFO",
            Op::GsiStats => "RUST_IRQFD_GSI_STATS",
            Op::ReadDeliveries => "read deliveries",
            Op::AllocGsi => "allocate GSI",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong, each with what was being done.
///
/// A refusal by the kernel is [`Kernel`](Error::Kernel), whatever the errno;
/// the accessors ([`is_busy`](Error::is_busy), [`errno`](Error::errno), ...)
/// answer the usual questions without a match:
///
/// ```
/// use rust_irqfd_vmm::{Errno, Error, Op};
///
/// let e = Error::kernel(Op::Assign, Some(5), Errno::BUSY);
/// assert!(e.is_busy());
/// assert_eq!((e.op(), e.gsi(), e.errno()), (Some(Op::Assign), Some(5), Some(Errno::BUSY)));
/// assert_eq!(e.to_string(), "assign irqfd (GSI 5): EBUSY (Device or resource busy)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The kernel refused an operation.
    Kernel {
        /// What was being done.
        op: Op,
        /// The GSI concerned, if the operation has one.
        gsi: Option<u32>,
        /// What the kernel said.
        errno: Errno,
    },
    /// Opening a device node failed.
    Open {
        /// The node.
        path: PathBuf,
        /// What the kernel said.
        errno: Errno,
    },
    /// The backend does not implement this operation: KVM has no per-GSI
    /// mask and no userspace EOI ([`IrqFdBackend::ack`](crate::IrqFdBackend::ack)),
    /// and reports line state only for GSIs routed to its IOAPIC.
    Unsupported {
        /// What was asked for.
        op: Op,
        /// [`IrqFdBackend::name`](crate::IrqFdBackend::name) of the backend.
        backend: String,
    },
    /// Every GSI of the allocator is in use.
    GsisExhausted {
        /// How many the allocator hands out in all.
        capacity: u32,
    },
    /// The device speaks an ABI version this crate does not know.
    AbiVersion {
        /// The device.
        what: String,
        /// The version this crate speaks.
        expected: u32,
        /// The version the device reported.
        found: u32,
    },
    /// A KVM capability this crate needs is missing.
    MissingCapability {
        /// `KVM_CAP_*` name.
        cap: &'static str,
    },
}

impl Error {
    /// The kernel refused `op` (on `gsi`, if any) with `errno`.
    pub fn kernel(op: Op, gsi: Option<u32>, errno: Errno) -> Self {
        Error::Kernel { op, gsi, errno }
    }

    /// The errno behind this error, if the kernel gave one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Kernel { errno, .. } | Error::Open { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// `EBUSY`: the eventfd is already bound to an irqfd (in this context,
    /// another one, the other module, or KVM).
    pub fn is_busy(&self) -> bool {
        self.errno() == Some(Errno::BUSY)
    }

    /// `EBADF`: a descriptor was not open.
    pub fn is_bad_fd(&self) -> bool {
        self.errno() == Some(Errno::BADF)
    }

    /// `EINVAL`: the request was rejected (unknown flag, non-zero pad, GSI
    /// out of range, not an eventfd, ...).
    pub fn is_invalid(&self) -> bool {
        self.errno() == Some(Errno::INVAL)
    }

    /// The backend lacks the operation ([`Error::Unsupported`]).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Error::Unsupported { .. })
    }

    /// The operation that failed, where there is one.
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Kernel { op, .. } | Error::Unsupported { op, .. } => Some(*op),
            Error::Open { .. } => Some(Op::Open),
            Error::GsisExhausted { .. } => Some(Op::AllocGsi),
            Error::AbiVersion { .. } | Error::MissingCapability { .. } => None,
        }
    }

    /// The GSI the failed operation concerned, where there is one.
    pub fn gsi(&self) -> Option<u32> {
        match self {
            Error::Kernel { gsi, .. } => *gsi,
            _ => None,
        }
    }

    /// A short tag for tables: the errno's name (`EBUSY`, `errno 133` for
    /// one without a name), or the variant's name for errors without an
    /// errno (`unsupported`).
    ///
    /// ```
    /// use rust_irqfd_vmm::{Errno, Error, Op};
    ///
    /// assert_eq!(Error::kernel(Op::Mask, Some(1), Errno::INVAL).tag(), "EINVAL");
    /// assert_eq!(Error::GsisExhausted { capacity: 8 }.tag(), "exhausted");
    /// ```
    pub fn tag(&self) -> String {
        match self {
            Error::Kernel { errno, .. } | Error::Open { errno, .. } => errno_tag(*errno),
            Error::Unsupported { .. } => "unsupported".into(),
            Error::GsisExhausted { .. } => "exhausted".into(),
            Error::AbiVersion { .. } => "abi-version".into(),
            Error::MissingCapability { .. } => "missing-cap".into(),
        }
    }
}

/// `EBUSY`, from the project's one errno table, or `errno N`.
fn errno_tag(e: Errno) -> String {
    rust_irqfd_abi::errno::name(e.raw_os_error())
        .map_or_else(|| format!("errno {}", e.raw_os_error()), str::to_owned)
}

/// `"EBUSY (Device or resource busy)"`: the name and the C library's text.
struct ErrnoText(Errno);

impl fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0.raw_os_error()).to_string();
        // std appends " (os error N)"; the name already says which.
        let text = text.split(" (os error").next().unwrap_or_default();
        write!(f, "{} ({text})", errno_tag(self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Kernel { op, gsi, errno } => {
                write!(f, "{op}")?;
                if let Some(g) = gsi {
                    write!(f, " (GSI {g})")?;
                }
                write!(f, ": {}", ErrnoText(*errno))
            }
            Error::Open { path, errno } => {
                write!(f, "open {}: {}", path.display(), ErrnoText(*errno))
            }
            Error::Unsupported { op, backend } => {
                write!(f, "{op}: not supported by the {backend} backend")
            }
            Error::GsisExhausted { capacity } => {
                write!(f, "allocate GSI: all {capacity} GSIs are in use")
            }
            Error::AbiVersion {
                what,
                expected,
                found,
            } => write!(
                f,
                "{what} speaks ABI version {found}, this crate speaks {expected}"
            ),
            Error::MissingCapability { cap } => write!(f, "KVM lacks {cap}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    /// Keeps the errno's [`ErrorKind`](std::io::ErrorKind) where there is
    /// one (`Unsupported` for [`Error::Unsupported`]) and the message, so
    /// that `?` into an `io::Result` says what failed.
    fn from(e: Error) -> Self {
        let kind = match (&e, e.errno()) {
            (_, Some(errno)) => std::io::Error::from(errno).kind(),
            (Error::Unsupported { .. }, None) => std::io::ErrorKind::Unsupported,
            (Error::GsisExhausted { .. }, None) => std::io::ErrorKind::OutOfMemory,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let e = Error::kernel(Op::Deassign, Some(0), Errno::BADF);
        assert!(e.is_bad_fd() && !e.is_busy() && !e.is_invalid() && !e.is_unsupported());
        assert_eq!((e.op(), e.gsi()), (Some(Op::Deassign), Some(0)));
        assert!(Error::kernel(Op::SetMsi, None, Errno::INVAL).is_invalid());
        let u = Error::Unsupported {
            op: Op::Mask,
            backend: "kvm".into(),
        };
        assert!(u.is_unsupported());
        assert_eq!((u.errno(), u.gsi(), u.op()), (None, None, Some(Op::Mask)));
        assert_eq!(
            Error::GsisExhausted { capacity: 4 }.op(),
            Some(Op::AllocGsi)
        );
        let open = Error::Open {
            path: "/dev/kvm".into(),
            errno: Errno::NOENT,
        };
        assert_eq!(
            (open.op(), open.errno()),
            (Some(Op::Open), Some(Errno::NOENT))
        );
    }

    #[test]
    fn display_text() {
        let s = |e: Error| e.to_string();
        assert_eq!(
            s(Error::kernel(Op::CreateIrqchip, None, Errno::INVAL)),
            "KVM_CREATE_IRQCHIP: EINVAL (Invalid argument)"
        );
        assert_eq!(
            s(Error::kernel(Op::SetMsi, Some(30), Errno::NOMEM)),
            "set MSI route (GSI 30): ENOMEM (Cannot allocate memory)"
        );
        assert_eq!(
            s(Error::Unsupported {
                op: Op::SetMsi,
                backend: "rust_irqfd".into()
            }),
            "set MSI route: not supported by the rust_irqfd backend"
        );
        assert_eq!(
            s(Error::GsisExhausted { capacity: 2048 }),
            "allocate GSI: all 2048 GSIs are in use"
        );
        assert_eq!(
            s(Error::Open {
                path: "/dev/kvm".into(),
                errno: Errno::NOENT,
            }),
            "open /dev/kvm: ENOENT (No such file or directory)"
        );
        assert_eq!(
            Error::kernel(Op::Ack, None, Errno::from_raw_os_error(133)).tag(),
            "errno 133"
        );
    }

    #[test]
    fn op_names_are_distinct() {
        let all = [
            Op::Open,
            Op::CreateEventFd,
            Op::SignalEventFd,
            Op::ReadEventFd,
            Op::PollEventFd,
            Op::GetApiVersion,
            Op::CheckExtension,
            Op::CreateVm,
            Op::CreateIrqchip,
            Op::Assign,
            Op::AssignResample,
            Op::Deassign,
            Op::SetMsi,
            Op::ClearMsi,
            Op::Mask,
            Op::Unmask,
            Op::Ack,
            Op::LineState,
            Op::GetIrqchip,
            Op::GetInfo,
            Op::GsiStats,
            Op::ReadDeliveries,
            Op::AllocGsi,
        ];
        let mut names: Vec<_> = all.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn into_io_error_keeps_the_kind() {
        let io: std::io::Error = Error::kernel(Op::Assign, Some(1), Errno::BUSY).into();
        assert_eq!(io.kind(), std::io::ErrorKind::ResourceBusy);
        assert!(io.to_string().contains("EBUSY"));
        let io: std::io::Error = Error::Unsupported {
            op: Op::Mask,
            backend: "kvm".into(),
        }
        .into();
        assert_eq!(io.kind(), std::io::ErrorKind::Unsupported);
    }
}

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
    /// `write(2)` of 1 to an eventfd.
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
/// The errnos every irqfd ABI documents get their own variants
/// ([`Busy`](Error::Busy), [`BadFd`](Error::BadFd),
/// [`Invalid`](Error::Invalid)); any other errno is [`Os`](Error::Os).
/// [`Error::from_errno`] does that mapping and [`Error::errno`] undoes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `EBUSY`: the eventfd is already bound to an irqfd (in this context,
    /// another one, the other module, or KVM).
    Busy {
        /// What was being done.
        op: Op,
        /// The GSI concerned.
        gsi: Option<u32>,
    },
    /// `EBADF`: the descriptor is not open.
    BadFd {
        /// What was being done.
        op: Op,
        /// The GSI concerned.
        gsi: Option<u32>,
    },
    /// `EINVAL`: the request was rejected (unknown flag, non-zero pad,
    /// GSI out of range, not an eventfd, ...).
    Invalid {
        /// What was being done.
        op: Op,
        /// The GSI concerned.
        gsi: Option<u32>,
    },
    /// Any other errno.
    Os {
        /// What was being done.
        op: Op,
        /// The GSI concerned.
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
    /// Maps an errno from `op` (on `gsi`, if any) to its variant.
    pub fn from_errno(op: Op, gsi: Option<u32>, errno: Errno) -> Self {
        match errno {
            Errno::BUSY => Error::Busy { op, gsi },
            Errno::BADF => Error::BadFd { op, gsi },
            Errno::INVAL => Error::Invalid { op, gsi },
            errno => Error::Os { op, gsi, errno },
        }
    }

    /// The errno behind this error, if the kernel gave one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::Busy { .. } => Some(Errno::BUSY),
            Error::BadFd { .. } => Some(Errno::BADF),
            Error::Invalid { .. } => Some(Errno::INVAL),
            Error::Os { errno, .. } | Error::Open { errno, .. } => Some(*errno),
            Error::Unsupported { .. }
            | Error::GsisExhausted { .. }
            | Error::AbiVersion { .. }
            | Error::MissingCapability { .. } => None,
        }
    }

    /// The operation that failed, where there is one.
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Busy { op, .. }
            | Error::BadFd { op, .. }
            | Error::Invalid { op, .. }
            | Error::Os { op, .. }
            | Error::Unsupported { op, .. } => Some(*op),
            Error::Open { .. } => Some(Op::Open),
            Error::GsisExhausted { .. } => Some(Op::AllocGsi),
            Error::AbiVersion { .. } | Error::MissingCapability { .. } => None,
        }
    }

    /// The GSI the failed operation concerned, where there is one.
    pub fn gsi(&self) -> Option<u32> {
        match self {
            Error::Busy { gsi, .. }
            | Error::BadFd { gsi, .. }
            | Error::Invalid { gsi, .. }
            | Error::Os { gsi, .. } => *gsi,
            _ => None,
        }
    }

    /// A short tag for tables: the errno's name (`EBUSY`), or the variant's
    /// name for errors without an errno (`unsupported`).
    pub fn tag(&self) -> String {
        match self.errno() {
            Some(e) => {
                errno_name(e).map_or_else(|| format!("errno {}", e.raw_os_error()), str::to_owned)
            }
            None => match self {
                Error::Unsupported { .. } => "unsupported".into(),
                Error::GsisExhausted { .. } => "exhausted".into(),
                Error::AbiVersion { .. } => "abi-version".into(),
                Error::MissingCapability { .. } => "missing-cap".into(),
                _ => "error".into(),
            },
        }
    }
}

/// The symbolic name of the errnos these ABIs produce (`EBUSY`), `None` for
/// others.
pub fn errno_name(e: Errno) -> Option<&'static str> {
    Some(match e {
        Errno::PERM => "EPERM",
        Errno::NOENT => "ENOENT",
        Errno::INTR => "EINTR",
        Errno::IO => "EIO",
        Errno::NXIO => "ENXIO",
        Errno::BADF => "EBADF",
        Errno::AGAIN => "EAGAIN",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::EXIST => "EEXIST",
        Errno::NODEV => "ENODEV",
        Errno::INVAL => "EINVAL",
        Errno::NFILE => "ENFILE",
        Errno::MFILE => "EMFILE",
        Errno::NOTTY => "ENOTTY",
        Errno::NOSPC => "ENOSPC",
        Errno::RANGE => "ERANGE",
        Errno::SPIPE => "ESPIPE",
        Errno::NOSYS => "ENOSYS",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        _ => return None,
    })
}

/// `": GSI n"` or nothing.
struct At(Option<u32>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(g) => write!(f, " (GSI {g})"),
            None => Ok(()),
        }
    }
}

/// `"EBUSY: Device or resource busy (os error 16)"`.
struct ErrnoText(Errno);

impl fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match errno_name(self.0) {
            Some(n) => write!(f, "{n}: {}", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Busy { op, gsi } => write!(
                f,
                "{op}{}: the eventfd is already bound to an irqfd (EBUSY)",
                At(*gsi)
            ),
            Error::BadFd { op, gsi } => {
                write!(f, "{op}{}: not an open file descriptor (EBADF)", At(*gsi))
            }
            Error::Invalid { op, gsi } => write!(f, "{op}{}: invalid argument (EINVAL)", At(*gsi)),
            Error::Os { op, gsi, errno } => write!(f, "{op}{}: {}", At(*gsi), ErrnoText(*errno)),
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
    /// an errno (`Unsupported` for [`Error::Unsupported`]) and the message,
    /// so that `?` into an `io::Result` (in a sample's `main`) says what
    /// failed.
    fn from(e: Error) -> Self {
        match e.errno() {
            Some(errno) => {
                let kind = std::io::Error::from(errno).kind();
                std::io::Error::new(kind, e)
            }
            None => {
                let kind = match e {
                    Error::Unsupported { .. } => std::io::ErrorKind::Unsupported,
                    Error::GsisExhausted { .. } => std::io::ErrorKind::OutOfMemory,
                    _ => std::io::ErrorKind::Other,
                };
                std::io::Error::new(kind, e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_maps_to_variants() {
        let g = Some(5);
        assert_eq!(
            Error::from_errno(Op::Assign, g, Errno::BUSY),
            Error::Busy {
                op: Op::Assign,
                gsi: g
            }
        );
        assert_eq!(
            Error::from_errno(Op::Deassign, g, Errno::BADF),
            Error::BadFd {
                op: Op::Deassign,
                gsi: g
            }
        );
        assert_eq!(
            Error::from_errno(Op::Assign, None, Errno::INVAL),
            Error::Invalid {
                op: Op::Assign,
                gsi: None
            }
        );
        assert_eq!(
            Error::from_errno(Op::SetMsi, g, Errno::NOMEM),
            Error::Os {
                op: Op::SetMsi,
                gsi: g,
                errno: Errno::NOMEM
            }
        );
    }

    #[test]
    fn errno_round_trips() {
        for e in [
            Errno::BUSY,
            Errno::BADF,
            Errno::INVAL,
            Errno::NOMEM,
            Errno::FAULT,
            Errno::NOTTY,
        ] {
            let err = Error::from_errno(Op::Assign, Some(1), e);
            assert_eq!(err.errno(), Some(e));
            assert_eq!(err.op(), Some(Op::Assign));
            assert_eq!(err.gsi(), Some(1));
        }
        let u = Error::Unsupported {
            op: Op::Mask,
            backend: "kvm".into(),
        };
        assert_eq!(u.errno(), None);
        assert_eq!(u.op(), Some(Op::Mask));
        assert_eq!(u.tag(), "unsupported");
        assert_eq!(
            Error::GsisExhausted { capacity: 4 }.op(),
            Some(Op::AllocGsi)
        );
    }

    #[test]
    fn display_text() {
        let s = |e: Error| e.to_string();
        assert_eq!(
            s(Error::from_errno(Op::Assign, Some(5), Errno::BUSY)),
            "assign irqfd (GSI 5): the eventfd is already bound to an irqfd (EBUSY)"
        );
        assert_eq!(
            s(Error::from_errno(Op::Deassign, Some(0), Errno::BADF)),
            "deassign irqfd (GSI 0): not an open file descriptor (EBADF)"
        );
        assert_eq!(
            s(Error::from_errno(Op::CreateIrqchip, None, Errno::INVAL)),
            "KVM_CREATE_IRQCHIP: invalid argument (EINVAL)"
        );
        let os = s(Error::from_errno(Op::SetMsi, Some(30), Errno::NOMEM));
        assert!(os.starts_with("set MSI route (GSI 30): ENOMEM: "), "{os}");
        assert!(os.contains("os error 12"), "{os}");
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
        let open = s(Error::Open {
            path: "/dev/kvm".into(),
            errno: Errno::NOENT,
        });
        assert!(open.starts_with("open /dev/kvm: ENOENT: "), "{open}");
    }

    #[test]
    fn tags() {
        assert_eq!(
            Error::from_errno(Op::Assign, None, Errno::BUSY).tag(),
            "EBUSY"
        );
        assert_eq!(
            Error::from_errno(Op::Assign, None, Errno::NOTTY).tag(),
            "ENOTTY"
        );
        assert_eq!(
            Error::from_errno(Op::Assign, None, Errno::from_raw_os_error(133)).tag(),
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
        assert!(names.iter().all(|n| !n.is_empty()));
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(Op::Ack.to_string(), "ack");
    }

    #[test]
    fn abi_v2_errors() {
        // The errnos the v2 operations document, each to its variant.
        assert_eq!(
            Error::from_errno(Op::AssignResample, Some(3), Errno::BADF).to_string(),
            "assign resample irqfd (GSI 3): not an open file descriptor (EBADF)"
        );
        assert_eq!(
            Error::from_errno(Op::SetMsi, Some(9), Errno::INVAL),
            Error::Invalid {
                op: Op::SetMsi,
                gsi: Some(9)
            }
        );
        assert_eq!(
            Error::from_errno(Op::Ack, Some(2048), Errno::INVAL).tag(),
            "EINVAL"
        );
        let u = Error::Unsupported {
            op: Op::Ack,
            backend: "kvm".into(),
        };
        assert_eq!(u.to_string(), "ack: not supported by the kvm backend");
        assert_eq!((u.errno(), u.gsi(), u.op()), (None, None, Some(Op::Ack)));
        assert_eq!(
            Error::from_errno(Op::Ack, None, Errno::RANGE).tag(),
            "ERANGE"
        );
    }

    #[test]
    fn into_io_error_keeps_errno() {
        let io: std::io::Error = Error::from_errno(Op::Assign, Some(1), Errno::BUSY).into();
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

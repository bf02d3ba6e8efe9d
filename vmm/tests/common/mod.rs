// SPDX-License-Identifier: GPL-2.0
//! What the integration tests share: the backends, opened by kind, and a
//! note for the ones that are not there.

#![allow(dead_code)]

use rust_irqfd_vmm::{Error, IrqFdBackend, KvmBackend, ModuleBackend};

/// A kind of backend, which can be opened any number of times (each a new
/// context or VM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rust,
    C,
    Kvm,
    /// KVM through `KvmBackend::from_vm_fd`, over rust-vmm's kvm-ioctls.
    #[cfg(feature = "kvm-ioctls")]
    KvmIoctls,
}

impl Kind {
    #[cfg(not(feature = "kvm-ioctls"))]
    pub const ALL: &[Kind] = &[Kind::Rust, Kind::C, Kind::Kvm];
    #[cfg(feature = "kvm-ioctls")]
    pub const ALL: &[Kind] = &[Kind::Rust, Kind::C, Kind::Kvm, Kind::KvmIoctls];

    /// Real KVM, through either backend.
    pub fn is_kvm(self) -> bool {
        match self {
            Kind::Rust | Kind::C => false,
            Kind::Kvm => true,
            #[cfg(feature = "kvm-ioctls")]
            Kind::KvmIoctls => true,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Rust => "rust_irqfd",
            Kind::C => "c_irqfd",
            Kind::Kvm => "kvm",
            #[cfg(feature = "kvm-ioctls")]
            Kind::KvmIoctls => "kvm-ioctls",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::Rust => ModuleBackend::RUST_PATH,
            Kind::C => ModuleBackend::C_PATH,
            Kind::Kvm => KvmBackend::PATH,
            #[cfg(feature = "kvm-ioctls")]
            Kind::KvmIoctls => KvmBackend::PATH,
        }
    }

    pub fn open(self) -> Result<Box<dyn IrqFdBackend>, Error> {
        Ok(match self {
            Kind::Rust | Kind::C => Box::new(ModuleBackend::open(self.path())?),
            Kind::Kvm => Box::new(KvmBackend::open(self.path())?),
            #[cfg(feature = "kvm-ioctls")]
            Kind::KvmIoctls => Box::new(kvm_ioctls_backend()?),
        })
    }
}

/// Whether `e` means the backend is not on this machine (its device node
/// cannot be opened), which skips a test. Anything after the open (an ABI
/// version, a capability, a VM or irqchip that cannot be made) fails it.
pub fn absent(e: &Error) -> bool {
    matches!(e, Error::Open { .. })
}

/// Opens a backend of `kind`, or prints why the test skips it; panics if it
/// is there but cannot be set up.
pub fn open_or_skip(kind: Kind, test: &str) -> Option<Box<dyn IrqFdBackend>> {
    match kind.open() {
        Ok(b) => Some(b),
        Err(e) if absent(&e) => {
            println!("{test}: {} skipped: {e}", kind.name());
            None
        }
        Err(e) => panic!("{test}: {}: {e}", kind.name()),
    }
}

/// `KvmBackend::new()`, or a printed note.
pub fn kvm_or_skip(test: &str) -> Option<KvmBackend> {
    match KvmBackend::new() {
        Ok(k) => Some(k),
        Err(e) if absent(&e) => {
            println!("{test}: KVM skipped: {e}");
            None
        }
        Err(e) => panic!("{test}: KVM: {e}"),
    }
}

/// A module context of `kind` (`Rust` or `C`), or a printed note.
pub fn module_or_skip(kind: Kind, test: &str) -> Option<ModuleBackend> {
    match ModuleBackend::open(kind.path()) {
        Ok(m) => Some(m),
        Err(e) if absent(&e) => {
            println!("{test}: {} skipped: {e}", kind.name());
            None
        }
        Err(e) => panic!("{test}: {}: {e}", kind.name()),
    }
}

#[path = "../../examples/support/rust_vmm_vm.rs"]
mod rust_vmm_vm;
#[cfg(feature = "kvm-ioctls")]
pub use rust_vmm_vm::kvm_ioctls_backend;

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
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Rust, Kind::C, Kind::Kvm];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Rust => "rust_irqfd",
            Kind::C => "c_irqfd",
            Kind::Kvm => "kvm",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Kind::Rust => ModuleBackend::RUST_PATH,
            Kind::C => ModuleBackend::C_PATH,
            Kind::Kvm => KvmBackend::PATH,
        }
    }

    pub fn open(self) -> Result<Box<dyn IrqFdBackend>, Error> {
        Ok(match self {
            Kind::Rust | Kind::C => Box::new(ModuleBackend::open(self.path())?),
            Kind::Kvm => Box::new(KvmBackend::open(self.path())?),
        })
    }
}

/// Opens a backend of `kind`, or prints why the test skips it.
pub fn open_or_skip(kind: Kind, test: &str) -> Option<Box<dyn IrqFdBackend>> {
    match kind.open() {
        Ok(b) => Some(b),
        Err(e) => {
            println!("{test}: {} skipped: {e}", kind.name());
            None
        }
    }
}

/// `KvmBackend::new()`, or a printed note.
pub fn kvm_or_skip(test: &str) -> Option<KvmBackend> {
    match KvmBackend::new() {
        Ok(k) => Some(k),
        Err(e) => {
            println!("{test}: KVM skipped: {e}");
            None
        }
    }
}

/// A module context of `kind` (`Rust` or `C`), or a printed note.
pub fn module_or_skip(kind: Kind, test: &str) -> Option<ModuleBackend> {
    match ModuleBackend::open(kind.path()) {
        Ok(m) => Some(m),
        Err(e) => {
            println!("{test}: {} skipped: {e}", kind.name());
            None
        }
    }
}

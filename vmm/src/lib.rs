// SPDX-License-Identifier: GPL-2.0
//! A safe userspace API over irqfds, for VMMs.
//!
//! An irqfd binds an eventfd to an interrupt line (GSI) of an in-kernel
//! interrupt controller: a device signals the eventfd and the kernel injects
//! the interrupt, with no trip through the VMM. This crate wraps the kernel
//! interfaces that do that behind one trait, [`IrqFdBackend`]:
//!
//! * `/dev/rust_irqfd` and `/dev/c_irqfd`, the project's modules
//!   ([`ModuleBackend`]; one backend is one context, the modules' "VM");
//! * real KVM through `/dev/kvm` ([`KvmBackend`]: `KVM_CREATE_VM`,
//!   `KVM_CREATE_IRQCHIP`, `KVM_IRQFD`, `KVM_SET_GSI_ROUTING`), either with
//!   the crate's own ioctls or, with the `kvm-ioctls` feature, over a
//!   rust-vmm `kvm_ioctls::VmFd` (`KvmBackend::from_vm_fd`).
//!
//! The VMM-facing part follows the API proposed for OpenVMM's `virt` crate
//! (`examples/openvmm_adapter.rs` implements OpenVMM's two traits over it):
//! an [`IrqFd`], cheap to clone, hands out [`IrqFdRoute`]s, each a GSI from
//! a fixed table ([`GsiAllocator`], 2048 entries) with an [`EventFd`] bound
//! to it, whose MSI address/data can be set (in place) and cleared, which
//! can be masked and unmasked MSI-X style, with the pending bit readable
//! ([`IrqFdRoute::pending`]) and drainable ([`IrqFdRoute::take_pending`]),
//! the same on every backend. A route's `Drop` unbinds the eventfd and frees
//! the GSI (and never frees a GSI it could not unbind). [`IrqFdLine`]s are
//! level-triggered (resample) irqfds on fixed lines, for legacy INTx: a
//! signal asserts the line until it is acknowledged, which signals the
//! line's resample eventfd. Routes and lines are `'static`, `Send` and
//! `Sync`.
//!
//! The modules speak ABI version 2 (`include/uapi/linux/rust_irqfd.h`):
//! per-GSI routes, a per-GSI mask latch, resample irqfds and
//! `RUST_IRQFD_ACK` ([`IrqFdBackend::ack`]), and delivery records that say
//! which route and kind of injection raised them.
//!
//! Every failure is an [`Error`] that says what failed (the [`Op`] and the
//! GSI) and carries the kernel's errno; no path a caller can reach panics.
//! The raw ABIs are in [`abi`], their layouts and ioctl numbers asserted at
//! compile time; the only `unsafe` code is the crate's private `sys` module:
//! one function per ioctl, and the descriptor glue of the `kvm-ioctls`
//! backend.
//!
//! ```
//! use rust_irqfd_vmm::{IrqFd, ModuleBackend};
//!
//! let Ok(ctx) = ModuleBackend::open_rust() else { return Ok(()) }; // module not loaded
//! let irqfd = IrqFd::new(ctx);
//! let route = irqfd.new_route()?;
//! route.set_msi(0xfee0_0000, 0x41)?;
//! route.event().signal()?;
//! let d = irqfd.backend().wait_deliveries(std::time::Duration::from_secs(5))?;
//! assert_eq!(d.len(), 1);
//! assert_eq!((d[0].gsi, d[0].count, d[0].msi()), (route.gsi(), 1, Some((0xfee0_0000, 0x41))));
//! # Ok::<(), rust_irqfd_vmm::Error>(())
//! ```
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod abi;
mod backend;
mod error;
mod eventfd;
mod gsi;
mod irqfd;
mod kvm;
mod module;
mod sys;

pub use backend::IrqFdBackend;
pub use error::{Errno, Error, Op, Result};
pub use eventfd::EventFd;
pub use gsi::GsiAllocator;
pub use irqfd::{DropErrorHook, IrqFd, IrqFdLine, IrqFdRoute};
pub use kvm::KvmBackend;
pub use module::ModuleBackend;

// SPDX-License-Identifier: GPL-2.0
//! A safe userspace API over irqfds, for VMMs.
//!
//! An irqfd binds an eventfd to an interrupt line (GSI) of an in-kernel
//! interrupt controller: a device signals the eventfd and the kernel injects
//! the interrupt, with no trip through the VMM. This crate wraps the three
//! kernel interfaces that do that behind one trait:
//!
//! * `/dev/rust_irqfd` and `/dev/c_irqfd`, the project's modules
//!   ([`ModuleBackend`]; one backend is one context, the modules' "VM");
//! * real KVM through `/dev/kvm` ([`KvmBackend`]: `KVM_CREATE_VM`,
//!   `KVM_CREATE_IRQCHIP`, `KVM_IRQFD`, `KVM_SET_GSI_ROUTING`).
//!
//! The VMM-facing part follows the API proposed for OpenVMM's `virt` crate:
//! an [`IrqFd`] hands out [`IrqFdRoute`]s, each a GSI from a fixed table
//! ([`GsiAllocator`], 2048 entries) with an [`EventFd`] bound to it, whose
//! MSI address/data can be set (in place), cleared, masked and unmasked
//! (MSI-X style: what fires while masked is delivered once at unmask; on KVM,
//! which has no mask, the route emulates it, see [`MaskKind`]), and whose
//! `Drop` unbinds the eventfd and frees the GSI. [`IrqFdLine`]s are
//! level-triggered (resample) irqfds on fixed lines, for legacy INTx: a
//! signal asserts the line until it is acknowledged, which signals the
//! line's resample eventfd.
//!
//! The modules speak ABI version 2 (`include/uapi/linux/rust_irqfd.h`):
//! per-GSI routes, the mask latch, resample irqfds and `RUST_IRQFD_ACK`
//! ([`IrqFdBackend::ack`]), and delivery records that say which route and
//! kind of injection raised them.
//!
//! Every failure is an [`Error`] that says what failed (the [`Op`] and the
//! GSI) and carries the kernel's errno; no path a caller can reach panics.
//! The raw ABIs are in [`abi`], their layouts and ioctl numbers asserted at
//! compile time; the only `unsafe` code is the crate's private `sys` module,
//! one function per ioctl.
//!
//! ```no_run
//! use rust_irqfd_vmm::{IrqFd, ModuleBackend};
//!
//! let ctx = ModuleBackend::open_rust()?;
//! let irqfd = IrqFd::new(ctx);
//! let route = irqfd.new_route()?;
//! route.event().signal()?;
//! route.set_msi(0xfee0_0000, 0x41)?;
//! route.event().signal()?;
//! for d in irqfd.backend().wait_deliveries(std::time::Duration::from_secs(1))? {
//!     println!("GSI {} fired {} time(s), MSI {:?}", d.gsi, d.count, d.msi());
//! }
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
pub use irqfd::{DropErrorHook, IrqFd, IrqFdLine, IrqFdRoute, MaskKind};
pub use kvm::KvmBackend;
pub use module::ModuleBackend;

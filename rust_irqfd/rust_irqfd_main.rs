// SPDX-License-Identifier: GPL-2.0

//! rust_irqfd: bind an eventfd to an interrupt line, with KVM_IRQFD's semantics.
//!
//! When the eventfd is signalled, the irqfd's wait-queue callback injects into the interrupt
//! sink of its context without a trip through userspace; when the eventfd is closed, the irqfd
//! shuts itself down. This is the design of `virt/kvm/eventfd.c` in Rust: see
//! `Documentation/rust_irqfd.rst` and, for why it is race-free, [`shutdown`].
//!
//! Each open of `/dev/rust_irqfd` is a context (the stand-in for a VM) whose sink is a virtual
//! interrupt controller; `read(2)` on the context returns its deliveries.

mod context;
mod device;
mod eventfd;
mod ffi;
mod fsext;
mod irqchip;
mod irqfd;
mod params;
mod shutdown;
mod sink;
mod uapi;
mod wq;

use kernel::{
    miscdevice::{
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    prelude::*, //
};

use crate::{
    device::IrqfdDevice,
    shutdown::CleanupQueue, //
};

module! {
    type: RustIrqfdModule,
    name: "rust_irqfd",
    authors: ["The rust_irqfd developers"],
    description: "irqfd: eventfd-to-interrupt binding (Rust port of the KVM design)",
    license: "GPL",
    params: {
        nr_gsis: u32 {
            default: 1024,
            description: "Interrupt lines of each context (1..65536)",
        },
        deferred_only: bool {
            default: false,
            description: "Always inject through the work item, never from the wakeup",
        },
    },
}

/// The module: its device, then its cleanup queue.
///
/// Fields drop in declaration order: the device is deregistered first (and, since an open file
/// pins the module, no context exists any more), then the cleanup queue is drained and destroyed.
#[pin_data]
struct RustIrqfdModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<IrqfdDevice>,
    _cleanup: CleanupQueue,
}

impl kernel::InPlaceModule for RustIrqfdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Parameters are checked before anything is created or registered.
            _cleanup: {
                params::check()?;
                CleanupQueue::new()?
            },
            _miscdev <- MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"rust_irqfd",
            }),
        })
    }
}

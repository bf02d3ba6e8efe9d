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

/// In a KUnit case: fails the case unless `$cond` holds, by returning `EINVAL` after logging
/// where. Unlike KUnit's `assert!`, which ends the test thread on the spot, it lets the case drop
/// what it allocated, so a failing case leaks nothing (and kmemleak reports nothing besides it).
#[cfg(CONFIG_KUNIT = "y")]
macro_rules! kunit_check {
    ($cond:expr) => {
        if !$cond {
            ::kernel::pr_err!(
                "KUnit check failed at {}:{}: {}\n",
                file!(),
                line!(),
                stringify!($cond)
            );
            return Err(::kernel::error::code::EINVAL);
        }
    };
}

mod compat;
mod context;
mod device;
mod eventfd;
mod ffi;
mod fsext;
mod irqchip;
mod irqfd;
mod nospec;
mod params;
mod route;
mod seqcount;
mod shutdown;
mod sink;
mod test_hooks;
mod uapi;
mod wq;

use kernel::{
    miscdevice::MiscDeviceOptions,
    prelude::*, //
};

use crate::{
    compat::MiscDeviceRegistration,
    device::IrqfdDevice, //
};

/// The module declaration, with the parameters of every supported release and `$bool_params`
/// (7.2's `module!` has no `bool` parameters: `deferred_only` is declared in C there, `shim.c`,
/// and read through `compat::deferred_only()`).
macro_rules! rust_irqfd_module {
    ($($bool_params:tt)*) => {
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
                max_irqfds: u32 {
                    default: 65536,
                    description: "Most irqfds one context may hold (1..1048576); ENOSPC past it",
                },
                $($bool_params)*
            },
        }
    };
}

#[cfg(not(kernel_before_7_3))]
rust_irqfd_module! {
    deferred_only: bool {
        default: false,
        description: "Always inject through the work item, never from the wakeup",
    },
}

#[cfg(kernel_before_7_3)]
rust_irqfd_module! {}

/// The module: its device. Each open of the device is a context, which owns its irqfds and the
/// ordered queue their shutdowns run on; an open file pins the module, so none is left when the
/// device is deregistered.
#[pin_data]
struct RustIrqfdModule {
    #[pin]
    _miscdev: MiscDeviceRegistration<IrqfdDevice>,
}

impl kernel::InPlaceModule for RustIrqfdModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // Parameters are checked before the device is registered.
            _miscdev <- {
                params::check()?;
                MiscDeviceRegistration::register(MiscDeviceOptions {
                    name: c"rust_irqfd",
                })
            },
        })
    }
}

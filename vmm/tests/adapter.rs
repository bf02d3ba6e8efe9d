// SPDX-License-Identifier: GPL-2.0
//! OpenVMM's `IrqFd`/`IrqFdRoute` traits over the crate
//! (`examples/openvmm_adapter.rs`), on every backend that can be opened
//! here: the MSI-X story through the traits alone, then the kernel's side
//! checked (delivery records on the modules, routes and bindings on KVM).

#[path = "../examples/openvmm_adapter.rs"]
mod adapter;

use adapter::Opened;

/// Skips a backend whose device node cannot be opened; fails on anything
/// else.
fn run(name: &str) {
    match Opened::open(name) {
        Ok(backend) => {
            if let Err(why) = backend.check() {
                panic!("{name}: {why}");
            }
        }
        Err(e @ rust_irqfd_vmm::Error::Open { .. }) => println!("{name} skipped: {e}"),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn openvmm_traits_over_rust_irqfd() {
    run("rust_irqfd");
}

#[test]
fn openvmm_traits_over_c_irqfd() {
    run("c_irqfd");
}

#[test]
fn openvmm_traits_over_kvm() {
    run("kvm");
}

#[cfg(feature = "kvm-ioctls")]
#[test]
fn openvmm_traits_over_kvm_ioctls() {
    run("kvm-ioctls");
}

// SPDX-License-Identifier: GPL-2.0
//! The rust_irqfd ABI: the workspace's one mirror of
//! `include/uapi/linux/rust_irqfd.h`, the `rust_irqfd_abi` crate (its
//! layouts asserted at compile time, checked against the header by its unit
//! test), plus what the selftest sends that is not that ABI.

pub use rust_irqfd_abi::*;

/// `KVM_IRQFD` (`_IOW(KVMIO, 0x76, struct kvm_irqfd)`): a command these
/// devices must not answer although it has the same layout.
pub const KVM_IRQFD: u32 = iow(0xAE, 0x76, core::mem::size_of::<RustIrqfd>());

const _: () = {
    assert!(KVM_IRQFD == 0x4020_AE76);
    // The same number as RUST_IRQFD_IRQFD but for the type byte.
    assert!(KVM_IRQFD & !0xff00 == RUST_IRQFD_IRQFD & !0xff00);
};

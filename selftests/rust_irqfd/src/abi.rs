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

/// KVM's side of the ABI, for the KVM target (`/dev/kvm`): the VM the
/// target's contexts are, its routing table, and the vCPU whose local APIC
/// shows what an irqfd injected.
pub mod kvm {
    use super::{io, ior, iow};

    /// `KVM_CREATE_VM` (`_IO(KVMIO, 0x01)`), machine type 0.
    pub const KVM_CREATE_VM: u32 = io(0xAE, 0x01);
    /// `KVM_CREATE_IRQCHIP` (`_IO(KVMIO, 0x60)`): the in-kernel PICs and
    /// IOAPIC, and the default routing of GSIs 0 .. 24 to their pins.
    pub const KVM_CREATE_IRQCHIP: u32 = io(0xAE, 0x60);
    /// `KVM_CREATE_VCPU` (`_IO(KVMIO, 0x41)`), the vCPU id as argument.
    pub const KVM_CREATE_VCPU: u32 = io(0xAE, 0x41);
    /// `KVM_SET_GSI_ROUTING` (`_IOW(KVMIO, 0x6a, struct kvm_irq_routing)`).
    pub const KVM_SET_GSI_ROUTING: u32 = iow(0xAE, 0x6a, 8);
    /// `KVM_GET_LAPIC` (`_IOR(KVMIO, 0x8e, struct kvm_lapic_state)`).
    pub const KVM_GET_LAPIC: u32 = ior(0xAE, 0x8e, LAPIC_SIZE);
    /// `KVM_SET_LAPIC` (`_IOW(KVMIO, 0x8f, struct kvm_lapic_state)`).
    pub const KVM_SET_LAPIC: u32 = iow(0xAE, 0x8f, LAPIC_SIZE);
    /// `KVM_IRQ_ROUTING_MSI`: a routing entry that sends an MSI.
    pub const KVM_IRQ_ROUTING_MSI: u32 = 2;
    /// The GSIs a VM with the in-kernel irqchip routes without
    /// `KVM_SET_GSI_ROUTING`: the IOAPIC's 24 pins.
    pub const NR_DEFAULT_GSIS: u32 = 24;

    /// `struct kvm_lapic_state`: the local APIC's 1 KiB register page.
    pub const LAPIC_SIZE: usize = 1024;
    /// Offset of the spurious-interrupt vector register (bit 8: APIC
    /// software enable) in the register page.
    pub const APIC_SPIV: usize = 0xf0;
    /// Offset of the interrupt request register (eight 32-bit words, 16
    /// bytes apart: vector `v` is bit `v % 32` of word `v / 32`).
    pub const APIC_IRR: usize = 0x200;

    /// `struct kvm_irq_routing_entry` (48 bytes) for an MSI route: `gsi`,
    /// `type`, `flags`, `pad`, then the `msi` member of the union
    /// (`address_lo`, `address_hi`, `data`, `devid`) and its padding.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct MsiRoutingEntry {
        pub gsi: u32,
        pub kind: u32,
        pub flags: u32,
        pub pad: u32,
        pub address_lo: u32,
        pub address_hi: u32,
        pub data: u32,
        pub devid: u32,
        pub union_pad: [u32; 4],
    }

    /// `struct kvm_irq_routing` with room for one MSI route per default GSI.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct MsiRouting {
        pub nr: u32,
        pub flags: u32,
        pub entries: [MsiRoutingEntry; NR_DEFAULT_GSIS as usize],
    }

    const _: () = {
        assert!(core::mem::size_of::<MsiRoutingEntry>() == 48);
        assert!(KVM_CREATE_VM == 0xAE01 && KVM_CREATE_VCPU == 0xAE41);
        assert!(KVM_SET_GSI_ROUTING == 0x4008_AE6A);
        assert!(KVM_GET_LAPIC == 0x8400_AE8E);
        assert!(KVM_SET_LAPIC == 0x4400_AE8F);
    };
}

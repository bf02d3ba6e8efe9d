// SPDX-License-Identifier: GPL-2.0
//! The two kernel ABIs this crate speaks, as plain `#[repr(C)]` data.
//!
//! * [`module`]: `include/uapi/linux/rust_irqfd.h`, spoken by `/dev/rust_irqfd`
//!   and `/dev/c_irqfd`, re-exported from the `rust_irqfd_abi` crate (the
//!   project's one mirror of the header, which the kselftest uses too) under
//!   this crate's names, with the ioctl numbers as rustix [`Opcode`]s.
//! * [`kvm`]: the part of `<linux/kvm.h>` needed to create a VM with an
//!   in-kernel irqchip, bind irqfds and program GSI routing.
//!
//! Every layout and ioctl number is pinned by compile-time asserts (here and
//! in `rust_irqfd_abi`) and by unit tests (`rust_irqfd_abi`'s also read the
//! project's header). The structs are plain data: building one is safe; only
//! handing one to the kernel (in the crate's private `sys` module) is not.

use core::mem::{offset_of, size_of};

use rustix::ioctl::{opcode, Opcode};

/// `struct rust_irqfd`, which has the layout and meaning of `struct
/// kvm_irqfd`: the argument of `RUST_IRQFD_IRQFD` and of `KVM_IRQFD`.
pub use rust_irqfd_abi::RustIrqfd as RawIrqfd;

/// The rust_irqfd module ABI (`include/uapi/linux/rust_irqfd.h`), from
/// `rust_irqfd_abi`.
pub mod module {
    use rustix::ioctl::Opcode;

    pub use rust_irqfd_abi::{
        RustIrqfdAck as Ack, RustIrqfdBatch as Batch, RustIrqfdDelivery as Delivery,
        RustIrqfdGsiStats as GsiStats, RustIrqfdInfo as Info, RustIrqfdMask as Mask,
        RustIrqfdRoute as Route, DELIVERY_LEVEL, DELIVERY_MSI, FLAG_DEASSIGN, FLAG_RESAMPLE,
        INFO_DEFERRED_ONLY, MASK_MASKED, ROUTE_MSI, RUST_IRQFD_ABI_VERSION as ABI_VERSION,
        RUST_IRQFD_BATCH_MAX as BATCH_MAX,
    };

    /// `RUST_IRQFD_MAGIC`: the ioctl type byte.
    pub const MAGIC: u8 = rust_irqfd_abi::RUST_IRQFD_MAGIC as u8;

    /// `RUST_IRQFD_IRQFD`: `_IOW(0xB9, 0x76, struct rust_irqfd)`.
    pub const IOCTL_IRQFD: Opcode = rust_irqfd_abi::RUST_IRQFD_IRQFD as Opcode;
    /// `RUST_IRQFD_IRQFD_BATCH`: `_IOWR(0xB9, 0x02, struct rust_irqfd_batch)`.
    pub const IOCTL_IRQFD_BATCH: Opcode = rust_irqfd_abi::RUST_IRQFD_IRQFD_BATCH as Opcode;
    /// `RUST_IRQFD_GET_INFO`: `_IOR(0xB9, 0x00, struct rust_irqfd_info)`.
    pub const IOCTL_GET_INFO: Opcode = rust_irqfd_abi::RUST_IRQFD_GET_INFO as Opcode;
    /// `RUST_IRQFD_GSI_STATS`: `_IOWR(0xB9, 0x01, struct rust_irqfd_gsi_stats)`.
    pub const IOCTL_GSI_STATS: Opcode = rust_irqfd_abi::RUST_IRQFD_GSI_STATS as Opcode;
    /// `RUST_IRQFD_SET_ROUTE`: `_IOW(0xB9, 0x03, struct rust_irqfd_route)`.
    pub const IOCTL_SET_ROUTE: Opcode = rust_irqfd_abi::RUST_IRQFD_SET_ROUTE as Opcode;
    /// `RUST_IRQFD_SET_MASK`: `_IOW(0xB9, 0x04, struct rust_irqfd_mask)`.
    pub const IOCTL_SET_MASK: Opcode = rust_irqfd_abi::RUST_IRQFD_SET_MASK as Opcode;
    /// `RUST_IRQFD_ACK`: `_IOW(0xB9, 0x05, struct rust_irqfd_ack)`; returns
    /// the number of resamplefds signalled.
    pub const IOCTL_ACK: Opcode = rust_irqfd_abi::RUST_IRQFD_ACK as Opcode;

    // The numbers survive the conversion to rustix's opcode type.
    const _: () = {
        assert!(rust_irqfd_abi::RUST_IRQFD_MAGIC == MAGIC as u32);
        assert!(IOCTL_IRQFD as u64 == 0x4020_B976);
        assert!(IOCTL_IRQFD_BATCH as u64 == 0xC018_B902);
        assert!(IOCTL_GET_INFO as u64 == 0x8020_B900);
        assert!(IOCTL_GSI_STATS as u64 == 0xC048_B901);
        assert!(IOCTL_SET_ROUTE as u64 == 0x4018_B903);
        assert!(IOCTL_SET_MASK as u64 == 0x4008_B904);
        assert!(IOCTL_ACK as u64 == 0x4008_B905);
    };
}

/// The part of the KVM ABI (`<linux/kvm.h>`, x86) this crate uses.
pub mod kvm {
    use super::*;

    /// `KVMIO`: the ioctl type byte.
    pub const KVMIO: u8 = 0xAE;
    /// `KVM_API_VERSION`: what `KVM_GET_API_VERSION` must return.
    pub const API_VERSION: i32 = 12;
    /// `KVM_CAP_IRQ_ROUTING`: `KVM_CHECK_EXTENSION` returns the routing
    /// table's maximum size (`KVM_MAX_IRQ_ROUTES`).
    pub const CAP_IRQ_ROUTING: usize = 25;
    /// `KVM_CAP_IRQFD`.
    pub const CAP_IRQFD: usize = 32;
    /// `KVM_IRQFD_FLAG_DEASSIGN` (same bit as the module's).
    pub const IRQFD_FLAG_DEASSIGN: u32 = 1 << 0;
    /// `KVM_IRQFD_FLAG_RESAMPLE` (same bit as the module's).
    pub const IRQFD_FLAG_RESAMPLE: u32 = 1 << 1;
    /// `KVM_IRQ_ROUTING_IRQCHIP`: a route to a pin of an irqchip.
    pub const IRQ_ROUTING_IRQCHIP: u32 = 1;
    /// `KVM_IRQ_ROUTING_MSI`: a route that sends an MSI.
    pub const IRQ_ROUTING_MSI: u32 = 2;
    /// `KVM_IRQCHIP_PIC_MASTER`.
    pub const IRQCHIP_PIC_MASTER: u32 = 0;
    /// `KVM_IRQCHIP_PIC_SLAVE`.
    pub const IRQCHIP_PIC_SLAVE: u32 = 1;
    /// `KVM_IRQCHIP_IOAPIC`.
    pub const IRQCHIP_IOAPIC: u32 = 2;
    /// GSIs `0 .. 24` carry the in-kernel irqchip's default routes (the
    /// IOAPIC's 24 pins, the PICs' 16) after `KVM_CREATE_IRQCHIP`.
    pub const NR_DEFAULT_GSIS: u32 = 24;

    /// `struct kvm_irq_routing_entry` (48 bytes). The union `u` is kept as
    /// eight words: `irqchip = {irqchip, pin}` in words 0-1, `msi =
    /// {address_lo, address_hi, data, pad}` in words 0-3.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RoutingEntry {
        /// The GSI this entry routes.
        pub gsi: u32,
        /// `IRQ_ROUTING_*`.
        pub kind: u32,
        /// `KVM_MSI_VALID_DEVID` (not used on x86).
        pub flags: u32,
        /// Zero.
        pub pad: u32,
        /// The union, as words.
        pub u: [u32; 8],
    }

    impl RoutingEntry {
        /// A route from `gsi` to `pin` of `irqchip`.
        pub const fn irqchip(gsi: u32, irqchip: u32, pin: u32) -> Self {
            Self {
                gsi,
                kind: IRQ_ROUTING_IRQCHIP,
                flags: 0,
                pad: 0,
                u: [irqchip, pin, 0, 0, 0, 0, 0, 0],
            }
        }

        /// A route from `gsi` to the MSI `address`/`data`.
        pub const fn msi(gsi: u32, address: u64, data: u32) -> Self {
            Self {
                gsi,
                kind: IRQ_ROUTING_MSI,
                flags: 0,
                pad: 0,
                u: [address as u32, (address >> 32) as u32, data, 0, 0, 0, 0, 0],
            }
        }

        /// The MSI `(address, data)` of an MSI route, `None` for other kinds.
        pub const fn as_msi(&self) -> Option<(u64, u32)> {
            if self.kind == IRQ_ROUTING_MSI {
                Some(((self.u[1] as u64) << 32 | self.u[0] as u64, self.u[2]))
            } else {
                None
            }
        }

        /// The entry as the kernel reads it: twelve native-endian words.
        pub const fn to_words(&self) -> [u32; 12] {
            let u = self.u;
            [
                self.gsi, self.kind, self.flags, self.pad, u[0], u[1], u[2], u[3], u[4], u[5],
                u[6], u[7],
            ]
        }
    }

    /// The routes the kernel installs with `KVM_CREATE_IRQCHIP` on x86
    /// (`default_routing` in `arch/x86/kvm/irq_comm.c`): GSI `n` to IOAPIC
    /// pin `n` for `n < 24`, and to PIC pin `n % 8` for `n < 16`.
    /// `KVM_SET_GSI_ROUTING` replaces the whole table, so a userspace table
    /// must start from these to keep the legacy lines working.
    pub fn default_routes() -> Vec<RoutingEntry> {
        let mut v = Vec::with_capacity(40);
        for gsi in 0..NR_DEFAULT_GSIS {
            v.push(RoutingEntry::irqchip(gsi, IRQCHIP_IOAPIC, gsi));
            if gsi < 16 {
                let pic = if gsi < 8 {
                    IRQCHIP_PIC_MASTER
                } else {
                    IRQCHIP_PIC_SLAVE
                };
                v.push(RoutingEntry::irqchip(gsi, pic, gsi % 8));
            }
        }
        v
    }

    /// `struct kvm_irq_routing` without its flexible array: `{nr, flags}`.
    /// Only its size (8) enters the ioctl number; the entries follow it in
    /// the same buffer.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RoutingHeader {
        /// Number of entries that follow.
        pub nr: u32,
        /// Zero.
        pub flags: u32,
    }

    /// `struct kvm_irqchip` (520 bytes): the argument of `KVM_GET_IRQCHIP`,
    /// one in-kernel interrupt controller's state. The union `chip` (512
    /// bytes) is kept as words; [`ioapic_irr`](Self::ioapic_irr) decodes the
    /// one field this crate reads.
    #[repr(C, align(8))]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Irqchip {
        /// `KVM_IRQCHIP_*`: which controller.
        pub chip_id: u32,
        /// Zero.
        pub pad: u32,
        /// The union: `struct kvm_pic_state` or `struct kvm_ioapic_state`.
        pub chip: [u32; 128],
    }

    impl Irqchip {
        /// A request for controller `chip_id`'s state, zeroed.
        pub const fn new(chip_id: u32) -> Self {
            Self {
                chip_id,
                pad: 0,
                chip: [0; 128],
            }
        }

        /// For [`IRQCHIP_IOAPIC`]: `struct kvm_ioapic_state`'s `irr`, bit
        /// `n` set while IOAPIC pin `n`'s input is asserted (for an edge
        /// pin, until it is delivered). `None` for other chips.
        pub const fn ioapic_irr(&self) -> Option<u32> {
            // base_address (u64) at 0, ioregsel at 8, id at 12, irr at 16.
            if self.chip_id == IRQCHIP_IOAPIC {
                Some(self.chip[4])
            } else {
                None
            }
        }
    }

    impl Default for Irqchip {
        fn default() -> Self {
            Self::new(0)
        }
    }

    /// `KVM_GET_API_VERSION`: `_IO(KVMIO, 0x00)`.
    pub const IOCTL_GET_API_VERSION: Opcode = opcode::none(KVMIO, 0x00);
    /// `KVM_CREATE_VM`: `_IO(KVMIO, 0x01)`, argument the machine type; returns
    /// the VM descriptor.
    pub const IOCTL_CREATE_VM: Opcode = opcode::none(KVMIO, 0x01);
    /// `KVM_CHECK_EXTENSION`: `_IO(KVMIO, 0x03)`, argument a `KVM_CAP_*`.
    pub const IOCTL_CHECK_EXTENSION: Opcode = opcode::none(KVMIO, 0x03);
    /// `KVM_CREATE_IRQCHIP`: `_IO(KVMIO, 0x60)`.
    pub const IOCTL_CREATE_IRQCHIP: Opcode = opcode::none(KVMIO, 0x60);
    /// `KVM_SET_GSI_ROUTING`: `_IOW(KVMIO, 0x6a, struct kvm_irq_routing)`.
    pub const IOCTL_SET_GSI_ROUTING: Opcode = opcode::write::<RoutingHeader>(KVMIO, 0x6a);
    /// `KVM_IRQFD`: `_IOW(KVMIO, 0x76, struct kvm_irqfd)`.
    pub const IOCTL_IRQFD: Opcode = opcode::write::<RawIrqfd>(KVMIO, 0x76);
    /// `KVM_GET_IRQCHIP`: `_IOWR(KVMIO, 0x62, struct kvm_irqchip)`.
    pub const IOCTL_GET_IRQCHIP: Opcode = opcode::read_write::<Irqchip>(KVMIO, 0x62);

    const _: () = {
        assert!(size_of::<RoutingHeader>() == 8);
        assert!(size_of::<RoutingEntry>() == 48);
        assert!(core::mem::align_of::<RoutingEntry>() == 8);
        assert!(offset_of!(RoutingEntry, u) == 16);
        assert!(size_of::<Irqchip>() == 520);
        assert!(offset_of!(Irqchip, chip) == 8);

        assert!(IOCTL_GET_API_VERSION as u64 == 0xAE00);
        assert!(IOCTL_CREATE_VM as u64 == 0xAE01);
        assert!(IOCTL_CHECK_EXTENSION as u64 == 0xAE03);
        assert!(IOCTL_CREATE_IRQCHIP as u64 == 0xAE60);
        assert!(IOCTL_SET_GSI_ROUTING as u64 == 0x4008_AE6A);
        assert!(IOCTL_IRQFD as u64 == 0x4020_AE76);
        assert!(IOCTL_GET_IRQCHIP as u64 == 0xC208_AE62);
        // The two ABIs' irqfd commands differ only in the type byte.
        assert!(IOCTL_IRQFD as u64 & !0xff00 == module::IOCTL_IRQFD as u64 & !0xff00);
        assert!(IRQFD_FLAG_DEASSIGN == module::FLAG_DEASSIGN);
        assert!(IRQFD_FLAG_RESAMPLE == module::FLAG_RESAMPLE);
    };
}

#[cfg(test)]
mod tests {
    use super::kvm::{Irqchip, RoutingEntry};
    use super::*;

    #[test]
    fn kvm_ioctl_numbers() {
        assert_eq!(kvm::IOCTL_GET_API_VERSION as u64, 0xae00);
        assert_eq!(kvm::IOCTL_CREATE_VM as u64, 0xae01);
        assert_eq!(kvm::IOCTL_CHECK_EXTENSION as u64, 0xae03);
        assert_eq!(kvm::IOCTL_CREATE_IRQCHIP as u64, 0xae60);
        assert_eq!(kvm::IOCTL_SET_GSI_ROUTING as u64, 0x4008_ae6a);
        assert_eq!(kvm::IOCTL_IRQFD as u64, 0x4020_ae76);
        assert_eq!(kvm::IOCTL_GET_IRQCHIP as u64, 0xc208_ae62);
        assert_eq!(size_of::<RoutingEntry>(), 48);
        assert_eq!(size_of::<Irqchip>(), 520);
    }

    #[test]
    fn irqchip_irr() {
        let mut c = Irqchip::new(kvm::IRQCHIP_IOAPIC);
        c.chip[4] = 1 << 7;
        assert_eq!(c.ioapic_irr(), Some(0x80));
        c.chip_id = kvm::IRQCHIP_PIC_MASTER;
        assert_eq!(c.ioapic_irr(), None);
        assert_eq!(Irqchip::default(), Irqchip::new(0));
    }

    #[test]
    fn msi_entry_words() {
        let e = RoutingEntry::msi(40, 0x1_fee0_1000, 0x4031);
        assert_eq!(e.as_msi(), Some((0x1_fee0_1000, 0x4031)));
        let w = e.to_words();
        assert_eq!(
            &w[..7],
            &[40, kvm::IRQ_ROUTING_MSI, 0, 0, 0xfee0_1000, 1, 0x4031]
        );
        assert_eq!(
            RoutingEntry::irqchip(3, kvm::IRQCHIP_IOAPIC, 3).as_msi(),
            None
        );
    }

    #[test]
    fn default_routes_match_the_kernel() {
        let r = kvm::default_routes();
        // 24 IOAPIC pins plus 16 PIC pins.
        assert_eq!(r.len(), 40);
        assert!(r.iter().all(|e| e.kind == kvm::IRQ_ROUTING_IRQCHIP));
        assert!(r.contains(&RoutingEntry::irqchip(9, kvm::IRQCHIP_PIC_SLAVE, 1)));
        assert!(r.contains(&RoutingEntry::irqchip(23, kvm::IRQCHIP_IOAPIC, 23)));
        assert!(!r.iter().any(|e| e.gsi >= kvm::NR_DEFAULT_GSIS));
    }
}

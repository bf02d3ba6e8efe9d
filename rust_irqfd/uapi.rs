// SPDX-License-Identifier: GPL-2.0

//! The userspace ABI, mirrored from the C header.
//!
//! C header: [`include/uapi/linux/rust_irqfd.h`](../include/uapi/linux/rust_irqfd.h)
//!
//! The structs are plain `#[repr(C)]` integers without padding; the asserts at the bottom pin
//! their sizes and offsets to the header's.

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    ioctl::{
        _IOR,
        _IOW,
        _IOWR, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    }, //
};

/// `RUST_IRQFD_MAGIC`, unassigned in `ioctl-number.rst`.
const MAGIC: u32 = 0xB9;

/// `RUST_IRQFD_ABI_VERSION`.
pub(crate) const ABI_VERSION: u32 = 2;

/// `struct rust_irqfd`, the same layout as `struct kvm_irqfd`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct IrqfdArgs {
    pub(crate) fd: u32,
    pub(crate) gsi: u32,
    pub(crate) flags: u32,
    pub(crate) resamplefd: u32,
    pub(crate) pad: [u8; 16],
}

/// `RUST_IRQFD_FLAG_DEASSIGN`.
pub(crate) const FLAG_DEASSIGN: u32 = 1 << 0;
/// `RUST_IRQFD_FLAG_RESAMPLE`.
pub(crate) const FLAG_RESAMPLE: u32 = 1 << 1;

/// `RUST_IRQFD_IRQFD`.
pub(crate) const IOCTL_IRQFD: u32 = _IOW::<IrqfdArgs>(MAGIC, 0x76);

/// `struct rust_irqfd_batch`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Batch {
    pub(crate) entries: u64,
    pub(crate) nr: u32,
    pub(crate) flags: u32,
    pub(crate) error_index: u32,
    pub(crate) pad: u32,
}

/// `RUST_IRQFD_BATCH_MAX`.
pub(crate) const BATCH_MAX: u32 = 4096;

/// `RUST_IRQFD_IRQFD_BATCH`.
pub(crate) const IOCTL_IRQFD_BATCH: u32 = _IOWR::<Batch>(MAGIC, 0x02);

/// `struct rust_irqfd_info`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Info {
    pub(crate) version: u32,
    pub(crate) nr_gsis: u32,
    pub(crate) flags: u32,
    pub(crate) nr_irqfds: u32,
    pub(crate) shutdowns: u64,
    pub(crate) max_irqfds: u32,
    pub(crate) reserved: [u8; 4],
}

/// `RUST_IRQFD_INFO_DEFERRED_ONLY`.
pub(crate) const INFO_DEFERRED_ONLY: u32 = 1 << 0;

/// `RUST_IRQFD_INFO_COUNTS_SIGNALS`: this module injects every signal once, deferred ones too.
pub(crate) const INFO_COUNTS_SIGNALS: u32 = 1 << 1;

/// `RUST_IRQFD_GET_INFO`.
pub(crate) const IOCTL_GET_INFO: u32 = _IOR::<Info>(MAGIC, 0x00);

/// `struct rust_irqfd_gsi_stats`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct GsiStats {
    pub(crate) gsi: u32,
    pub(crate) pad: u32,
    pub(crate) injected: u64,
    pub(crate) raised: u64,
    pub(crate) coalesced: u64,
    pub(crate) delivered: u64,
    pub(crate) pending: u64,
    pub(crate) latched: u64,
    pub(crate) acks: u64,
    pub(crate) masked: u32,
    pub(crate) asserted: u32,
}

/// `RUST_IRQFD_GSI_STATS`.
pub(crate) const IOCTL_GSI_STATS: u32 = _IOWR::<GsiStats>(MAGIC, 0x01);

/// `struct rust_irqfd_delivery`, the record `read(2)` returns.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Delivery {
    pub(crate) seq: u64,
    pub(crate) gsi: u32,
    pub(crate) flags: u32,
    pub(crate) count: u64,
    pub(crate) msi_addr: u64,
    pub(crate) msi_data: u32,
    pub(crate) pad: u32,
}

/// `RUST_IRQFD_DELIVERY_MSI`: the record carries an MSI route.
pub(crate) const DELIVERY_MSI: u32 = 1 << 0;
/// `RUST_IRQFD_DELIVERY_LEVEL`: raised by a level (resample) injection.
pub(crate) const DELIVERY_LEVEL: u32 = 1 << 1;

/// `struct rust_irqfd_route`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct RouteArgs {
    pub(crate) gsi: u32,
    pub(crate) flags: u32,
    pub(crate) msi_addr: u64,
    pub(crate) msi_data: u32,
    pub(crate) pad: u32,
}

/// `RUST_IRQFD_ROUTE_MSI`.
pub(crate) const ROUTE_MSI: u32 = 1 << 0;

/// `RUST_IRQFD_SET_ROUTE`.
pub(crate) const IOCTL_SET_ROUTE: u32 = _IOW::<RouteArgs>(MAGIC, 0x03);

/// `struct rust_irqfd_mask`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct MaskArgs {
    pub(crate) gsi: u32,
    pub(crate) flags: u32,
}

/// `RUST_IRQFD_MASK_MASKED`.
pub(crate) const MASK_MASKED: u32 = 1 << 0;

/// `RUST_IRQFD_SET_MASK`.
pub(crate) const IOCTL_SET_MASK: u32 = _IOW::<MaskArgs>(MAGIC, 0x04);

/// `struct rust_irqfd_ack`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct AckArgs {
    pub(crate) gsi: u32,
    pub(crate) pad: u32,
}

/// `RUST_IRQFD_ACK`.
pub(crate) const IOCTL_ACK: u32 = _IOW::<AckArgs>(MAGIC, 0x05);

// SAFETY: `RouteArgs` is `repr(C)`, made of integers only, without padding (asserted below): any
// bit pattern is a valid value.
unsafe impl FromBytes for RouteArgs {}

// SAFETY: `MaskArgs` is `repr(C)`, made of integers only, without padding (asserted below).
unsafe impl FromBytes for MaskArgs {}

// SAFETY: `AckArgs` is `repr(C)`, made of integers only, without padding (asserted below).
unsafe impl FromBytes for AckArgs {}

// SAFETY: `IrqfdArgs` is `repr(C)`, made of integers only and has no padding (asserted below),
// so every bit pattern is a valid value.
unsafe impl FromBytes for IrqfdArgs {}

// SAFETY: `Batch` is `repr(C)`, made of integers only, without padding (asserted below): any
// bit pattern is a valid value.
unsafe impl FromBytes for Batch {}

// SAFETY: `Batch` is `repr(C)`, made of integers only and has no padding (asserted below), so
// all its bytes are initialised.
unsafe impl AsBytes for Batch {}

// SAFETY: `Info` is `repr(C)`, made of integers only and has no padding (asserted below).
unsafe impl AsBytes for Info {}

// SAFETY: `GsiStats` is `repr(C)`, made of integers only and has no padding (asserted below).
unsafe impl FromBytes for GsiStats {}

// SAFETY: `GsiStats` is `repr(C)`, made of integers only and has no padding (asserted below), so
// all its bytes are initialised.
unsafe impl AsBytes for GsiStats {}

// SAFETY: `Delivery` is `repr(C)`, made of integers only and has no padding (asserted below).
unsafe impl AsBytes for Delivery {}

const _: () = {
    assert!(size_of::<IrqfdArgs>() == 32);
    assert!(offset_of!(IrqfdArgs, flags) == 8);
    assert!(offset_of!(IrqfdArgs, pad) == 16);
    assert!(size_of::<Batch>() == 24);
    assert!(offset_of!(Batch, error_index) == 16);
    assert!(size_of::<Info>() == 32);
    assert!(offset_of!(Info, nr_irqfds) == 12);
    assert!(offset_of!(Info, shutdowns) == 16);
    assert!(offset_of!(Info, max_irqfds) == 24);
    assert!(size_of::<GsiStats>() == 72);
    assert!(offset_of!(GsiStats, injected) == 8);
    assert!(offset_of!(GsiStats, pending) == 40);
    assert!(offset_of!(GsiStats, acks) == 56);
    assert!(offset_of!(GsiStats, asserted) == 68);
    assert!(size_of::<RouteArgs>() == 24);
    assert!(offset_of!(RouteArgs, msi_addr) == 8);
    assert!(offset_of!(RouteArgs, pad) == 20);
    assert!(size_of::<MaskArgs>() == 8);
    assert!(size_of::<AckArgs>() == 8);
    assert!(size_of::<Delivery>() == 40);
    assert!(offset_of!(Delivery, count) == 16);
    assert!(offset_of!(Delivery, msi_data) == 32);
    // The ioctl numbers of the header, as computed by the C macros on x86-64.
    assert!(IOCTL_IRQFD == 0x4020_b976);
    assert!(IOCTL_GET_INFO == 0x8020_b900);
    assert!(IOCTL_GSI_STATS == 0xc048_b901);
    assert!(IOCTL_SET_ROUTE == 0x4018_b903);
    assert!(IOCTL_SET_MASK == 0x4008_b904);
    assert!(IOCTL_ACK == 0x4008_b905);
    assert!(IOCTL_IRQFD_BATCH == 0xc018_b902);
};

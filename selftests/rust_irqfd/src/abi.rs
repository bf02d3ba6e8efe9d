// SPDX-License-Identifier: GPL-2.0
//! The rust_irqfd ABI, mirrored from `include/uapi/linux/rust_irqfd.h`.
//!
//! Every struct is `#[repr(C)]` with the header's field order; the layout is
//! pinned by compile-time asserts below and by host unit tests that read the
//! header itself (see `tests` at the end of this file).

use std::mem::{offset_of, size_of};

/// `RUST_IRQFD_MAGIC`: the ioctl type byte.
pub const RUST_IRQFD_MAGIC: u32 = 0xB9;
/// `RUST_IRQFD_ABI_VERSION`: what `RUST_IRQFD_GET_INFO` reports.
pub const RUST_IRQFD_ABI_VERSION: u32 = 2;

/// `RUST_IRQFD_FLAG_DEASSIGN`.
pub const FLAG_DEASSIGN: u32 = 1 << 0;
/// `RUST_IRQFD_FLAG_RESAMPLE`.
pub const FLAG_RESAMPLE: u32 = 1 << 1;
/// `RUST_IRQFD_INFO_DEFERRED_ONLY`.
pub const INFO_DEFERRED_ONLY: u32 = 1 << 0;
/// `RUST_IRQFD_DELIVERY_MSI`: the record was raised with an MSI route.
pub const DELIVERY_MSI: u32 = 1 << 0;
/// `RUST_IRQFD_DELIVERY_LEVEL`: the record was raised by a resample irqfd.
pub const DELIVERY_LEVEL: u32 = 1 << 1;
/// `RUST_IRQFD_ROUTE_MSI`: `SET_ROUTE` sets a route (0 clears it).
pub const ROUTE_MSI: u32 = 1 << 0;
/// `RUST_IRQFD_MASK_MASKED`: `SET_MASK` masks (0 unmasks).
pub const MASK_MASKED: u32 = 1 << 0;

/// `struct rust_irqfd` (same layout as `struct kvm_irqfd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfd {
    pub fd: u32,
    pub gsi: u32,
    pub flags: u32,
    pub resamplefd: u32,
    pub pad: [u8; 16],
}

/// `struct rust_irqfd_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdInfo {
    pub version: u32,
    pub nr_gsis: u32,
    pub flags: u32,
    pub nr_irqfds: u32,
    pub shutdowns: u64,
    pub max_irqfds: u32,
    pub reserved: [u8; 4],
}

/// `struct rust_irqfd_gsi_stats`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdGsiStats {
    pub gsi: u32,
    pub pad: u32,
    pub injected: u64,
    pub raised: u64,
    pub coalesced: u64,
    pub delivered: u64,
    pub pending: u64,
    pub latched: u64,
    pub acks: u64,
    pub masked: u32,
    pub asserted: u32,
}

/// `struct rust_irqfd_route` (`RUST_IRQFD_SET_ROUTE`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdRoute {
    pub gsi: u32,
    pub flags: u32,
    pub msi_addr: u64,
    pub msi_data: u32,
    pub pad: u32,
}

/// `struct rust_irqfd_mask` (`RUST_IRQFD_SET_MASK`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdMask {
    pub gsi: u32,
    pub flags: u32,
}

/// `struct rust_irqfd_ack` (`RUST_IRQFD_ACK`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdAck {
    pub gsi: u32,
    pub pad: u32,
}

/// `struct rust_irqfd_delivery`: one record of `read(2)` on a context.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdDelivery {
    pub seq: u64,
    pub gsi: u32,
    pub flags: u32,
    pub count: u64,
    pub msi_addr: u64,
    pub msi_data: u32,
    pub pad: u32,
}

impl RustIrqfdDelivery {
    /// Size of one record on the wire.
    pub const SIZE: usize = size_of::<Self>();

    /// Decodes one record from exactly [`Self::SIZE`] native-endian bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::SIZE {
            return None;
        }
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        Some(Self {
            seq: u64_at(offset_of!(Self, seq)),
            gsi: u32_at(offset_of!(Self, gsi)),
            flags: u32_at(offset_of!(Self, flags)),
            count: u64_at(offset_of!(Self, count)),
            msi_addr: u64_at(offset_of!(Self, msi_addr)),
            msi_data: u32_at(offset_of!(Self, msi_data)),
            pad: u32_at(offset_of!(Self, pad)),
        })
    }
}

// Layout, as the C compiler lays out the header on x86_64.
const _: () = {
    assert!(size_of::<RustIrqfd>() == 32);
    assert!(offset_of!(RustIrqfd, fd) == 0);
    assert!(offset_of!(RustIrqfd, gsi) == 4);
    assert!(offset_of!(RustIrqfd, flags) == 8);
    assert!(offset_of!(RustIrqfd, resamplefd) == 12);
    assert!(offset_of!(RustIrqfd, pad) == 16);

    assert!(size_of::<RustIrqfdInfo>() == 32);
    assert!(offset_of!(RustIrqfdInfo, version) == 0);
    assert!(offset_of!(RustIrqfdInfo, nr_gsis) == 4);
    assert!(offset_of!(RustIrqfdInfo, flags) == 8);
    assert!(offset_of!(RustIrqfdInfo, nr_irqfds) == 12);
    assert!(offset_of!(RustIrqfdInfo, shutdowns) == 16);
    assert!(offset_of!(RustIrqfdInfo, max_irqfds) == 24);
    assert!(offset_of!(RustIrqfdInfo, reserved) == 28);

    assert!(size_of::<RustIrqfdGsiStats>() == 72);
    assert!(offset_of!(RustIrqfdGsiStats, gsi) == 0);
    assert!(offset_of!(RustIrqfdGsiStats, pad) == 4);
    assert!(offset_of!(RustIrqfdGsiStats, injected) == 8);
    assert!(offset_of!(RustIrqfdGsiStats, raised) == 16);
    assert!(offset_of!(RustIrqfdGsiStats, coalesced) == 24);
    assert!(offset_of!(RustIrqfdGsiStats, delivered) == 32);
    assert!(offset_of!(RustIrqfdGsiStats, pending) == 40);
    assert!(offset_of!(RustIrqfdGsiStats, latched) == 48);
    assert!(offset_of!(RustIrqfdGsiStats, acks) == 56);
    assert!(offset_of!(RustIrqfdGsiStats, masked) == 64);
    assert!(offset_of!(RustIrqfdGsiStats, asserted) == 68);

    assert!(size_of::<RustIrqfdRoute>() == 24);
    assert!(offset_of!(RustIrqfdRoute, gsi) == 0);
    assert!(offset_of!(RustIrqfdRoute, flags) == 4);
    assert!(offset_of!(RustIrqfdRoute, msi_addr) == 8);
    assert!(offset_of!(RustIrqfdRoute, msi_data) == 16);
    assert!(offset_of!(RustIrqfdRoute, pad) == 20);

    assert!(size_of::<RustIrqfdMask>() == 8);
    assert!(offset_of!(RustIrqfdMask, gsi) == 0);
    assert!(offset_of!(RustIrqfdMask, flags) == 4);

    assert!(size_of::<RustIrqfdAck>() == 8);
    assert!(offset_of!(RustIrqfdAck, gsi) == 0);
    assert!(offset_of!(RustIrqfdAck, pad) == 4);

    assert!(size_of::<RustIrqfdDelivery>() == 40);
    assert!(offset_of!(RustIrqfdDelivery, seq) == 0);
    assert!(offset_of!(RustIrqfdDelivery, gsi) == 8);
    assert!(offset_of!(RustIrqfdDelivery, flags) == 12);
    assert!(offset_of!(RustIrqfdDelivery, count) == 16);
    assert!(offset_of!(RustIrqfdDelivery, msi_addr) == 24);
    assert!(offset_of!(RustIrqfdDelivery, msi_data) == 32);
    assert!(offset_of!(RustIrqfdDelivery, pad) == 36);
};

// ioctl number encoding, as include/uapi/asm-generic/ioctl.h on x86_64.
const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS));
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
}

/// `_IO(type, nr)`.
pub const fn io(ty: u32, nr: u32) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOW(type, nr, size)` (userspace writes, the kernel reads).
pub const fn iow(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOR(type, nr, size)` (the kernel writes, userspace reads).
pub const fn ior(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOWR(type, nr, size)`.
pub const fn iowr(ty: u32, nr: u32, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// `RUST_IRQFD_IRQFD`: `_IOW(RUST_IRQFD_MAGIC, 0x76, struct rust_irqfd)`.
pub const RUST_IRQFD_IRQFD: u32 = iow(RUST_IRQFD_MAGIC, 0x76, size_of::<RustIrqfd>());
/// `RUST_IRQFD_GET_INFO`: `_IOR(RUST_IRQFD_MAGIC, 0x00, struct rust_irqfd_info)`.
pub const RUST_IRQFD_GET_INFO: u32 = ior(RUST_IRQFD_MAGIC, 0x00, size_of::<RustIrqfdInfo>());
/// `RUST_IRQFD_GSI_STATS`: `_IOWR(RUST_IRQFD_MAGIC, 0x01, struct rust_irqfd_gsi_stats)`.
pub const RUST_IRQFD_GSI_STATS: u32 = iowr(RUST_IRQFD_MAGIC, 0x01, size_of::<RustIrqfdGsiStats>());

/// `struct rust_irqfd_batch`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RustIrqfdBatch {
    pub entries: u64,
    pub nr: u32,
    pub flags: u32,
    pub error_index: u32,
    pub pad: u32,
}

/// `RUST_IRQFD_BATCH_MAX`.
pub const RUST_IRQFD_BATCH_MAX: u32 = 4096;

/// `RUST_IRQFD_IRQFD_BATCH`.
pub const RUST_IRQFD_IRQFD_BATCH: u32 = iowr(RUST_IRQFD_MAGIC, 0x02, size_of::<RustIrqfdBatch>());

/// `RUST_IRQFD_SET_ROUTE`: `_IOW(RUST_IRQFD_MAGIC, 0x03, struct rust_irqfd_route)`.
pub const RUST_IRQFD_SET_ROUTE: u32 = iow(RUST_IRQFD_MAGIC, 0x03, size_of::<RustIrqfdRoute>());
/// `RUST_IRQFD_SET_MASK`: `_IOW(RUST_IRQFD_MAGIC, 0x04, struct rust_irqfd_mask)`.
pub const RUST_IRQFD_SET_MASK: u32 = iow(RUST_IRQFD_MAGIC, 0x04, size_of::<RustIrqfdMask>());
/// `RUST_IRQFD_ACK`: `_IOW(RUST_IRQFD_MAGIC, 0x05, struct rust_irqfd_ack)`.
pub const RUST_IRQFD_ACK: u32 = iow(RUST_IRQFD_MAGIC, 0x05, size_of::<RustIrqfdAck>());

/// `KVM_IRQFD` (`_IOW(KVMIO, 0x76, struct kvm_irqfd)`): a command these
/// devices must not answer although it has the same layout.
pub const KVM_IRQFD: u32 = iow(0xAE, 0x76, size_of::<RustIrqfd>());

const _: () = {
    assert!(RUST_IRQFD_IRQFD == 0x4020_B976);
    assert!(RUST_IRQFD_GET_INFO == 0x8020_B900);
    assert!(RUST_IRQFD_GSI_STATS == 0xC048_B901);
    assert!(RUST_IRQFD_IRQFD_BATCH == 0xC018_B902);
    assert!(RUST_IRQFD_SET_ROUTE == 0x4018_B903);
    assert!(RUST_IRQFD_SET_MASK == 0x4008_B904);
    assert!(RUST_IRQFD_ACK == 0x4008_B905);
    assert!(KVM_IRQFD == 0x4020_AE76);
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn ioctl_numbers() {
        assert_eq!(io(0xB9, 0x7f), 0x0000_B97F);
        assert_eq!(RUST_IRQFD_IRQFD, 0x4020_B976);
        assert_eq!(RUST_IRQFD_GET_INFO, 0x8020_B900);
        assert_eq!(RUST_IRQFD_GSI_STATS, 0xC048_B901);
        assert_eq!(RUST_IRQFD_SET_ROUTE, 0x4018_B903);
        assert_eq!(RUST_IRQFD_SET_MASK, 0x4008_B904);
        assert_eq!(RUST_IRQFD_ACK, 0x4008_B905);
        // Same encoding as KVM_IRQFD apart from the type byte.
        assert_eq!(RUST_IRQFD_IRQFD & !0xff00, KVM_IRQFD & !0xff00);
    }

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(size_of::<RustIrqfd>(), 32);
        assert_eq!(size_of::<RustIrqfdInfo>(), 32);
        assert_eq!(size_of::<RustIrqfdGsiStats>(), 72);
        assert_eq!(size_of::<RustIrqfdDelivery>(), 40);
        assert_eq!(size_of::<RustIrqfdRoute>(), 24);
        assert_eq!(size_of::<RustIrqfdMask>(), 8);
        assert_eq!(size_of::<RustIrqfdAck>(), 8);
        assert_eq!(offset_of!(RustIrqfdGsiStats, pending), 40);
        assert_eq!(offset_of!(RustIrqfdGsiStats, asserted), 68);
        assert_eq!(offset_of!(RustIrqfdRoute, msi_data), 16);
        assert_eq!(offset_of!(RustIrqfdDelivery, msi_data), 32);
    }

    #[test]
    fn delivery_decodes() {
        let d = RustIrqfdDelivery {
            seq: 7,
            gsi: 3,
            flags: 0,
            count: 2,
            msi_addr: 0,
            msi_data: 0,
            pad: 0,
        };
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes());
        b.extend_from_slice(&3u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&2u64.to_ne_bytes());
        b.extend_from_slice(&[0u8; 16]);
        assert_eq!(RustIrqfdDelivery::from_bytes(&b), Some(d));
        assert_eq!(RustIrqfdDelivery::from_bytes(&b[1..]), None);
    }

    /// `(type, name)` of each field of `struct NAME` in the header text.
    fn c_fields(header: &str, name: &str) -> Vec<(String, String)> {
        let start = header
            .find(&format!("struct {name} {{"))
            .unwrap_or_else(|| panic!("struct {name} not in header"));
        let body = &header[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("};").unwrap()];
        body.lines()
            .map(|l| l.split("/*").next().unwrap().trim())
            // Continuation lines of a field's comment start with '*'.
            .filter(|l| !l.is_empty() && !l.starts_with('*'))
            .map(|l| {
                let l = l.trim_end_matches(';');
                let mut it = l.split_whitespace();
                let ty = it.next().unwrap().to_string();
                let field = it.next().unwrap().to_string();
                (ty, field)
            })
            .collect()
    }

    fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(t, n)| (t.to_string(), n.to_string()))
            .collect()
    }

    /// The mirror matches the header it mirrors, field by field.
    #[test]
    fn matches_uapi_header() {
        let path =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../include/uapi/linux/rust_irqfd.h");
        let Ok(h) = std::fs::read_to_string(&path) else {
            eprintln!("{} not found: header cross-check skipped", path.display());
            return;
        };
        assert!(h.contains("#define RUST_IRQFD_MAGIC 0xB9"));
        assert!(h.contains("#define RUST_IRQFD_ABI_VERSION 2"));
        assert!(h.contains("#define RUST_IRQFD_FLAG_DEASSIGN (1 << 0)"));
        assert!(h.contains("#define RUST_IRQFD_FLAG_RESAMPLE (1 << 1)"));
        assert!(h.contains("#define RUST_IRQFD_INFO_DEFERRED_ONLY (1 << 0)"));
        assert!(h.contains("_IOW(RUST_IRQFD_MAGIC, 0x76, struct rust_irqfd)"));
        assert!(h.contains("_IOR(RUST_IRQFD_MAGIC, 0x00, struct rust_irqfd_info)"));
        assert!(h.contains("_IOWR(RUST_IRQFD_MAGIC, 0x01, struct rust_irqfd_gsi_stats)"));
        assert!(h.contains("_IOW(RUST_IRQFD_MAGIC, 0x03, struct rust_irqfd_route)"));
        assert!(h.contains("_IOW(RUST_IRQFD_MAGIC, 0x04, struct rust_irqfd_mask)"));
        assert!(h.contains("_IOW(RUST_IRQFD_MAGIC, 0x05, struct rust_irqfd_ack)"));
        assert!(h.contains("#define RUST_IRQFD_DELIVERY_MSI   (1 << 0)"));
        assert!(h.contains("#define RUST_IRQFD_DELIVERY_LEVEL (1 << 1)"));
        assert!(h.contains("#define RUST_IRQFD_ROUTE_MSI (1 << 0)"));
        assert!(h.contains("#define RUST_IRQFD_MASK_MASKED (1 << 0)"));
        assert_eq!(
            c_fields(&h, "rust_irqfd"),
            fields(&[
                ("__u32", "fd"),
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u32", "resamplefd"),
                ("__u8", "pad[16]"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_info"),
            fields(&[
                ("__u32", "version"),
                ("__u32", "nr_gsis"),
                ("__u32", "flags"),
                ("__u32", "nr_irqfds"),
                ("__u64", "shutdowns"),
                ("__u32", "max_irqfds"),
                ("__u8", "reserved[4]"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_gsi_stats"),
            fields(&[
                ("__u32", "gsi"),
                ("__u32", "pad"),
                ("__u64", "injected"),
                ("__u64", "raised"),
                ("__u64", "coalesced"),
                ("__u64", "delivered"),
                ("__u64", "pending"),
                ("__u64", "latched"),
                ("__u64", "acks"),
                ("__u32", "masked"),
                ("__u32", "asserted"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_route"),
            fields(&[
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u64", "msi_addr"),
                ("__u32", "msi_data"),
                ("__u32", "pad"),
            ])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_mask"),
            fields(&[("__u32", "gsi"), ("__u32", "flags")])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_ack"),
            fields(&[("__u32", "gsi"), ("__u32", "pad")])
        );
        assert_eq!(
            c_fields(&h, "rust_irqfd_delivery"),
            fields(&[
                ("__u64", "seq"),
                ("__u32", "gsi"),
                ("__u32", "flags"),
                ("__u64", "count"),
                ("__u64", "msi_addr"),
                ("__u32", "msi_data"),
                ("__u32", "pad"),
            ])
        );
    }
}

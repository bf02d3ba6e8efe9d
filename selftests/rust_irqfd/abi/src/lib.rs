// SPDX-License-Identifier: GPL-2.0
//! The rust_irqfd ABI, mirrored from `include/uapi/linux/rust_irqfd.h`: the
//! one Rust copy of the header, which every userspace crate of the project
//! (the kselftest, `rust_irqfd_vmm`, and through it the samples and the
//! benchmark) uses.
//!
//! Spoken by `/dev/rust_irqfd` (the Rust module) and `/dev/c_irqfd` (the C
//! reference). Every struct is `#[repr(C)]` with the header's field order;
//! the layouts (as the C compiler lays the header out on x86_64) and the ioctl
//! numbers are pinned by compile-time asserts, and a unit test reads the
//! header itself and checks every `#define` and every struct against this
//! crate: names, values, field types, offsets and sizes.
//!
//! The structs are plain data: building one is safe; only handing one to the
//! kernel is not, and that is left to the crates that issue the ioctls. The
//! crate is `no_std` and has no dependencies.
#![cfg_attr(not(test), no_std)]

use core::mem::{offset_of, size_of};

/// `RUST_IRQFD_MAGIC`: the ioctl type byte (0xB9 is unassigned in the
/// kernel's `ioctl-number.rst`).
pub const RUST_IRQFD_MAGIC: u32 = 0xB9;
/// `RUST_IRQFD_ABI_VERSION`: the version `RUST_IRQFD_GET_INFO` reports.
pub const RUST_IRQFD_ABI_VERSION: u32 = 2;

/// `RUST_IRQFD_FLAG_DEASSIGN`: [`RustIrqfd::flags`] for "unbind".
pub const FLAG_DEASSIGN: u32 = 1 << 0;
/// `RUST_IRQFD_FLAG_RESAMPLE`: a level-triggered irqfd, as
/// `KVM_IRQFD_FLAG_RESAMPLE`. A signal asserts the GSI's line (a record with
/// [`DELIVERY_LEVEL`]); it stays asserted, further level injections merging
/// into it, until [`RUST_IRQFD_ACK`] deasserts it and signals `resamplefd`.
/// The irqfd holds its own reference to `resamplefd` (an eventfd: `EBADF` if
/// not open, `EINVAL` if not an eventfd), which may be `fd` itself. When the
/// last resample irqfd of a GSI goes, the line is deasserted. Not allowed in
/// batches.
pub const FLAG_RESAMPLE: u32 = 1 << 1;

/// `RUST_IRQFD_INFO_DEFERRED_ONLY`: the atomic injection fast path is off
/// (module parameter); injections happen only from the work item.
pub const INFO_DEFERRED_ONLY: u32 = 1 << 0;
/// `RUST_IRQFD_INFO_COUNTS_SIGNALS`: every signal is injected exactly once
/// on every path, the injection work included (signals that arrive while it
/// is queued are counted, not merged: the Rust module). Without it, such
/// signals may merge into one injection (the C reference, as KVM).
pub const INFO_COUNTS_SIGNALS: u32 = 1 << 1;

/// `RUST_IRQFD_DELIVERY_MSI`: the record was raised while the GSI was routed
/// to an MSI; [`RustIrqfdDelivery::msi_addr`] and
/// [`RustIrqfdDelivery::msi_data`] hold that route, read whole (never half of
/// an older route).
pub const DELIVERY_MSI: u32 = 1 << 0;
/// `RUST_IRQFD_DELIVERY_LEVEL`: the record was raised by a resample (level)
/// irqfd's injection; the line stays asserted until [`RUST_IRQFD_ACK`].
pub const DELIVERY_LEVEL: u32 = 1 << 1;

/// `RUST_IRQFD_ROUTE_MSI`: [`RustIrqfdRoute::flags`] for "route the GSI to
/// this MSI"; 0 clears the route.
pub const ROUTE_MSI: u32 = 1 << 0;

/// `RUST_IRQFD_MASK_MASKED`: [`RustIrqfdMask::flags`] for "mask"; 0 unmasks.
pub const MASK_MASKED: u32 = 1 << 0;

/// `RUST_IRQFD_BATCH_MAX`: the most entries one `RUST_IRQFD_IRQFD_BATCH`
/// call takes.
pub const RUST_IRQFD_BATCH_MAX: u32 = 4096;

/// `struct rust_irqfd`, which has the layout and meaning of `struct
/// kvm_irqfd`: the argument of `RUST_IRQFD_IRQFD` (and of `KVM_IRQFD`), and
/// one entry of a batch.
///
/// `fd` and `resamplefd` are descriptor *numbers*, resolved by the kernel in
/// the calling process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfd {
    /// The eventfd to bind (assign) or unbind (deassign).
    pub fd: u32,
    /// The interrupt line, `0 .. nr_gsis`.
    pub gsi: u32,
    /// [`FLAG_DEASSIGN`], [`FLAG_RESAMPLE`].
    pub flags: u32,
    /// The resample eventfd, with [`FLAG_RESAMPLE`].
    pub resamplefd: u32,
    /// Must be zero (`EINVAL` otherwise: stricter than KVM, which ignores it).
    pub pad: [u8; 16],
}

impl RustIrqfd {
    /// An assign request: bind eventfd number `fd` to `gsi`.
    pub const fn assign(fd: u32, gsi: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: 0,
            resamplefd: 0,
            pad: [0; 16],
        }
    }

    /// A deassign request: unbind eventfd number `fd` from `gsi`.
    pub const fn deassign(fd: u32, gsi: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: FLAG_DEASSIGN,
            resamplefd: 0,
            pad: [0; 16],
        }
    }

    /// A level-triggered assign request ([`FLAG_RESAMPLE`]): bind eventfd
    /// number `fd` to `gsi`, with eventfd number `resamplefd` signalled at
    /// each acknowledgement (end of interrupt) of the line.
    pub const fn assign_resample(fd: u32, gsi: u32, resamplefd: u32) -> Self {
        Self {
            fd,
            gsi,
            flags: FLAG_RESAMPLE,
            resamplefd,
            pad: [0; 16],
        }
    }

    /// Whether this request deassigns ([`FLAG_DEASSIGN`] set).
    pub const fn is_deassign(&self) -> bool {
        self.flags & FLAG_DEASSIGN != 0
    }

    /// Whether this request asks for a resample (level) irqfd
    /// ([`FLAG_RESAMPLE`] set; ignored on deassign).
    pub const fn is_resample(&self) -> bool {
        self.flags & FLAG_RESAMPLE != 0
    }
}

/// `struct rust_irqfd_info`: what a context's interrupt controller looks
/// like (`RUST_IRQFD_GET_INFO`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdInfo {
    /// [`RUST_IRQFD_ABI_VERSION`].
    pub version: u32,
    /// Valid GSIs are `0 .. nr_gsis`.
    pub nr_gsis: u32,
    /// [`INFO_DEFERRED_ONLY`].
    pub flags: u32,
    /// Irqfds currently active in this context.
    pub nr_irqfds: u32,
    /// Irqfd shutdowns completed in this context.
    pub shutdowns: u64,
    /// Most irqfds one context may hold; assigning more fails with `ENOSPC`.
    pub max_irqfds: u32,
    /// Zero.
    pub reserved: [u8; 4],
}

impl RustIrqfdInfo {
    /// Whether the module injects only from its work item
    /// ([`INFO_DEFERRED_ONLY`]).
    pub const fn deferred_only(&self) -> bool {
        self.flags & INFO_DEFERRED_ONLY != 0
    }

    /// Whether every signal is injected exactly once, also through the
    /// injection work ([`INFO_COUNTS_SIGNALS`]); without it, signals that
    /// arrive while the work is queued may merge.
    pub const fn counts_signals(&self) -> bool {
        self.flags & INFO_COUNTS_SIGNALS != 0
    }
}

/// `struct rust_irqfd_gsi_stats`: one line's counters and state
/// (`RUST_IRQFD_GSI_STATS`). At every moment
/// `injected == coalesced + raised + latched` and
/// `raised == delivered + pending`, `pending` 0 or 1
/// ([`invariants_hold`](Self::invariants_hold)); for a GSI no resample irqfd
/// injects into, the counts of the records `read(2)` returned for it add up
/// to `injected - latched` minus the count of the pending record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdGsiStats {
    /// In: the line.
    pub gsi: u32,
    /// In: must be zero.
    pub pad: u32,
    /// Injections into this GSI.
    pub injected: u64,
    /// Records queued for `read(2)`.
    pub raised: u64,
    /// Injections merged into a pending record, or into a level line that
    /// was asserted already.
    pub coalesced: u64,
    /// Records handed to `read(2)`.
    pub delivered: u64,
    /// 1 if a record is waiting to be read.
    pub pending: u64,
    /// Injections held by the mask latch now (the GSI is masked).
    pub latched: u64,
    /// `RUST_IRQFD_ACK` calls that deasserted the line.
    pub acks: u64,
    /// 1 if the GSI is masked.
    pub masked: u32,
    /// 1 if a level (resample) injection holds the line asserted until
    /// `RUST_IRQFD_ACK`.
    pub asserted: u32,
}

impl RustIrqfdGsiStats {
    /// Whether the GSI is masked.
    pub const fn is_masked(&self) -> bool {
        self.masked != 0
    }

    /// Whether a level injection holds the line asserted.
    pub const fn is_asserted(&self) -> bool {
        self.asserted != 0
    }

    /// The ABI's invariants: `injected == coalesced + raised + latched`
    /// and `raised == delivered + pending`, `pending <= 1` (checked
    /// without overflow).
    pub fn invariants_hold(&self) -> bool {
        let parts = self
            .coalesced
            .checked_add(self.raised)
            .and_then(|v| v.checked_add(self.latched));
        let read = self.delivered.checked_add(self.pending);
        parts == Some(self.injected) && read == Some(self.raised) && self.pending <= 1
    }
}

/// `struct rust_irqfd_delivery`: one record of `read(2)` on a context, which
/// returns whole records, oldest first. A GSI has at most one pending
/// record: an injection into a GSI whose record is still unread is coalesced
/// into it (`count` goes up, `seq` stays).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdDelivery {
    /// Context-wide, from 1, in the order records were raised.
    pub seq: u64,
    /// The line.
    pub gsi: u32,
    /// [`DELIVERY_MSI`], [`DELIVERY_LEVEL`].
    pub flags: u32,
    /// Injections merged into this record, at least 1.
    pub count: u64,
    /// With [`DELIVERY_MSI`]: the MSI address the GSI was routed to when the
    /// record was raised; else 0.
    pub msi_addr: u64,
    /// With [`DELIVERY_MSI`]: the MSI data; else 0.
    pub msi_data: u32,
    /// Zero.
    pub pad: u32,
}

impl RustIrqfdDelivery {
    /// Size of one record on the wire.
    pub const SIZE: usize = size_of::<Self>();

    /// Whether the record was raised with the GSI routed to an MSI.
    pub const fn is_msi(&self) -> bool {
        self.flags & DELIVERY_MSI != 0
    }

    /// Whether a resample (level) irqfd raised the record.
    pub const fn is_level(&self) -> bool {
        self.flags & DELIVERY_LEVEL != 0
    }

    /// The MSI `(address, data)` the record was raised with, `None` when the
    /// GSI had no route (a plain line).
    pub const fn msi(&self) -> Option<(u64, u32)> {
        if self.is_msi() {
            Some((self.msi_addr, self.msi_data))
        } else {
            None
        }
    }

    /// Decodes one record from exactly [`Self::SIZE`] native-endian bytes;
    /// `None` for any other length.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::SIZE {
            return None;
        }
        let u64_at = |o: usize| -> Option<u64> {
            Some(u64::from_ne_bytes(b.get(o..o + 8)?.try_into().ok()?))
        };
        let u32_at = |o: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(b.get(o..o + 4)?.try_into().ok()?))
        };
        Some(Self {
            seq: u64_at(offset_of!(Self, seq))?,
            gsi: u32_at(offset_of!(Self, gsi))?,
            flags: u32_at(offset_of!(Self, flags))?,
            count: u64_at(offset_of!(Self, count))?,
            msi_addr: u64_at(offset_of!(Self, msi_addr))?,
            msi_data: u32_at(offset_of!(Self, msi_data))?,
            pad: u32_at(offset_of!(Self, pad))?,
        })
    }
}

/// `struct rust_irqfd_batch`: the argument of `RUST_IRQFD_IRQFD_BATCH`, many
/// irqfds in one call. Assign (`flags` 0) is all-or-nothing: on the first
/// entry that fails, every irqfd the call assigned is deassigned again, and
/// the ioctl returns that entry's errno with `error_index` set to it.
/// Deassign ([`FLAG_DEASSIGN`]) checks every entry's descriptor first, then
/// deassigns all and waits once for all the shutdowns. Entries are
/// [`RustIrqfd`]s with `flags` 0 (the batch's flags say what to do) and zero
/// `pad`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdBatch {
    /// In: user address of `nr` [`RustIrqfd`]s.
    pub entries: u64,
    /// In: `1 ..= RUST_IRQFD_BATCH_MAX`.
    pub nr: u32,
    /// In: 0 (assign) or [`FLAG_DEASSIGN`].
    pub flags: u32,
    /// Out: the entry at fault; `nr` when no entry is (success, a bad
    /// header, an entries array that cannot be read whole, or a failure of
    /// the call's own such as `ENOMEM`). Written first: if it cannot be,
    /// `EFAULT` and nothing done.
    pub error_index: u32,
    /// In: zero.
    pub pad: u32,
}

/// `struct rust_irqfd_route`: the argument of `RUST_IRQFD_SET_ROUTE`, which
/// routes one GSI to an MSI, or clears its route, in place: the irqfds bound
/// to the GSI inject with the new route from the next injection on, no other
/// GSI is touched, and a record already raised keeps the route it was raised
/// with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdRoute {
    /// The line.
    pub gsi: u32,
    /// [`ROUTE_MSI`] to set, 0 to clear.
    pub flags: u32,
    /// The MSI address: nonzero and 4-byte aligned to set (`EINVAL`
    /// otherwise), 0 to clear.
    pub msi_addr: u64,
    /// The MSI data (0 to clear).
    pub msi_data: u32,
    /// Must be zero.
    pub pad: u32,
}

impl RustIrqfdRoute {
    /// Route `gsi` to the MSI `addr`/`data`.
    pub const fn msi(gsi: u32, addr: u64, data: u32) -> Self {
        Self {
            gsi,
            flags: ROUTE_MSI,
            msi_addr: addr,
            msi_data: data,
            pad: 0,
        }
    }

    /// Clear `gsi`'s route (a plain line again).
    pub const fn clear(gsi: u32) -> Self {
        Self {
            gsi,
            flags: 0,
            msi_addr: 0,
            msi_data: 0,
            pad: 0,
        }
    }
}

/// `struct rust_irqfd_mask`: the argument of `RUST_IRQFD_SET_MASK`, which
/// masks or unmasks one GSI, MSI-X style. An injection into a masked GSI
/// raises no record: it sets the GSI's pending latch. Unmasking a GSI whose
/// latch is set raises one record (or merges into the pending one) carrying
/// all the latched injections in its count and the GSI's route at the time
/// of the unmask. Masking a masked GSI, or unmasking an unmasked one, changes
/// nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdMask {
    /// The line.
    pub gsi: u32,
    /// [`MASK_MASKED`] to mask, 0 to unmask.
    pub flags: u32,
}

/// `struct rust_irqfd_ack`: the argument of `RUST_IRQFD_ACK`, the guest's
/// end-of-interrupt for a level GSI. If a resample irqfd's injection holds
/// the line asserted, deasserts it and signals the resamplefd of every
/// resample irqfd bound to the GSI (they share one resampler); the ioctl
/// returns how many resamplefds it signalled, 0 if the line was not asserted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RustIrqfdAck {
    /// The line.
    pub gsi: u32,
    /// Must be zero.
    pub pad: u32,
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

    assert!(size_of::<RustIrqfdDelivery>() == 40);
    assert!(offset_of!(RustIrqfdDelivery, seq) == 0);
    assert!(offset_of!(RustIrqfdDelivery, gsi) == 8);
    assert!(offset_of!(RustIrqfdDelivery, flags) == 12);
    assert!(offset_of!(RustIrqfdDelivery, count) == 16);
    assert!(offset_of!(RustIrqfdDelivery, msi_addr) == 24);
    assert!(offset_of!(RustIrqfdDelivery, msi_data) == 32);
    assert!(offset_of!(RustIrqfdDelivery, pad) == 36);

    assert!(size_of::<RustIrqfdBatch>() == 24);
    assert!(offset_of!(RustIrqfdBatch, entries) == 0);
    assert!(offset_of!(RustIrqfdBatch, nr) == 8);
    assert!(offset_of!(RustIrqfdBatch, flags) == 12);
    assert!(offset_of!(RustIrqfdBatch, error_index) == 16);
    assert!(offset_of!(RustIrqfdBatch, pad) == 20);

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

/// `RUST_IRQFD_IRQFD`: `_IOW(RUST_IRQFD_MAGIC, 0x76, struct rust_irqfd)`,
/// assign or deassign one irqfd (the number of `KVM_IRQFD` but for the type
/// byte).
pub const RUST_IRQFD_IRQFD: u32 = iow(RUST_IRQFD_MAGIC, 0x76, size_of::<RustIrqfd>());
/// `RUST_IRQFD_GET_INFO`: `_IOR(RUST_IRQFD_MAGIC, 0x00, struct rust_irqfd_info)`.
pub const RUST_IRQFD_GET_INFO: u32 = ior(RUST_IRQFD_MAGIC, 0x00, size_of::<RustIrqfdInfo>());
/// `RUST_IRQFD_GSI_STATS`: `_IOWR(RUST_IRQFD_MAGIC, 0x01, struct rust_irqfd_gsi_stats)`.
pub const RUST_IRQFD_GSI_STATS: u32 = iowr(RUST_IRQFD_MAGIC, 0x01, size_of::<RustIrqfdGsiStats>());
/// `RUST_IRQFD_IRQFD_BATCH`: `_IOWR(RUST_IRQFD_MAGIC, 0x02, struct rust_irqfd_batch)`.
pub const RUST_IRQFD_IRQFD_BATCH: u32 = iowr(RUST_IRQFD_MAGIC, 0x02, size_of::<RustIrqfdBatch>());
/// `RUST_IRQFD_SET_ROUTE`: `_IOW(RUST_IRQFD_MAGIC, 0x03, struct rust_irqfd_route)`.
pub const RUST_IRQFD_SET_ROUTE: u32 = iow(RUST_IRQFD_MAGIC, 0x03, size_of::<RustIrqfdRoute>());
/// `RUST_IRQFD_SET_MASK`: `_IOW(RUST_IRQFD_MAGIC, 0x04, struct rust_irqfd_mask)`.
pub const RUST_IRQFD_SET_MASK: u32 = iow(RUST_IRQFD_MAGIC, 0x04, size_of::<RustIrqfdMask>());
/// `RUST_IRQFD_ACK`: `_IOW(RUST_IRQFD_MAGIC, 0x05, struct rust_irqfd_ack)`;
/// returns the number of resamplefds signalled.
pub const RUST_IRQFD_ACK: u32 = iow(RUST_IRQFD_MAGIC, 0x05, size_of::<RustIrqfdAck>());

const _: () = {
    assert!(RUST_IRQFD_IRQFD == 0x4020_B976);
    assert!(RUST_IRQFD_GET_INFO == 0x8020_B900);
    assert!(RUST_IRQFD_GSI_STATS == 0xC048_B901);
    assert!(RUST_IRQFD_IRQFD_BATCH == 0xC018_B902);
    assert!(RUST_IRQFD_SET_ROUTE == 0x4018_B903);
    assert!(RUST_IRQFD_SET_MASK == 0x4008_B904);
    assert!(RUST_IRQFD_ACK == 0x4008_B905);
};

/// Errno values and their symbolic names: the project's one errno table,
/// which the kselftest's reports and `rust_irqfd_vmm`'s errors both print.
///
/// The values are the kernel's generic ones (`include/uapi/asm-generic/errno-base.h`
/// and `errno.h`), as on x86, arm64 and riscv, whose ioctl encoding this crate
/// also assumes; the users' tests compare every entry with libc's.
pub mod errno {
    /// The table: value and name, for the errnos an irqfd ABI, a device
    /// node or a test may meet, and the kernel-internal restart values that
    /// must never reach userspace (named so that a leak is recognisable).
    pub const TABLE: &[(i32, &str)] = &[
        (1, "EPERM"),
        (2, "ENOENT"),
        (3, "ESRCH"),
        (4, "EINTR"),
        (5, "EIO"),
        (6, "ENXIO"),
        (7, "E2BIG"),
        (9, "EBADF"),
        (11, "EAGAIN"),
        (12, "ENOMEM"),
        (13, "EACCES"),
        (14, "EFAULT"),
        (16, "EBUSY"),
        (17, "EEXIST"),
        (19, "ENODEV"),
        (20, "ENOTDIR"),
        (21, "EISDIR"),
        (22, "EINVAL"),
        (23, "ENFILE"),
        (24, "EMFILE"),
        (25, "ENOTTY"),
        (28, "ENOSPC"),
        (29, "ESPIPE"),
        (30, "EROFS"),
        (32, "EPIPE"),
        (34, "ERANGE"),
        (38, "ENOSYS"),
        (75, "EOVERFLOW"),
        (95, "EOPNOTSUPP"),
        (110, "ETIMEDOUT"),
        (512, "ERESTARTSYS(512)"),
        (513, "ERESTARTNOINTR(513)"),
        (514, "ERESTARTNOHAND(514)"),
        (515, "ENOIOCTLCMD(515)"),
        (516, "ERESTART_RESTARTBLOCK(516)"),
    ];

    /// The symbolic name of `errno` (`16` is `"EBUSY"`), `None` for a value
    /// not in [`TABLE`].
    pub fn name(errno: i32) -> Option<&'static str> {
        TABLE.iter().find(|(v, _)| *v == errno).map(|(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::any::type_name_of_val;
    use core::mem::align_of;
    use std::collections::BTreeMap;

    #[test]
    fn errno_table_has_one_name_per_value() {
        let mut values: Vec<i32> = errno::TABLE.iter().map(|(v, _)| *v).collect();
        let mut names: Vec<&str> = errno::TABLE.iter().map(|(_, n)| *n).collect();
        values.dedup();
        names.sort_unstable();
        names.dedup();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(
            (values.len(), names.len()),
            (errno::TABLE.len(), errno::TABLE.len())
        );
        assert_eq!(errno::name(16), Some("EBUSY"));
        assert_eq!(errno::name(0), None);
        assert_eq!(errno::name(133), None);
    }

    #[test]
    fn ioctl_numbers() {
        assert_eq!(io(0xB9, 0x7f), 0x0000_B97F);
        assert_eq!(RUST_IRQFD_IRQFD, 0x4020_B976);
        assert_eq!(RUST_IRQFD_GET_INFO, 0x8020_B900);
        assert_eq!(RUST_IRQFD_GSI_STATS, 0xC048_B901);
        assert_eq!(RUST_IRQFD_IRQFD_BATCH, 0xC018_B902);
        assert_eq!(RUST_IRQFD_SET_ROUTE, 0x4018_B903);
        assert_eq!(RUST_IRQFD_SET_MASK, 0x4008_B904);
        assert_eq!(RUST_IRQFD_ACK, 0x4008_B905);
        // Same encoding as KVM_IRQFD, _IOW(0xAE, 0x76, struct kvm_irqfd),
        // apart from the type byte.
        assert_eq!(
            RUST_IRQFD_IRQFD & !0xff00,
            iow(0xAE, 0x76, size_of::<RustIrqfd>()) & !0xff00
        );
    }

    #[test]
    fn request_constructors() {
        let r = RustIrqfd::assign_resample(3, 9, 4);
        assert_eq!((r.fd, r.gsi, r.resamplefd), (3, 9, 4));
        assert_eq!(r.flags, FLAG_RESAMPLE);
        assert!(r.is_resample() && !r.is_deassign());
        assert!(RustIrqfd::deassign(3, 9).is_deassign());
        assert!(!RustIrqfd::assign(3, 9).is_resample());
        assert_eq!(
            RustIrqfdRoute::msi(7, 0xfee0_1000, 0x41),
            RustIrqfdRoute {
                gsi: 7,
                flags: ROUTE_MSI,
                msi_addr: 0xfee0_1000,
                msi_data: 0x41,
                pad: 0
            }
        );
        assert_eq!(
            RustIrqfdRoute::clear(7),
            RustIrqfdRoute {
                gsi: 7,
                ..RustIrqfdRoute::default()
            }
        );
        let info = RustIrqfdInfo {
            flags: INFO_DEFERRED_ONLY,
            ..RustIrqfdInfo::default()
        };
        assert!(info.deferred_only() && !RustIrqfdInfo::default().deferred_only());
        assert!(!info.counts_signals());
        let info = RustIrqfdInfo {
            flags: INFO_COUNTS_SIGNALS,
            ..RustIrqfdInfo::default()
        };
        assert!(info.counts_signals() && !info.deferred_only());
    }

    #[test]
    fn gsi_stats_invariants() {
        let ok = RustIrqfdGsiStats {
            injected: 10,
            coalesced: 3,
            raised: 4,
            latched: 3,
            delivered: 3,
            pending: 1,
            ..RustIrqfdGsiStats::default()
        };
        assert!(ok.invariants_hold());
        assert!(RustIrqfdGsiStats::default().invariants_hold());
        assert!(!RustIrqfdGsiStats { latched: 2, ..ok }.invariants_hold());
        assert!(!RustIrqfdGsiStats { pending: 0, ..ok }.invariants_hold());
        assert!(!RustIrqfdGsiStats {
            pending: 2,
            delivered: 2,
            ..ok
        }
        .invariants_hold());
        // No overflow panic on absurd values.
        assert!(!RustIrqfdGsiStats {
            injected: u64::MAX,
            coalesced: u64::MAX,
            raised: u64::MAX,
            ..ok
        }
        .invariants_hold());
        let st = RustIrqfdGsiStats {
            masked: 1,
            asserted: 0,
            ..ok
        };
        assert!(st.is_masked() && !st.is_asserted());
    }

    #[test]
    fn delivery_decodes() {
        let mut b = Vec::new();
        b.extend_from_slice(&7u64.to_ne_bytes());
        b.extend_from_slice(&3u32.to_ne_bytes());
        b.extend_from_slice(&DELIVERY_MSI.to_ne_bytes());
        b.extend_from_slice(&2u64.to_ne_bytes());
        b.extend_from_slice(&0xfee0_0000u64.to_ne_bytes());
        b.extend_from_slice(&0x41u32.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        let d = RustIrqfdDelivery::from_bytes(&b).unwrap();
        assert_eq!(
            d,
            RustIrqfdDelivery {
                seq: 7,
                gsi: 3,
                flags: DELIVERY_MSI,
                count: 2,
                msi_addr: 0xfee0_0000,
                msi_data: 0x41,
                pad: 0
            }
        );
        assert!(d.is_msi() && !d.is_level());
        assert_eq!(d.msi(), Some((0xfee0_0000, 0x41)));
        let level = RustIrqfdDelivery {
            flags: DELIVERY_LEVEL,
            msi_addr: 0,
            msi_data: 0,
            ..d
        };
        assert!(level.is_level() && !level.is_msi());
        assert_eq!(level.msi(), None);
        assert_eq!(RustIrqfdDelivery::from_bytes(&b[1..]), None);
        assert_eq!(RustIrqfdDelivery::from_bytes(&[]), None);
    }

    // The header cross-check: a small reader of the C header (comments,
    // `#define NAME VALUE` lines, flat structs of __u8/__u16/__u32/__u64
    // fields and arrays of them) that lays the structs out as the C compiler
    // does on x86_64 and evaluates the defines, ioctl numbers included, on
    // its own; then every define and every struct must have its mirror here,
    // and every mirror its original, with the same value or layout.

    const HEADER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../include/uapi/linux/rust_irqfd.h"
    );

    /// The header without its comments (newlines kept, so lines stay lines).
    fn strip_comments(h: &str) -> String {
        let mut out = String::new();
        let mut rest = h;
        while let Some(start) = rest.find("/*") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("*/")
                .unwrap_or_else(|| panic!("{HEADER}: unterminated comment"));
            out.extend(rest[start..start + end].chars().filter(|&c| c == '\n'));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }

    /// `#define NAME VALUE` lines, in order; the include guard (no value) is
    /// left out.
    fn c_defines(h: &str) -> Vec<(String, String)> {
        h.lines()
            .filter_map(|l| l.trim().strip_prefix("#define"))
            .filter_map(|l| {
                let (name, value) = l.trim().split_once(char::is_whitespace)?;
                Some((name.to_string(), value.trim().to_string()))
            })
            .collect()
    }

    /// One field of a C struct: `(name, C type, array length or 1)`.
    type CField = (String, String, usize);

    /// Every `struct NAME { ... };` definition, in order.
    fn c_structs(h: &str) -> Vec<(String, Vec<CField>)> {
        let mut out = Vec::new();
        for (at, _) in h.match_indices("struct ") {
            let rest = &h[at + "struct ".len()..];
            let name_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let (name, rest) = rest.split_at(name_end);
            // Only definitions: `struct x {`, not `struct x)` in an ioctl.
            let Some(rest) = rest.trim_start().strip_prefix('{') else {
                continue;
            };
            let body = &rest[..rest.find('}').expect("struct without its closing brace")];
            assert!(
                !body.contains('{'),
                "struct {name}: nested aggregates are not handled by this reader"
            );
            let fields = body
                .split(';')
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| {
                    let words: Vec<&str> = d.split_whitespace().collect();
                    let [ty, decl] = words[..] else {
                        panic!("struct {name}: cannot read the field {d:?}");
                    };
                    let (field, len) = match decl.split_once('[') {
                        Some((f, n)) => {
                            let n = n.strip_suffix(']').expect("unclosed array length");
                            (f, n.parse().expect("array length not a number"))
                        }
                        None => (decl, 1),
                    };
                    (field.to_string(), ty.to_string(), len)
                })
                .collect();
            out.push((name.to_string(), fields));
        }
        out
    }

    /// A struct laid out as the C compiler does on x86_64 (every __uN
    /// aligned on its size): `(size, alignment, [(field, offset, Rust type)])`.
    fn c_layout(name: &str, fields: &[CField]) -> (usize, usize, Vec<(String, usize, String)>) {
        let (mut at, mut align) = (0usize, 1usize);
        let mut out = Vec::new();
        for (field, ty, len) in fields {
            let (size, rust) = match ty.as_str() {
                "__u8" => (1, "u8"),
                "__s8" => (1, "i8"),
                "__u16" => (2, "u16"),
                "__s16" => (2, "i16"),
                "__u32" => (4, "u32"),
                "__s32" => (4, "i32"),
                "__u64" => (8, "u64"),
                "__s64" => (8, "i64"),
                _ => panic!(
                    "struct {name}: field {field} has a type this reader does not know: {ty}"
                ),
            };
            at = at.next_multiple_of(size);
            align = align.max(size);
            let rust = if *len == 1 {
                rust.to_string()
            } else {
                format!("[{rust}; {len}]")
            };
            out.push((field.clone(), at, rust));
            at += size * len;
        }
        (at.next_multiple_of(align), align, out)
    }

    /// Evaluates a define's value: a number, `(A << B)`, another define, or
    /// `_IO`/`_IOR`/`_IOW`/`_IOWR` (the asm-generic encoding, with the size
    /// of the struct as laid out from the header).
    fn eval(v: &str, defines: &BTreeMap<String, String>, sizes: &BTreeMap<String, usize>) -> u64 {
        let v = v.trim();
        if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            return u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad number {v:?}"));
        }
        if v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty() {
            return v.parse().unwrap();
        }
        for (mac, dir) in [("_IOWR(", 3), ("_IOW(", 1), ("_IOR(", 2), ("_IO(", 0)] {
            if let Some(args) = v.strip_prefix(mac) {
                let args: Vec<&str> = args.strip_suffix(')').unwrap().split(',').collect();
                let ty = eval(args[0], defines, sizes);
                let nr = eval(args[1], defines, sizes);
                let size = match args.get(2) {
                    Some(s) => {
                        let s = s
                            .trim()
                            .strip_prefix("struct ")
                            .expect("ioctl size not a struct");
                        *sizes
                            .get(s.trim())
                            .unwrap_or_else(|| panic!("no struct {s} in the header"))
                    }
                    None => 0,
                } as u64;
                assert!(
                    ty < 1 << 8 && nr < 1 << 8 && size < 1 << 14,
                    "{v}: out of range"
                );
                return dir << 30 | size << 16 | ty << 8 | nr;
            }
        }
        if let Some(inner) = v.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            if let Some((a, b)) = inner.split_once("<<") {
                return eval(a, defines, sizes) << eval(b, defines, sizes);
            }
            return eval(inner, defines, sizes);
        }
        match defines.get(v) {
            Some(def) => eval(def, defines, sizes),
            None => panic!("cannot evaluate {v:?}"),
        }
    }

    /// One mirrored struct: the C name, its size and alignment, and each
    /// field's name, offset and Rust type. The pattern lists every field, so
    /// a field added to the Rust struct and not here does not compile.
    macro_rules! mirror {
        ($c:literal, $t:ident { $($f:ident),* $(,)? }) => {{
            let v = $t::default();
            let $t { $($f: _),* } = v;
            (
                $c,
                (
                    size_of::<$t>(),
                    align_of::<$t>(),
                    vec![$((
                        stringify!($f).to_string(),
                        offset_of!($t, $f),
                        type_name_of_val(&v.$f).to_string(),
                    )),*],
                ),
            )
        }};
    }

    /// The mirror matches the header it mirrors: every `#define` (names and
    /// values, the ioctl numbers recomputed from the header's own struct
    /// layouts) and every struct (names, field order, types, offsets, size
    /// and alignment), both ways.
    #[test]
    fn matches_uapi_header() {
        let text = std::fs::read_to_string(HEADER).unwrap_or_else(|e| panic!("{HEADER}: {e}"));
        let h = strip_comments(&text);

        let mirrors: BTreeMap<&str, _> = [
            mirror!(
                "rust_irqfd",
                RustIrqfd {
                    fd,
                    gsi,
                    flags,
                    resamplefd,
                    pad
                }
            ),
            mirror!(
                "rust_irqfd_info",
                RustIrqfdInfo {
                    version,
                    nr_gsis,
                    flags,
                    nr_irqfds,
                    shutdowns,
                    max_irqfds,
                    reserved
                }
            ),
            mirror!(
                "rust_irqfd_gsi_stats",
                RustIrqfdGsiStats {
                    gsi,
                    pad,
                    injected,
                    raised,
                    coalesced,
                    delivered,
                    pending,
                    latched,
                    acks,
                    masked,
                    asserted
                }
            ),
            mirror!(
                "rust_irqfd_delivery",
                RustIrqfdDelivery {
                    seq,
                    gsi,
                    flags,
                    count,
                    msi_addr,
                    msi_data,
                    pad
                }
            ),
            mirror!(
                "rust_irqfd_batch",
                RustIrqfdBatch {
                    entries,
                    nr,
                    flags,
                    error_index,
                    pad
                }
            ),
            mirror!(
                "rust_irqfd_route",
                RustIrqfdRoute {
                    gsi,
                    flags,
                    msi_addr,
                    msi_data,
                    pad
                }
            ),
            mirror!("rust_irqfd_mask", RustIrqfdMask { gsi, flags }),
            mirror!("rust_irqfd_ack", RustIrqfdAck { gsi, pad }),
        ]
        .into_iter()
        .collect();
        let mirrored_defines: BTreeMap<&str, u64> = [
            ("RUST_IRQFD_MAGIC", RUST_IRQFD_MAGIC.into()),
            ("RUST_IRQFD_ABI_VERSION", RUST_IRQFD_ABI_VERSION.into()),
            ("RUST_IRQFD_FLAG_DEASSIGN", FLAG_DEASSIGN.into()),
            ("RUST_IRQFD_FLAG_RESAMPLE", FLAG_RESAMPLE.into()),
            ("RUST_IRQFD_IRQFD", RUST_IRQFD_IRQFD.into()),
            ("RUST_IRQFD_INFO_DEFERRED_ONLY", INFO_DEFERRED_ONLY.into()),
            ("RUST_IRQFD_INFO_COUNTS_SIGNALS", INFO_COUNTS_SIGNALS.into()),
            ("RUST_IRQFD_GET_INFO", RUST_IRQFD_GET_INFO.into()),
            ("RUST_IRQFD_GSI_STATS", RUST_IRQFD_GSI_STATS.into()),
            ("RUST_IRQFD_DELIVERY_MSI", DELIVERY_MSI.into()),
            ("RUST_IRQFD_DELIVERY_LEVEL", DELIVERY_LEVEL.into()),
            ("RUST_IRQFD_BATCH_MAX", RUST_IRQFD_BATCH_MAX.into()),
            ("RUST_IRQFD_IRQFD_BATCH", RUST_IRQFD_IRQFD_BATCH.into()),
            ("RUST_IRQFD_ROUTE_MSI", ROUTE_MSI.into()),
            ("RUST_IRQFD_SET_ROUTE", RUST_IRQFD_SET_ROUTE.into()),
            ("RUST_IRQFD_MASK_MASKED", MASK_MASKED.into()),
            ("RUST_IRQFD_SET_MASK", RUST_IRQFD_SET_MASK.into()),
            ("RUST_IRQFD_ACK", RUST_IRQFD_ACK.into()),
        ]
        .into_iter()
        .collect();

        let mut wrong = Vec::new();

        let structs = c_structs(&h);
        let mut sizes = BTreeMap::new();
        for (name, fields) in &structs {
            let c = c_layout(name, fields);
            sizes.insert(name.clone(), c.0);
            match mirrors.get(name.as_str()) {
                None => wrong.push(format!("struct {name}: not mirrored")),
                Some(rust) if *rust != c => wrong.push(format!(
                    "struct {name}: header (size, align, [(field, offset, type)]) {c:?}, mirror {rust:?}"
                )),
                Some(_) => {}
            }
        }
        for name in mirrors.keys() {
            if !structs.iter().any(|(n, _)| n == name) {
                wrong.push(format!("struct {name}: mirrored but not in the header"));
            }
        }

        let defines = c_defines(&h);
        let by_name: BTreeMap<String, String> = defines.iter().cloned().collect();
        for (name, value) in &defines {
            let c = eval(value, &by_name, &sizes);
            match mirrored_defines.get(name.as_str()) {
                None => wrong.push(format!("{name} ({value} = {c:#x}): not mirrored")),
                Some(&rust) if rust != c => {
                    wrong.push(format!("{name}: header {value} = {c:#x}, mirror {rust:#x}"))
                }
                Some(_) => {}
            }
        }
        for name in mirrored_defines.keys() {
            if !by_name.contains_key(*name) {
                wrong.push(format!("{name}: mirrored but not in the header"));
            }
        }

        assert!(
            wrong.is_empty(),
            "{HEADER} and the mirror differ:\n  {}",
            wrong.join("\n  ")
        );
    }
}

// SPDX-License-Identifier: GPL-2.0
//! The crate's only `unsafe` code: each ioctl it issues, through
//! `rustix::ioctl`, one function per command so that every opcode is paired
//! with the one argument type the kernel expects for it; and, with the
//! `kvm-ioctls` feature, the descriptor glue kvm-ioctls needs
//! (`rust_vmm`).
//!
//! rustix has no typed wrappers for these device-specific commands, and its
//! generic `ioctl` is `unsafe` because it cannot know what the kernel will
//! read or write through the pointer. The contract each function upholds is
//! stated at its `unsafe` block. Everything else in the crate is safe code
//! (`#![deny(unsafe_code)]` at the root, allowed only here).
#![allow(unsafe_code)]

use core::ffi::c_void;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};

use rustix::io;
use rustix::ioctl::{ioctl, Ioctl, IoctlOutput, NoArg, Opcode, Setter, Updater};

use crate::abi::kvm::{
    Irqchip, IOCTL_CHECK_EXTENSION, IOCTL_CREATE_IRQCHIP, IOCTL_CREATE_VM, IOCTL_GET_API_VERSION,
    IOCTL_GET_IRQCHIP, IOCTL_IRQFD as KVM_IRQFD, IOCTL_SET_GSI_ROUTING,
};
use crate::abi::module::{
    Ack, Batch, GsiStats, Info, Mask, Route, IOCTL_ACK, IOCTL_GET_INFO, IOCTL_GSI_STATS,
    IOCTL_IRQFD, IOCTL_IRQFD_BATCH, IOCTL_SET_MASK, IOCTL_SET_ROUTE,
};
use crate::abi::RawIrqfd;

/// An `_IO` command whose argument is an integer (not a pointer) and whose
/// result is the ioctl's non-negative return value.
struct IntCommand {
    opcode: Opcode,
    arg: usize,
}

// SAFETY: `as_ptr` hands the kernel an integer disguised as a pointer, which
// it never dereferences for the `_IO` commands this type is built with (see
// `int_command`); `output_from_ptr` only reads the return value. Nothing in
// userspace is written (`IS_MUTATING = false`).
unsafe impl Ioctl for IntCommand {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        self.opcode
    }

    fn as_ptr(&mut self) -> *mut c_void {
        core::ptr::without_provenance_mut(self.arg)
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// The KVM `_IO` commands that take an integer and return one.
#[derive(Clone, Copy)]
enum IntCmd {
    GetApiVersion,
    CheckExtension,
    CreateVm,
}

/// Issues one of the [`IntCmd`] commands.
fn int_command(fd: BorrowedFd<'_>, cmd: IntCmd, arg: usize) -> io::Result<IoctlOutput> {
    let opcode = match cmd {
        IntCmd::GetApiVersion => IOCTL_GET_API_VERSION,
        IntCmd::CheckExtension => IOCTL_CHECK_EXTENSION,
        IntCmd::CreateVm => IOCTL_CREATE_VM,
    };
    // SAFETY: `KVM_GET_API_VERSION`, `KVM_CHECK_EXTENSION` and
    // `KVM_CREATE_VM` take their argument by value and touch no userspace
    // memory; on other descriptors they fail with `ENOTTY`.
    unsafe { ioctl(fd, IntCommand { opcode, arg }) }
}

/// `KVM_GET_API_VERSION` on a `/dev/kvm` descriptor.
pub(crate) fn kvm_get_api_version(kvm: BorrowedFd<'_>) -> io::Result<i32> {
    int_command(kvm, IntCmd::GetApiVersion, 0)
}

/// `KVM_CHECK_EXTENSION(cap)` on a `/dev/kvm` or VM descriptor.
pub(crate) fn kvm_check_extension(fd: BorrowedFd<'_>, cap: usize) -> io::Result<i32> {
    int_command(fd, IntCmd::CheckExtension, cap)
}

/// `KVM_CREATE_VM(machine_type)`: a new VM descriptor.
pub(crate) fn kvm_create_vm(kvm: BorrowedFd<'_>, machine_type: usize) -> io::Result<OwnedFd> {
    let fd = int_command(kvm, IntCmd::CreateVm, machine_type)?;
    if fd < 0 {
        // A successful ioctl never returns a negative value; be defensive.
        return Err(io::Errno::INVAL);
    }
    // SAFETY: on success `KVM_CREATE_VM` returns a new descriptor installed in
    // this process's table for the caller to own; nothing else refers to it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `KVM_CREATE_IRQCHIP` on a VM descriptor.
pub(crate) fn kvm_create_irqchip(vm: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `KVM_CREATE_IRQCHIP` is `_IO` and ignores its argument.
    unsafe { ioctl(vm, NoArg::<IOCTL_CREATE_IRQCHIP>::new()) }
}

/// `KVM_GET_IRQCHIP` on a VM descriptor: the state of controller
/// `chip_id`.
pub(crate) fn kvm_get_irqchip(vm: BorrowedFd<'_>, chip_id: u32) -> io::Result<Irqchip> {
    let mut chip = Irqchip::new(chip_id);
    // SAFETY: `_IOWR` of `struct kvm_irqchip`, mirrored by `Irqchip` (520
    // bytes, asserted in `abi`): the kernel reads `chip_id` and writes at
    // most the 520 bytes of `chip`, which is exclusively borrowed and valid
    // for any bytes (all fields are integers).
    unsafe { ioctl(vm, Updater::<IOCTL_GET_IRQCHIP, Irqchip>::new(&mut chip))? };
    Ok(chip)
}

/// `KVM_IRQFD` on a VM descriptor.
pub(crate) fn kvm_irqfd(vm: BorrowedFd<'_>, req: RawIrqfd) -> io::Result<()> {
    // SAFETY: `KVM_IRQFD` is `_IOW` of `struct kvm_irqfd`, which `RawIrqfd`
    // mirrors (32 bytes, asserted in `abi`); the kernel only reads it. The
    // descriptor numbers inside are resolved by the kernel, not by us.
    unsafe { ioctl(vm, Setter::<KVM_IRQFD, RawIrqfd>::new(req)) }
}

/// The argument of `KVM_SET_GSI_ROUTING`: a `struct kvm_irq_routing` header
/// followed by its entries, as native-endian words.
struct SetGsiRouting<'a> {
    words: &'a mut [u32],
}

// SAFETY: the kernel reads `8 + nr * 48` bytes from the pointer, where `nr`
// is the buffer's first word; `kvm_set_gsi_routing` builds the buffer so that
// exactly that many bytes are there. The kernel writes nothing back.
unsafe impl Ioctl for SetGsiRouting<'_> {
    type Output = ();
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        IOCTL_SET_GSI_ROUTING
    }

    fn as_ptr(&mut self) -> *mut c_void {
        self.words.as_mut_ptr().cast()
    }

    unsafe fn output_from_ptr(_: IoctlOutput, _: *mut c_void) -> io::Result<()> {
        Ok(())
    }
}

/// `KVM_SET_GSI_ROUTING` with `entries` (each the twelve words of a
/// `struct kvm_irq_routing_entry`): replaces the VM's whole routing table.
pub(crate) fn kvm_set_gsi_routing(vm: BorrowedFd<'_>, entries: &[[u32; 12]]) -> io::Result<()> {
    let nr = u32::try_from(entries.len()).map_err(|_| io::Errno::INVAL)?;
    let mut words = Vec::with_capacity(2 + entries.len() * 12);
    words.push(nr);
    words.push(0); // flags
    for e in entries {
        words.extend_from_slice(e);
    }
    // SAFETY: `words` holds the header (`nr`, `flags`) then exactly `nr`
    // entries of 48 bytes each, which is what the kernel reads (see the
    // `Ioctl` impl); it outlives the call.
    unsafe { ioctl(vm, SetGsiRouting { words: &mut words }) }
}

/// `RUST_IRQFD_IRQFD` on a module context.
pub(crate) fn module_irqfd(ctx: BorrowedFd<'_>, req: RawIrqfd) -> io::Result<()> {
    // SAFETY: `_IOW` of `struct rust_irqfd`, mirrored by `RawIrqfd` (32
    // bytes, asserted in `abi`); the kernel only reads it.
    unsafe { ioctl(ctx, Setter::<IOCTL_IRQFD, RawIrqfd>::new(req)) }
}

/// `RUST_IRQFD_IRQFD_BATCH` on a module context: every entry of `entries`
/// in one call, with the batch flags `flags`. Returns the result and the
/// `error_index` the kernel wrote back (`entries.len()` when no entry is at
/// fault). `E2BIG` for more entries than a `u32` counts; the kernel's own
/// limit (`RUST_IRQFD_BATCH_MAX`) is the kernel's to enforce.
pub(crate) fn module_irqfd_batch(
    ctx: BorrowedFd<'_>,
    entries: &[RawIrqfd],
    flags: u32,
) -> (io::Result<()>, u32) {
    let Ok(nr) = u32::try_from(entries.len()) else {
        return (Err(io::Errno::TOOBIG), u32::MAX);
    };
    let mut batch = Batch {
        entries: entries.as_ptr() as u64,
        nr,
        flags,
        error_index: nr,
        pad: 0,
    };
    // SAFETY: `_IOWR` of `struct rust_irqfd_batch`, mirrored by `Batch` (24
    // bytes, asserted in `abi`): the kernel reads and writes that many bytes
    // of `batch`, exclusively borrowed and valid for any bytes (all fields
    // are integers). Through `batch.entries` it reads `nr` `struct
    // rust_irqfd`s (32 bytes each, `RawIrqfd`), which is what `entries`
    // holds, borrowed for the whole call; it never writes them.
    let r = unsafe { ioctl(ctx, Updater::<IOCTL_IRQFD_BATCH, Batch>::new(&mut batch)) };
    (r, batch.error_index)
}

/// `RUST_IRQFD_GET_INFO` on a module context.
pub(crate) fn module_get_info(ctx: BorrowedFd<'_>) -> io::Result<Info> {
    let mut info = Info::default();
    // SAFETY: `_IOR` of `struct rust_irqfd_info`, mirrored by `Info` (32
    // bytes, asserted in `abi`): the kernel writes exactly that many bytes
    // into `info`, which is exclusively borrowed and valid for any bytes.
    unsafe { ioctl(ctx, Updater::<IOCTL_GET_INFO, Info>::new(&mut info))? };
    Ok(info)
}

/// `RUST_IRQFD_GSI_STATS` on a module context.
pub(crate) fn module_gsi_stats(ctx: BorrowedFd<'_>, gsi: u32) -> io::Result<GsiStats> {
    let mut st = GsiStats {
        gsi,
        ..GsiStats::default()
    };
    // SAFETY: `_IOWR` of `struct rust_irqfd_gsi_stats`, mirrored by
    // `GsiStats` (72 bytes, asserted in `abi`): the kernel reads and writes
    // exactly that many bytes of `st`, exclusively borrowed and valid for any
    // bytes (all fields are integers).
    unsafe { ioctl(ctx, Updater::<IOCTL_GSI_STATS, GsiStats>::new(&mut st))? };
    Ok(st)
}

/// `RUST_IRQFD_SET_ROUTE` on a module context.
pub(crate) fn module_set_route(ctx: BorrowedFd<'_>, route: Route) -> io::Result<()> {
    // SAFETY: `_IOW` of `struct rust_irqfd_route`, mirrored by `Route` (24
    // bytes, asserted in `abi`); the kernel only reads it.
    unsafe { ioctl(ctx, Setter::<IOCTL_SET_ROUTE, Route>::new(route)) }
}

/// `RUST_IRQFD_SET_MASK` on a module context.
pub(crate) fn module_set_mask(ctx: BorrowedFd<'_>, mask: Mask) -> io::Result<()> {
    // SAFETY: `_IOW` of `struct rust_irqfd_mask`, mirrored by `Mask` (8
    // bytes, asserted in `abi`); the kernel only reads it.
    unsafe { ioctl(ctx, Setter::<IOCTL_SET_MASK, Mask>::new(mask)) }
}

/// `RUST_IRQFD_ACK`: `_IOW` of a `struct rust_irqfd_ack` whose result is
/// the ioctl's return value (the number of resamplefds signalled), which
/// rustix's `Setter` would discard.
struct AckCommand {
    arg: Ack,
}

// SAFETY: `as_ptr` points at `arg`, a `struct rust_irqfd_ack` (8 bytes,
// asserted in `abi`) that lives as long as `self`; the kernel only reads it
// (`IS_MUTATING = false`). `output_from_ptr` returns the ioctl's return value
// and reads no memory.
unsafe impl Ioctl for AckCommand {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        IOCTL_ACK
    }

    fn as_ptr(&mut self) -> *mut c_void {
        (&raw mut self.arg).cast()
    }

    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// `RUST_IRQFD_ACK` on a module context: how many resamplefds it signalled.
pub(crate) fn module_ack(ctx: BorrowedFd<'_>, gsi: u32) -> io::Result<u32> {
    // SAFETY: see `AckCommand`: the argument is a valid `struct
    // rust_irqfd_ack` for the duration of the call.
    let n = unsafe {
        ioctl(
            ctx,
            AckCommand {
                arg: Ack { gsi, pad: 0 },
            },
        )?
    };
    // The ABI returns a count >= 0; a negative value would be an error the
    // syscall layer already turned into `Err`. Be defensive all the same.
    u32::try_from(n).map_err(|_| io::Errno::RANGE)
}

/// The unsafe glue of the `kvm-ioctls` backend: kvm-ioctls takes its own
/// `EventFd` type, and its `VmFd` has no `AsFd`.
#[cfg(feature = "kvm-ioctls")]
pub(crate) mod rust_vmm {
    use core::mem::ManuallyDrop;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

    use kvm_ioctls::VmFd;
    use vmm_sys_util::eventfd::EventFd;

    /// The descriptor `vm` owns, borrowed for as long as `vm` is.
    pub(crate) fn vm_fd(vm: &VmFd) -> BorrowedFd<'_> {
        // SAFETY: `VmFd` owns an open descriptor and closes it only when
        // dropped; the borrow cannot outlive `vm`.
        unsafe { BorrowedFd::borrow_raw(vm.as_raw_fd()) }
    }

    /// Calls `f` with `fd` seen as kvm-ioctls' `EventFd`, which is only read
    /// for its number (`as_raw_fd`) and never closed.
    pub(crate) fn with_eventfd<R>(fd: BorrowedFd<'_>, f: impl FnOnce(&EventFd) -> R) -> R {
        // SAFETY: `fd` is open for the whole call (it is borrowed), and the
        // `EventFd` made from it is never dropped (`ManuallyDrop`), so it
        // does not close a descriptor it does not own, and does not outlive
        // the borrow (it is local to this call).
        let e = ManuallyDrop::new(unsafe { EventFd::from_raw_fd(fd.as_raw_fd()) });
        f(&e)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The misc device: each open is a context; ioctls decode the ABI; `read(2)` returns deliveries.
//!
//! This file is the only one that speaks the ABI ([`crate::uapi`]): the rest of the module works
//! in its own types, which are converted here on the way in and out.
//!
//! C header: [`include/linux/miscdevice.h`](srctree/include/linux/miscdevice.h)

use core::mem::{
    offset_of,
    size_of, //
};
use kernel::{
    fs::{
        File,
        Kiocb, //
    },
    iov::IovIterDest,
    miscdevice::{
        MiscDevice,
        MiscDeviceRegistration, //
    },
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    sync::{
        atomic::Relaxed,
        Arc, //
    },
    transmute::AsBytes,
    uaccess::{
        UserPtr,
        UserSlice, //
    }, //
};

use crate::{
    context::Context,
    fsext,
    irqchip::{
        IrqChip,
        Record, //
    },
    route::Route,
    sink::Sink,
    uapi::{
        self,
        AckArgs,
        Batch,
        Delivery,
        GsiStats,
        Info,
        IrqfdArgs,
        MaskArgs,
        RouteArgs, //
    }, //
};

/// Records one `read(2)` takes off the FIFO at a time. A batch lives on the stack (16 records, as
/// in the C reference), so that a read allocates nothing.
const READ_BATCH: usize = 16;

/// The route `RUST_IRQFD_SET_ROUTE` asks for, or `EINVAL` if it is not one.
fn route_from_args(r: &RouteArgs) -> Result<Route> {
    if r.pad != 0 {
        return Err(EINVAL);
    }
    match r.flags {
        0 if r.msi_addr == 0 && r.msi_data == 0 => Ok(Route::Line),
        // An MSI address is a nonzero, dword-aligned bus address.
        uapi::ROUTE_MSI if r.msi_addr != 0 && r.msi_addr & 3 == 0 => Ok(Route::Msi {
            addr: r.msi_addr,
            data: r.msi_data,
        }),
        _ => Err(EINVAL),
    }
}

/// The number of entries of `batch` and the bytes of its array, or `EINVAL` for a bad header.
fn batch_size(batch: &Batch) -> Result<(usize, usize)> {
    if batch.flags & !uapi::FLAG_DEASSIGN != 0
        || batch.pad != 0
        || batch.nr == 0
        || batch.nr > uapi::BATCH_MAX
    {
        return Err(EINVAL);
    }
    let nr = usize::try_from(batch.nr)?;
    let len = nr.checked_mul(size_of::<IrqfdArgs>()).ok_or(EINVAL)?;
    Ok((nr, len))
}

/// Whether `e` may be an entry of `batch`, in a context of `nr_gsis` GSIs: each entry is plain
/// (the batch's flags say what to do), and an assign's GSI is in range.
fn batch_entry_ok(batch: &Batch, e: &IrqfdArgs, nr_gsis: u32) -> bool {
    let plain = e.flags == 0 && e.pad.iter().all(|&b| b == 0);
    let in_range = batch.flags & uapi::FLAG_DEASSIGN != 0 || e.gsi < nr_gsis;
    plain && in_range
}

/// The record `read(2)` hands out for `record`.
fn delivery(record: &Record) -> Delivery {
    let (msi_flag, msi_addr, msi_data) = match record.route {
        Route::Line => (0, 0, 0),
        Route::Msi { addr, data } => (uapi::DELIVERY_MSI, addr, data),
    };
    let level_flag = if record.level {
        uapi::DELIVERY_LEVEL
    } else {
        0
    };
    Delivery {
        seq: record.seq,
        gsi: record.gsi,
        flags: msi_flag | level_flag,
        count: record.count,
        msi_addr,
        msi_data,
        pad: 0,
    }
}

/// An open `/dev/rust_irqfd`: one context with the virtual interrupt controller as its sink.
pub(crate) struct IrqfdDevice {
    ctx: Arc<Context<IrqChip>>,
}

impl IrqfdDevice {
    fn irqfd(&self, args: &IrqfdArgs) -> Result {
        if args.flags & !(uapi::FLAG_DEASSIGN | uapi::FLAG_RESAMPLE) != 0 {
            return Err(EINVAL);
        }
        if args.pad.iter().any(|&b| b != 0) {
            return Err(EINVAL);
        }
        if args.flags & uapi::FLAG_DEASSIGN != 0 {
            return self.ctx.deassign(args.fd, args.gsi);
        }
        let resample = (args.flags & uapi::FLAG_RESAMPLE != 0).then_some(args.resamplefd);
        self.ctx.assign(args.fd, args.gsi, resample).map(drop)
    }

    /// `RUST_IRQFD_IRQFD_BATCH`: decodes the batch, runs it, and reports `error_index` back
    /// (also on failure).
    ///
    /// `error_index` is `nr` unless an entry is at fault, and it is written before anything is
    /// done: a caller whose `error_index` cannot be written gets `EFAULT` with nothing done, never
    /// `EFAULT` after a batch that went through (an assign batch is all or nothing). Only that
    /// field is written, as in the C reference.
    fn irqfd_batch(&self, user: UserPtr) -> Result {
        let batch = UserSlice::new(user, size_of::<Batch>())
            .reader()
            .read::<Batch>()?;
        let error_index = user.wrapping_byte_add(offset_of!(Batch, error_index));
        let report = |index: u32| {
            UserSlice::new(error_index, size_of::<u32>())
                .writer()
                .write(&index)
        };
        report(batch.nr)?;
        match self.run_batch(&batch) {
            Ok(()) => Ok(()),
            Err((None, e)) => Err(e),
            // The batch left nothing done (refused, or rolled back): if the index cannot be
            // written either, `EFAULT` says so, as it would for the header.
            Err((Some(i), e)) => report(i).and(Err(e)),
        }
    }

    /// The batch itself; the index of the entry at fault, if one is, with the error.
    fn run_batch(&self, batch: &Batch) -> Result<(), (Option<u32>, Error)> {
        let (nr, len) = batch_size(batch).map_err(|e| (None, e))?;
        let addr = usize::try_from(batch.entries).map_err(|_| (None, EFAULT))?;
        let mut reader = UserSlice::new(UserPtr::from_addr(addr), len).reader();
        let mut entries = KVec::with_capacity(nr, GFP_KERNEL).map_err(|e| (None, e.into()))?;
        // The whole array is read before any entry is checked: `entries` and `nr` are the
        // header's, so an array that cannot be read whole is a bad header (`EFAULT`, no entry at
        // fault), even past an entry that is bad itself.
        let mut bad = None;
        for i in 0..batch.nr {
            let e = reader.read::<IrqfdArgs>().map_err(|e| (None, e))?;
            if bad.is_none() && !batch_entry_ok(batch, &e, self.ctx.sink.nr_gsis()) {
                bad = Some(i);
            }
            // Cannot fail: the capacity is `nr`.
            let _ = entries.push_within_capacity((e.fd, e.gsi));
        }
        if let Some(i) = bad {
            return Err((Some(i), EINVAL));
        }
        let run = if batch.flags & uapi::FLAG_DEASSIGN != 0 {
            self.ctx.deassign_batch(&entries)
        } else {
            self.ctx.assign_batch(&entries)
        };
        run.map_err(|(i, e)| (i.and_then(|i| u32::try_from(i).ok()), e))
    }

    fn info(&self) -> Info {
        Info {
            version: uapi::ABI_VERSION,
            nr_gsis: self.ctx.sink.nr_gsis(),
            // The injection work injects every signal it was given (`Irqfd::deferred` counts
            // them), so no signal is merged on any path.
            flags: uapi::INFO_COUNTS_SIGNALS
                | if self.ctx.deferred_only {
                    uapi::INFO_DEFERRED_ONLY
                } else {
                    0
                },
            nr_irqfds: self.ctx.nr_irqfds(),
            shutdowns: self.ctx.shutdowns.load(Relaxed),
            max_irqfds: self.ctx.max_irqfds,
            reserved: [0; 4],
        }
    }

    fn gsi_stats(&self, mut stats: GsiStats) -> Result<GsiStats> {
        if stats.pad != 0 {
            return Err(EINVAL);
        }
        let line = self.ctx.sink.stats(stats.gsi)?;
        stats.injected = line.injected;
        stats.raised = line.raised;
        stats.coalesced = line.coalesced;
        stats.delivered = line.delivered;
        stats.pending = line.pending;
        stats.latched = line.latched;
        stats.acks = line.acks;
        stats.masked = u32::from(line.masked);
        stats.asserted = u32::from(line.asserted);
        Ok(stats)
    }

    fn set_route(&self, args: &RouteArgs) -> Result {
        self.ctx.set_route(args.gsi, route_from_args(args)?)
    }

    fn set_mask(&self, args: &MaskArgs) -> Result {
        if args.flags & !uapi::MASK_MASKED != 0 {
            return Err(EINVAL);
        }
        self.ctx
            .set_mask(args.gsi, args.flags & uapi::MASK_MASKED != 0)
    }

    fn ack(&self, args: &AckArgs) -> Result<u32> {
        if args.pad != 0 {
            return Err(EINVAL);
        }
        self.ctx.ack(args.gsi)
    }
}

#[vtable]
impl MiscDevice for IrqfdDevice {
    type Ptr = Pin<KBox<Self>>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<Pin<KBox<Self>>> {
        let params = crate::params::get();
        let ctx = Context::new(
            IrqChip::new(params.nr_gsis)?,
            params.nr_gsis,
            params.deferred_only,
            params.max_irqfds,
        )?;
        KBox::pin(Self { ctx }, GFP_KERNEL_ACCOUNT).map_err(Into::into)
    }

    fn show_fdinfo(device: Pin<&Self>, m: &SeqFile, _file: &File) {
        // The format is ABI (Documentation/rust_irqfd.rst, "fdinfo"); the C reference prints the
        // same lines.
        let ctx = &device.ctx;
        seq_print!(m, "rust_irqfd-abi:\t{}\n", uapi::ABI_VERSION);
        seq_print!(m, "nr_gsis:\t{}\n", ctx.sink.nr_gsis());
        seq_print!(m, "max_irqfds:\t{}\n", ctx.max_irqfds);
        seq_print!(m, "irqfds:\t{}\n", ctx.nr_irqfds());
        seq_print!(m, "shutdowns:\t{}\n", ctx.shutdowns.load(Relaxed));
        let listed = ctx.for_each_irqfd(|i| {
            seq_print!(
                m,
                "irqfd:\tgsi={} fd={} signals={} fast={} deferred={} coalesced={} masked={} \
                 resample={}\n",
                i.gsi,
                i.fd,
                i.signals,
                i.fast,
                i.deferred,
                i.coalesced,
                i.masked,
                u32::from(i.resample)
            );
        });
        if listed.is_err() {
            seq_print!(m, "irqfd-list:\tENOMEM\n");
        }
    }

    fn release(device: Pin<KBox<Self>>, _file: &File) {
        // Nothing of the context outlives the file: every irqfd is shut down before we return.
        device.ctx.release();
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let mut nonblock = fsext::nonblocking(&kiocb);
        let me = kiocb.file();
        let record = size_of::<Delivery>();
        if iov.len() < record {
            return Err(EINVAL);
        }
        let mut records = [Record::default(); READ_BATCH];
        let mut copied = 0;
        // As many whole records as fit, in batches: only the first wait may block. Records are
        // popped before they are copied; those a fault keeps from reaching userspace are put back,
        // pending again, and the whole records copied before the fault are the result (`EFAULT`
        // if there are none).
        'batches: while iov.len() >= record {
            let max = (iov.len() / record).min(READ_BATCH);
            let batch = records.get_mut(..max).unwrap_or_default();
            let n = match me.ctx.sink.pop(batch, nonblock) {
                Ok(n) => n,
                Err(e) if copied == 0 => return Err(e),
                Err(_) => break,
            };
            nonblock = true;
            let popped = batch.get(..n).unwrap_or_default();
            for (i, record) in popped.iter().enumerate() {
                let delivery = delivery(record);
                let bytes = delivery.as_bytes();
                if iov.copy_to_iter(bytes) < bytes.len() {
                    me.ctx.sink.put_back(popped.get(i..).unwrap_or_default());
                    break 'batches;
                }
                copied += bytes.len();
            }
            if n < max {
                break;
            }
        }
        if copied == 0 {
            return Err(EFAULT);
        }
        Ok(copied)
    }

    fn ioctl(me: Pin<&Self>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            uapi::IOCTL_IRQFD => {
                let args = UserSlice::new(user, size_of::<IrqfdArgs>())
                    .reader()
                    .read::<IrqfdArgs>()?;
                me.irqfd(&args)?;
            }
            uapi::IOCTL_IRQFD_BATCH => me.irqfd_batch(user)?,
            uapi::IOCTL_GET_INFO => {
                UserSlice::new(user, size_of::<Info>())
                    .writer()
                    .write(&me.info())?;
            }
            uapi::IOCTL_GSI_STATS => {
                let (mut reader, mut writer) =
                    UserSlice::new(user, size_of::<GsiStats>()).reader_writer();
                let stats = me.gsi_stats(reader.read::<GsiStats>()?)?;
                writer.write(&stats)?;
            }
            uapi::IOCTL_SET_ROUTE => {
                let args = UserSlice::new(user, size_of::<RouteArgs>())
                    .reader()
                    .read::<RouteArgs>()?;
                me.set_route(&args)?;
            }
            uapi::IOCTL_SET_MASK => {
                let args = UserSlice::new(user, size_of::<MaskArgs>())
                    .reader()
                    .read::<MaskArgs>()?;
                me.set_mask(&args)?;
            }
            uapi::IOCTL_ACK => {
                let args = UserSlice::new(user, size_of::<AckArgs>())
                    .reader()
                    .read::<AckArgs>()?;
                return Ok(isize::try_from(me.ack(&args)?)?);
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

#[kunit_tests(rust_irqfd_uapi)]
mod tests {
    use super::*;

    fn route(flags: u32, msi_addr: u64, msi_data: u32, pad: u32) -> RouteArgs {
        RouteArgs {
            gsi: 0,
            flags,
            msi_addr,
            msi_data,
            pad,
        }
    }

    fn batch(nr: u32, flags: u32, pad: u32) -> Batch {
        Batch {
            entries: 0x1000,
            nr,
            flags,
            error_index: 0,
            pad,
        }
    }

    fn entry(gsi: u32, flags: u32, pad: [u8; 16]) -> IrqfdArgs {
        IrqfdArgs {
            fd: 3,
            gsi,
            flags,
            resamplefd: 0,
            pad,
        }
    }

    #[test]
    fn routes_are_checked() -> Result {
        kunit_check!(route_from_args(&route(0, 0, 0, 0)) == Ok(Route::Line));
        let msi = route_from_args(&route(uapi::ROUTE_MSI, 0xfee0_0000, 0x41, 0));
        kunit_check!(
            msi == Ok(Route::Msi {
                addr: 0xfee0_0000,
                data: 0x41
            })
        );
        // A line carries no message; an MSI address is nonzero and dword-aligned.
        kunit_check!(route_from_args(&route(0, 0xfee0_0000, 0, 0)) == Err(EINVAL));
        kunit_check!(route_from_args(&route(0, 0, 1, 0)) == Err(EINVAL));
        kunit_check!(route_from_args(&route(uapi::ROUTE_MSI, 0, 0x41, 0)) == Err(EINVAL));
        kunit_check!(route_from_args(&route(uapi::ROUTE_MSI, 0xfee0_0002, 0, 0)) == Err(EINVAL));
        kunit_check!(route_from_args(&route(2, 0xfee0_0000, 0, 0)) == Err(EINVAL));
        kunit_check!(route_from_args(&route(uapi::ROUTE_MSI, 0xfee0_0000, 0, 1)) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn batch_headers_are_checked() -> Result {
        let size = size_of::<IrqfdArgs>();
        kunit_check!(batch_size(&batch(1, 0, 0)) == Ok((1, size)));
        kunit_check!(
            batch_size(&batch(uapi::BATCH_MAX, uapi::FLAG_DEASSIGN, 0)) == Ok((4096, 4096 * size))
        );
        kunit_check!(batch_size(&batch(0, 0, 0)) == Err(EINVAL));
        kunit_check!(batch_size(&batch(uapi::BATCH_MAX + 1, 0, 0)) == Err(EINVAL));
        kunit_check!(batch_size(&batch(1, uapi::FLAG_RESAMPLE, 0)) == Err(EINVAL));
        kunit_check!(batch_size(&batch(1, 0, 1)) == Err(EINVAL));
        Ok(())
    }

    #[test]
    fn batch_entries_are_plain() -> Result {
        let assign = batch(1, 0, 0);
        let deassign = batch(1, uapi::FLAG_DEASSIGN, 0);
        kunit_check!(batch_entry_ok(&assign, &entry(7, 0, [0; 16]), 8));
        // An assign's GSI must be in range; a deassign's need not (it matches nothing).
        kunit_check!(!batch_entry_ok(&assign, &entry(8, 0, [0; 16]), 8));
        kunit_check!(batch_entry_ok(&deassign, &entry(8, 0, [0; 16]), 8));
        // The batch's flags say what to do, not the entry's; padding is zero.
        kunit_check!(!batch_entry_ok(
            &assign,
            &entry(0, uapi::FLAG_DEASSIGN, [0; 16]),
            8
        ));
        kunit_check!(!batch_entry_ok(
            &deassign,
            &entry(0, uapi::FLAG_RESAMPLE, [0; 16]),
            8
        ));
        let mut pad = [0; 16];
        pad[15] = 1;
        kunit_check!(!batch_entry_ok(&assign, &entry(0, 0, pad), 8));
        Ok(())
    }
}

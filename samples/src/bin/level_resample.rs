// SPDX-License-Identifier: GPL-2.0
//! level-resample: a level-triggered interrupt (legacy PCI INTx) with a
//! resample irqfd, on the module's interrupt controller.
//!
//! usage: level-resample [DEVICE]   (default /dev/rust_irqfd)
//!
//! A device raises its INTx line by signalling an eventfd bound with
//! RESAMPLE: the line is asserted and stays asserted; further signals
//! coalesce into it. The guest's end of interrupt (here, `ack`) deasserts
//! it and signals the resample eventfd, which tells the device model to
//! check whether it still needs service and, if so, raise the line again.
//! Two devices sharing one line share its resampler: one ack signals both.
//! Exits non-zero if anything does not go as the ABI says.

use std::process::ExitCode;

use rust_irqfd_samples::{describe, describe_stats, device_arg, fire, Story};
use rust_irqfd_vmm::abi::module::Delivery;
use rust_irqfd_vmm::{Error, GsiAllocator, IrqFd, ModuleBackend};

/// The legacy lines, kept away from MSI routes.
const INTX_LINES: std::ops::Range<u32> = 16..24;
/// Device A's INTx, alone on its line.
const LINE_A: u32 = 20;
/// The line devices B and C share.
const LINE_BC: u32 = 21;

fn main() -> ExitCode {
    let mut story = Story::new("level-resample");
    let result = run(&mut story, &device_arg());
    story.finish(result)
}

/// Reads the records pending now and narrates them.
fn records(story: &Story, ctx: &ModuleBackend) -> Result<Vec<Delivery>, Error> {
    let d = ctx.read_deliveries()?;
    for r in &d {
        story.say(format_args!("delivery {}", describe(r)));
    }
    Ok(d)
}

fn run(story: &mut Story, path: &str) -> Result<(), Error> {
    story.section(format_args!("Open {path}: one context, the VM"));
    let ctx = ModuleBackend::open(path)?;
    let gsis = GsiAllocator::new(ctx.info()?.nr_gsis.min(GsiAllocator::DEFAULT_CAPACITY));
    let reserved = gsis.reserve(INTX_LINES);
    let irqfd = IrqFd::with_allocator(ctx, gsis);
    let ctx = irqfd.backend();
    story.say(format_args!(
        "GSIs {INTX_LINES:?} are INTx lines: {reserved} reserved, so no MSI route gets one"
    ));

    story.section(format_args!(
        "Device A's INTx: a resample irqfd on GSI {LINE_A}"
    ));
    let a = irqfd.new_level_line(LINE_A)?;
    story.say("an eventfd to raise the line, a resample eventfd the kernel signals at EOI");

    story.section("Device A raises its line");
    fire(ctx, a.event(), LINE_A)?;
    let d = records(story, ctx)?;
    story.expect(
        d.len() == 1 && d.iter().all(|r| r.is_level() && r.count == 1),
        "one level record",
    );
    story.expect_eq("line asserted", a.is_asserted()?, true);

    story.section("Device A signals twice more before the guest's EOI");
    let mut st = ctx.gsi_stats(LINE_A)?;
    for _ in 0..2 {
        st = fire(ctx, a.event(), LINE_A)?;
    }
    story.say(describe_stats(&st));
    story.expect_eq(
        "records (the asserted line absorbs them)",
        records(story, ctx)?.len(),
        0,
    );
    story.expect_eq("coalesced into the asserted line", st.coalesced, 2);
    story.expect_eq(
        "resample eventfd (no EOI yet)",
        a.resample().try_read()?,
        None,
    );

    story.section("The guest EOIs the line (ack)");
    let n = a.ack()?;
    story.expect_eq("resample eventfds signalled", n, 1);
    story.expect_eq(
        "device A's resample eventfd",
        a.resample().try_read()?,
        Some(1),
    );
    story.expect_eq("line asserted", a.is_asserted()?, false);
    story.say("the device model checks its state: it still needs service, so it fires again");

    story.section("Device A fires again");
    fire(ctx, a.event(), LINE_A)?;
    let d = records(story, ctx)?;
    story.expect(
        d.len() == 1 && d.iter().all(Delivery::is_level),
        "a new level record",
    );
    story.expect_eq("ack", a.ack()?, 1);
    story.expect_eq("resample", a.resample().try_read()?, Some(1));
    story.expect_eq("a second ack, line deasserted", a.ack()?, 0);
    let st = ctx.gsi_stats(LINE_A)?;
    story.say(describe_stats(&st));
    story.expect(
        st.acks == 2 && st.invariants_hold(),
        "2 acks counted, counters consistent",
    );

    story.section(format_args!(
        "Devices B and C share GSI {LINE_BC}: two resample irqfds, one resampler"
    ));
    let b = irqfd.new_level_line(LINE_BC)?;
    let c = irqfd.new_level_line(LINE_BC)?;
    fire(ctx, b.event(), LINE_BC)?;
    story.say("device B raised the line");
    let st = fire(ctx, c.event(), LINE_BC)?;
    story.say("device C raised it too (merged: the line is one wire)");
    let d = records(story, ctx)?;
    story.expect(
        d.len() == 1 && d.iter().all(|r| r.is_level() && r.count == 2),
        "one level record, count 2",
    );
    story.expect_eq("coalesced", st.coalesced, 1);
    let n = b.ack()?;
    story.expect_eq("one ack signals both resample eventfds", n, 2);
    story.expect_eq("device B's", b.resample().try_read()?, Some(1));
    story.expect_eq("device C's", c.resample().try_read()?, Some(1));

    story.section("Device B goes away while C holds the line");
    fire(ctx, c.event(), LINE_BC)?;
    records(story, ctx)?;
    drop(b);
    story.expect_eq("line still asserted (C remains)", c.is_asserted()?, true);
    story.expect_eq("ack signals C alone", c.ack()?, 1);
    story.expect_eq("device C's", c.resample().try_read()?, Some(1));

    story.section("The last device on the line goes away while it is asserted");
    fire(ctx, c.event(), LINE_BC)?;
    records(story, ctx)?;
    let acks = ctx.gsi_stats(LINE_BC)?.acks;
    drop(c);
    let st = ctx.gsi_stats(LINE_BC)?;
    story.say(describe_stats(&st));
    story.expect(
        st.asserted == 0 && st.acks == acks,
        "deasserted with it, without an ack",
    );

    story.section("Device A goes away");
    drop(a);
    story.expect_eq("irqfds active", ctx.info()?.nr_irqfds, 0);
    Ok(())
}

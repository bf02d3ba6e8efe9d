// SPDX-License-Identifier: GPL-2.0
//! msix-routes: what a VMM does when a guest programs a device's MSI-X
//! table, on the module's interrupt controller.
//!
//! usage: msix-routes [DEVICE]   (default /dev/rust_irqfd)
//!
//! Two vectors, each an `IrqFdRoute` (a GSI from the allocator and an
//! eventfd bound to it). The guest points them at MSI messages, retargets
//! one in place (no rebinding), masks it, the device fires while it is
//! masked (the route's pending bit, the PBA, is set), the guest retargets
//! it again and unmasks: one delivery, with the new route. Then the
//! module's own per-GSI mask, whose latch counts what it holds. Exits
//! non-zero if anything does not go as the ABI says.

use std::process::ExitCode;

use rust_irqfd_samples::{describe, describe_stats, device_arg, fire, Msi, Story, WAIT};
use rust_irqfd_vmm::abi::module::{Delivery, DELIVERY_MSI};
use rust_irqfd_vmm::{Error, IrqFd, IrqFdBackend, IrqFdRoute, ModuleBackend};

/// MSI messages: (address, data). The address selects the CPU (APIC ID in
/// bits 12..19), the data the vector.
const CPU0_VEC41: (u64, u32) = (0xfee0_0000, 0x41);
const CPU1_VEC42: (u64, u32) = (0xfee0_1000, 0x42);
const CPU2_VEC51: (u64, u32) = (0xfee0_2000, 0x51);
const CPU3_VEC61: (u64, u32) = (0xfee0_3000, 0x61);

fn main() -> ExitCode {
    let mut story = Story::new("msix-routes");
    let result = run(&mut story, &device_arg());
    story.finish(result)
}

/// The one record the last injection raised, for `route`.
fn delivery(
    story: &mut Story,
    ctx: &ModuleBackend,
    route: &IrqFdRoute<ModuleBackend>,
) -> Result<Option<Delivery>, Error> {
    let d = ctx.read_deliveries()?;
    for r in &d {
        story.say(format_args!("delivery {}", describe(r)));
    }
    let ok = d.len() == 1 && d.iter().all(|r| r.gsi == route.gsi());
    story.expect(ok, format_args!("one record, for GSI {}", route.gsi()));
    Ok(d.first().copied().filter(|_| ok))
}

fn run(story: &mut Story, path: &str) -> Result<(), Error> {
    story.section(format_args!("Open {path}: one context, the VM"));
    let irqfd = IrqFd::new(ModuleBackend::open(path)?);
    let ctx = irqfd.backend();
    story.say(format_args!(
        "{} GSIs; the allocator hands out {}",
        ctx.info()?.nr_gsis,
        irqfd.allocator().capacity()
    ));

    story.section("The device gets two MSI-X vectors: a route each");
    let v0 = irqfd.new_route()?;
    let v1 = irqfd.new_route()?;
    story.say(format_args!(
        "vector 0 -> GSI {}, vector 1 -> GSI {} (each an eventfd bound to its GSI)",
        v0.gsi(),
        v1.gsi()
    ));
    v0.set_msi(CPU0_VEC41.0, CPU0_VEC41.1)?;
    v1.set_msi(CPU1_VEC42.0, CPU1_VEC42.1)?;
    story.say("the guest programs vector 0 -> CPU 0 vector 0x41, vector 1 -> CPU 1 vector 0x42");

    story.section("The device fires vector 0");
    fire(ctx, v0.event(), v0.gsi())?;
    if let Some(d) = delivery(story, ctx, &v0)? {
        story.expect_eq("its route", Msi(d.msi()), Msi(Some(CPU0_VEC41)));
    }

    story.section("The guest retargets vector 0 to CPU 2 vector 0x51, in place");
    let irqfds = ctx.info()?.nr_irqfds;
    v0.set_msi(CPU2_VEC51.0, CPU2_VEC51.1)?;
    story.expect_eq(
        "irqfds active (nothing rebound)",
        ctx.info()?.nr_irqfds,
        irqfds,
    );
    fire(ctx, v0.event(), v0.gsi())?;
    if let Some(d) = delivery(story, ctx, &v0)? {
        story.expect_eq("the new route", Msi(d.msi()), Msi(Some(CPU2_VEC51)));
    }

    story.section("The guest masks vector 0; the device fires it 3 times");
    v0.mask()?;
    story.expect(v0.is_masked(), "masked");
    story.expect_eq("pending bit before", v0.pending()?, false);
    for _ in 0..3 {
        v0.event().signal()?;
    }
    story.say("(the route unbound its eventfd: the signals wait in its counter)");
    story.expect_eq(
        "pending bit (what the guest reads in the PBA)",
        v0.pending()?,
        true,
    );
    story.expect_eq("records while masked", ctx.read_deliveries()?.len(), 0);

    story.section("While it is masked, the guest retargets it to CPU 3 vector 0x61");
    v0.set_msi(CPU3_VEC61.0, CPU3_VEC61.1)?;
    story.say("(no delivery: the route only matters when the interrupt goes out)");

    story.section("The guest unmasks vector 0");
    let before = ctx.gsi_stats(v0.gsi())?.injected;
    v0.unmask()?;
    // Binding the eventfd again injects what is pending: at once in the
    // Rust module, from a work item in the C reference (as in KVM).
    let st = ctx.wait_gsi_stats(v0.gsi(), WAIT, |st| st.injected > before)?;
    story.expect_eq(
        "injections at unmask",
        st.injected.saturating_sub(before),
        1,
    );
    if let Some(d) = delivery(story, ctx, &v0)? {
        story.expect_eq(
            "the route at unmask time",
            Msi(d.msi()),
            Msi(Some(CPU3_VEC61)),
        );
        story.expect_eq("one interrupt for the pending bit", d.count, 1);
    }
    story.expect_eq("pending bit after", v0.pending()?, false);

    story.section("Mask, fire, and the VMM takes the pending bit itself");
    v0.mask()?;
    v0.event().signal()?;
    story.expect_eq("take_pending (read and clear)", v0.take_pending()?, true);
    story.expect_eq("pending bit after", v0.pending()?, false);
    let before = ctx.gsi_stats(v0.gsi())?.injected;
    v0.unmask()?;
    // Time for the C reference's work item, were there anything to inject.
    std::thread::sleep(std::time::Duration::from_millis(50));
    story.expect_eq(
        "injections at unmask (taken, not delivered)",
        ctx.gsi_stats(v0.gsi())?.injected.saturating_sub(before),
        0,
    );
    story.expect_eq(
        "records at unmask (taken, not delivered)",
        ctx.read_deliveries()?.len(),
        0,
    );

    story.section("The module's own mask: a per-GSI latch that counts");
    ctx.mask(v0.gsi())?;
    let mut st = ctx.gsi_stats(v0.gsi())?;
    for _ in 0..3 {
        st = fire(ctx, v0.event(), v0.gsi())?;
    }
    story.say(describe_stats(&st));
    story.expect_eq("interrupts held by the pending latch", st.latched, 3);
    story.expect_eq("records while masked", ctx.read_deliveries()?.len(), 0);
    ctx.unmask(v0.gsi())?;
    if let Some(d) = delivery(story, ctx, &v0)? {
        story.expect_eq("interrupts the unmask delivers", d.count, 3);
    }
    let st = ctx.gsi_stats(v0.gsi())?;
    story.say(describe_stats(&st));
    story.expect(
        st.latched == 0 && st.masked == 0 && st.invariants_hold(),
        "latch empty, unmasked, counters consistent",
    );

    story.section("Mask and unmask with nothing fired: nothing is delivered");
    v0.mask()?;
    v0.unmask()?;
    story.expect_eq("records", ctx.read_deliveries()?.len(), 0);

    story.section("Vector 1 was never touched by any of that");
    fire(ctx, v1.event(), v1.gsi())?;
    if let Some(d) = delivery(story, ctx, &v1)? {
        story.expect_eq("its route", Msi(d.msi()), Msi(Some(CPU1_VEC42)));
    }

    story.section("The guest disables vector 1: its route is cleared");
    v1.clear_msi()?;
    fire(ctx, v1.event(), v1.gsi())?;
    if let Some(d) = delivery(story, ctx, &v1)? {
        story.expect(
            d.flags & DELIVERY_MSI == 0 && d.msi_addr == 0 && d.msi_data == 0,
            "a plain line again: no MSI flag, address and data 0",
        );
    }

    story.section("A bad route is refused, and changes nothing");
    let bad = v1.set_msi(0xfee0_0002, 0x70);
    story.say(format_args!(
        "set_msi(0xfee00002, 0x70): {}",
        match &bad {
            Ok(()) => "accepted".to_owned(),
            Err(e) => e.to_string(),
        }
    ));
    story.expect(
        bad.as_ref().is_err_and(Error::is_invalid),
        "EINVAL: an MSI address is 4-byte aligned",
    );

    story.section("The device goes away: the routes are dropped");
    drop((v0, v1));
    story.expect_eq("irqfds active", ctx.info()?.nr_irqfds, 0);
    story.expect_eq("GSIs in use", irqfd.allocator().in_use(), 0);
    Ok(())
}

// SPDX-License-Identifier: GPL-2.0
//! irqfd-watch: bind an eventfd to a GSI, signal it, and watch the
//! deliveries.
//!
//! usage: irqfd-watch [DEVICE]   (default /dev/rust_irqfd)
//!
//! Exits non-zero if anything does not go as the ABI says.

use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rust_irqfd_samples::{describe, describe_stats, device_arg, fire, Story, WAIT};
use rust_irqfd_vmm::{Error, EventFd, IrqFdBackend, ModuleBackend};

const GSI: u32 = 5;

fn main() -> ExitCode {
    let mut story = Story::new("irqfd-watch");
    let result = run(&mut story, &device_arg());
    story.finish(result)
}

fn run(story: &mut Story, path: &str) -> Result<(), Error> {
    story.section(format_args!("Open {path}"));
    let ctx = ModuleBackend::open(path)?;
    let info = ctx.info()?;
    story.say(format_args!(
        "a context with {} GSIs (ABI v{}{})",
        info.nr_gsis,
        info.version,
        if info.deferred_only() {
            ", deferred injection only"
        } else {
            ""
        }
    ));

    story.section(format_args!("Bind an eventfd to GSI {GSI}"));
    let efd = EventFd::new()?;
    ctx.assign(efd.as_fd(), GSI)?;
    let active = ctx.info()?.nr_irqfds;
    story.expect_eq("irqfds active", active, 1);

    story.section("Signal it once");
    fire(&ctx, &efd, GSI)?;
    let d = ctx.wait_deliveries(WAIT)?;
    for r in &d {
        story.say(format_args!("delivery {}", describe(r)));
    }
    story.expect(
        d.len() == 1 && d.iter().all(|r| r.gsi == GSI && r.count == 1),
        "one record, count 1",
    );

    story.section("Signal it 3 times before reading");
    let before = ctx.gsi_stats(GSI)?;
    for _ in 0..3 {
        efd.signal()?;
    }
    // Directly injected, the three are in already; deferred, a work item
    // may take a moment (and may merge signals that arrived together).
    let after = ctx.wait_gsi_stats(GSI, Duration::from_millis(500), |st| {
        st.injected >= before.injected + 3
    })?;
    let injected = after.injected - before.injected;
    let d = ctx.read_deliveries()?;
    for r in &d {
        story.say(format_args!("delivery {}", describe(r)));
    }
    let total: u64 = d.iter().map(|r| r.count).sum();
    story.say(format_args!(
        "{injected} injection(s) in {} record(s): unread records coalesce",
        d.len()
    ));
    story.expect(
        (1..=3).contains(&injected) && d.len() == 1 && total == injected,
        "one record carrying every injection",
    );

    story.section(format_args!("GSI {GSI}'s counters"));
    let st = ctx.gsi_stats(GSI)?;
    story.say(describe_stats(&st));
    story.expect(
        st.invariants_hold(),
        "injected == coalesced + raised + latched, raised == delivered + pending",
    );

    story.section("Deassign it");
    ctx.deassign(efd.as_fd(), GSI)?;
    story.expect_eq("irqfds active", ctx.info()?.nr_irqfds, 0);
    efd.signal()?;
    story.expect(
        efd.is_signalled()?,
        "a signal after the deassign stays in the eventfd: nobody consumes it",
    );

    story.section("Bind a second eventfd and close it");
    let efd2 = EventFd::new()?;
    ctx.assign(efd2.as_fd(), GSI)?;
    let shutdowns = ctx.info()?.shutdowns;
    drop(efd2);
    let t0 = Instant::now();
    let mut info = ctx.info()?;
    while (info.nr_irqfds != 0 || info.shutdowns < shutdowns + 1) && t0.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(10));
        info = ctx.info()?;
    }
    story.say(format_args!(
        "the irqfd shut itself down (EPOLLHUP): {} active, {} shutdowns so far",
        info.nr_irqfds, info.shutdowns
    ));
    story.expect(
        info.nr_irqfds == 0 && info.shutdowns == shutdowns + 1,
        "closing a bound eventfd shuts its irqfd down",
    );

    story.section("Close the context");
    Ok(())
}

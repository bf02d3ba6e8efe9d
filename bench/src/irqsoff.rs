// SPDX-License-Identifier: GPL-2.0
//! `rust_irqfd_bench irqsoff`: the longest section with interrupts off
//! during each of a module's operations on `n` irqfds in one context, as
//! ftrace's irqsoff tracer reports it (`tracing_max_latency`, reset before
//! each operation).
//!
//! The tracer must be running already (`current_tracer` = `irqsoff`; see
//! `scripts/payload-irqsoff.sh`). The figure is the maximum over the whole
//! guest while the operation runs, so it includes whatever else ran then
//! (the shutdown work the operation waits for, timer interrupts): the trace's
//! start and end points and its stack trace say whose section it was.
//! Under `VM_ICOUNT=1` a guest nanosecond is one instruction, so the figures
//! repeat run to run.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use rust_irqfd_vmm::abi::module::BATCH_MAX;
use rust_irqfd_vmm::abi::RawIrqfd;
use rust_irqfd_vmm::{IrqFdBackend, ModuleBackend};

use crate::{elapsed_ns, err, eventfds, Res};

/// How long the hangup step waits for every shutdown (guest time).
const HANGUP_TIMEOUT: Duration = Duration::from_secs(600);

/// One operation's figures.
struct Measure {
    op: &'static str,
    /// What the operation did, for the table.
    what: String,
    /// `tracing_max_latency`, microseconds.
    max_us: u64,
    /// The operation's own time, nanoseconds.
    op_ns: u64,
    /// The longest section's start and end points and stack trace.
    started: String,
    ended: String,
    stack: Vec<String>,
}

impl Measure {
    fn json(&self) -> String {
        let stack: Vec<String> = self.stack.iter().map(|f| json_str(f)).collect();
        format!(
            r#"{{"op":{},"what":{},"max_us":{},"op_ns":{},"started":{},"ended":{},"stack":[{}]}}"#,
            json_str(self.op),
            json_str(&self.what),
            self.max_us,
            self.op_ns,
            json_str(&self.started),
            json_str(&self.ended),
            stack.join(",")
        )
    }
}

pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The irqsoff tracer's files under `dir` (tracefs).
struct Tracer<'a> {
    dir: &'a Path,
}

impl Tracer<'_> {
    fn reset(&self) -> Res<()> {
        let f = self.dir.join("tracing_max_latency");
        std::fs::write(&f, "0\n").map_err(|e| format!("{}: {e}", f.display()))
    }

    /// Runs `f` between a reset and a reading of the tracer.
    fn measure(&self, op: &'static str, what: String, f: impl FnOnce() -> Res<()>) -> Res<Measure> {
        self.reset()?;
        let t = Instant::now();
        f().map_err(|e| format!("{op}: {e}"))?;
        let op_ns = elapsed_ns(t);
        let f = self.dir.join("tracing_max_latency");
        let max = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let max_us = max
            .trim()
            .parse()
            .map_err(|e| format!("{}: {max:?}: {e}", f.display()))?;
        let f = self.dir.join("trace");
        let trace = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let point = |tag: &str| {
            trace
                .lines()
                .find_map(|l| l.trim_start_matches(['#', ' ']).strip_prefix(tag))
                .map_or_else(String::new, |s| s.trim().to_string())
        };
        let stack = trace
            .lines()
            .filter_map(|l| l.strip_prefix(" => "))
            .take(16)
            .map(|s| s.trim().to_string())
            .collect();
        Ok(Measure {
            op,
            what,
            max_us,
            op_ns,
            started: point("=> started at:"),
            ended: point("=> ended at:"),
            stack,
        })
    }
}

/// Batch entries binding each of `fds` to `gsi(i)`, `i` its index in the
/// whole set (`first` for `fds[0]`).
fn entries(fds: &[i32], first: usize, gsi: &impl Fn(usize) -> u32) -> Vec<RawIrqfd> {
    fds.iter()
        .enumerate()
        .map(|(i, &fd)| RawIrqfd::assign(fd as u32, gsi(first + i)))
        .collect()
}

/// Binds (or unbinds) `fds[range]` in batches of `max` entries.
fn batches(
    b: &ModuleBackend,
    fds: &[i32],
    range: std::ops::Range<usize>,
    max: usize,
    gsi: &impl Fn(usize) -> u32,
    deassign: bool,
) -> Res<()> {
    let mut i = range.start;
    while i < range.end {
        let j = (i + max).min(range.end);
        let part = fds.get(i..j).ok_or("batch range")?;
        b.irqfd_batch(&entries(part, i, gsi), deassign)
            .map_err(|(idx, e)| format!("batch at {i}: entry {idx}: {e}"))?;
        i = j;
    }
    Ok(())
}

fn nr_irqfds(b: &ModuleBackend) -> Res<u32> {
    Ok(b.info().map_err(err("info"))?.nr_irqfds)
}

fn expect_irqfds(b: &ModuleBackend, what: &str, want: usize) -> Res<()> {
    let got = nr_irqfds(b)?;
    if usize::try_from(got).ok() != Some(want) {
        return Err(format!("{what}: {got} irqfds bound, expected {want}"));
    }
    Ok(())
}

/// Every operation on `n` irqfds in one context of `path`, one measure each.
/// Batches are of `BATCH_MAX` entries, or `n` if smaller. GSI layout: irqfd
/// i is on GSI i for the first `nr_gsis - 1`, every other one on the last
/// GSI; `SET_ROUTE` is measured on GSI 0 (one irqfd) and on the last GSI
/// (all the others).
pub fn irqsoff(path: &str, n: usize, tracing: &Path) -> Res<String> {
    let tr = Tracer { dir: tracing };
    if n < 2 {
        return Err(format!("--n {n}: at least 2"));
    }
    let max = (BATCH_MAX as usize).min(n);
    let efds = eventfds(n)?;
    let fds: Vec<i32> = efds.iter().map(|e| e.as_fd().as_raw_fd()).collect();
    let b = ModuleBackend::open(path).map_err(err("open"))?;
    let nr = b.nr_gsis().max(2);
    let last = nr - 1;
    let gsi = |i: usize| u32::try_from(i).map_or(last, |i| i.min(last));
    let on_last = n.saturating_sub(last as usize);
    let mut out = Vec::new();

    out.push(
        tr.measure("assign", format!("assign {n} in batches of {max}"), || {
            batches(&b, &fds, 0..n, max, &gsi, false)
        })?,
    );
    expect_irqfds(&b, "assign", n)?;
    out.push(tr.measure(
        "set_route_one",
        format!("SET_ROUTE, 1 of {n} on the GSI"),
        || b.set_msi(0, 0xfee0_0000, 0x41).map_err(err("set_msi")),
    )?);
    out.push(tr.measure(
        "set_route_many",
        format!("SET_ROUTE, {on_last} of {n} on the GSI"),
        || b.set_msi(last, 0xfee0_1000, 0x42).map_err(err("set_msi")),
    )?);
    out.push(tr.measure("get_info", format!("GET_INFO with {n}"), || {
        b.info().map(drop).map_err(err("info"))
    })?);
    let fdinfo = format!("/proc/self/fdinfo/{}", b.context_fd().as_raw_fd());
    out.push(tr.measure("fdinfo", format!("fdinfo with {n}"), || {
        let s = std::fs::read_to_string(&fdinfo).map_err(|e| format!("{fdinfo}: {e}"))?;
        let listed = s.lines().filter(|l| l.starts_with("irqfd:")).count();
        if listed != n {
            return Err(format!("fdinfo lists {listed} irqfds, expected {n}"));
        }
        Ok(())
    })?);
    out.push(tr.measure(
        "deassign",
        format!("deassign {n} in batches of {max}"),
        || batches(&b, &fds, 0..n, max, &gsi, true),
    )?);
    expect_irqfds(&b, "deassign", 0)?;

    // A batch that fails on its last entry (a descriptor that is not open)
    // undoes the max - 1 before it, with n - max others bound.
    batches(&b, &fds, 0..n - max, max, &gsi, false)?;
    let mut bad = entries(fds.get(n - max..).ok_or("range")?, n - max, &gsi);
    if let Some(e) = bad.last_mut() {
        e.fd = u32::MAX;
    }
    out.push(tr.measure(
        "rollback",
        format!(
            "assign batch rolled back: {} undone, {} others bound",
            max - 1,
            n - max
        ),
        || match b.irqfd_batch(&bad, false) {
            Err((idx, _)) if idx as usize == max - 1 => Ok(()),
            Err((idx, e)) => Err(format!("failed at entry {idx} ({e}), not the last")),
            Ok(()) => Err("a batch with a bad descriptor succeeded".into()),
        },
    )?);
    expect_irqfds(&b, "rollback", n - max)?;
    batches(&b, &fds, n - max..n, max, &gsi, false)?;
    expect_irqfds(&b, "assign", n)?;
    out.push(
        tr.measure("release", format!("close a context with {n}"), || {
            drop(b);
            Ok(())
        })?,
    );

    // Every eventfd closed while bound: n hangups, each deactivating its
    // irqfd from the wakeup, then the shutdowns they queued.
    let b = ModuleBackend::open(path).map_err(err("open"))?;
    batches(&b, &fds, 0..n, max, &gsi, false)?;
    let before = b.info().map_err(err("info"))?.shutdowns;
    out.push(tr.measure(
        "hangup",
        format!("close {n} bound eventfds (EPOLLHUP)"),
        || {
            drop(efds);
            let t = Instant::now();
            loop {
                let info = b.info().map_err(err("info"))?;
                if info.nr_irqfds == 0 && info.shutdowns - before >= n as u64 {
                    return Ok(());
                }
                if t.elapsed() > HANGUP_TIMEOUT {
                    return Err(format!(
                        "{} irqfds left, {} shutdowns after {HANGUP_TIMEOUT:?}",
                        info.nr_irqfds,
                        info.shutdowns - before
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        },
    )?);
    drop(b);

    let ops: Vec<String> = out.iter().map(Measure::json).collect();
    Ok(format!(
        r#""n":{n},"nr_gsis":{nr},"ops":[{}]"#,
        ops.join(",")
    ))
}

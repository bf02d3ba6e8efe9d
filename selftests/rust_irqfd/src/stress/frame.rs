// SPDX-License-Identifier: GPL-2.0
//! The frame every race scenario runs in: `/dev/kmsg` markers around it,
//! a flush of the cleanup queues after it (the device's and the peers'),
//! an eventfd-id leak check, a kmemleak scan, and the report the
//! comparison table is made of.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use super::threads::Run;
use super::{lock, Kmemleak, Report};
use crate::dev::Ctx;
use crate::harness::{also, catch, new_eventfd, ok, Env, Ran, TestResult};
use crate::sys;

/// Writes one line to the kernel log, if `/dev/kmsg` is writable.
pub fn kmsg(line: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let _ = f.write_all(line.as_bytes());
    }
}

const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// Writes a command to the kmemleak file; `false` if it is not writable.
fn kmemleak_cmd(cmd: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(KMEMLEAK)
        .and_then(|mut f| f.write_all(cmd.as_bytes()))
        .is_ok()
}

/// Scans for leaks: `None` if kmemleak is not usable, else the report's
/// lines about unreferenced objects (empty: clean). Clears the reported
/// objects so that the next scan starts clean.
///
/// Two scans, as the VM runner's final one: kmemleak reports an object
/// only once a scan found its contents unchanged since the one before (a
/// new object's first scan takes its checksum and counts it as
/// referenced) and once it is 5 s old, so one scan would leave what was
/// leaked since the last one to the next, blamed on the wrong scenario
/// or device. The first scan (about 6 s under TCG) ages them too.
fn kmemleak_scan() -> Option<Vec<String>> {
    if !kmemleak_cmd("scan") || !kmemleak_cmd("scan") {
        return None;
    }
    let text = std::fs::read_to_string(KMEMLEAK).unwrap_or_default();
    kmemleak_cmd("clear");
    Some(leak_lines(&text))
}

/// The report text if it reports any unreferenced object, else nothing.
fn leak_lines(text: &str) -> Vec<String> {
    if text.contains("unreferenced object") {
        text.lines().map(str::to_string).collect()
    } else {
        Vec::new()
    }
}

/// What a scan that found `lines` says, `what` naming when it ran: the
/// number of objects and the first 20 lines of the report.
fn leak_report(lines: &[String], what: &str) -> String {
    let n = lines
        .iter()
        .filter(|l| l.contains("unreferenced object"))
        .count();
    format!(
        "kmemleak: {n} unreferenced object(s) {what}; first lines:\n{}",
        lines
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    )
}

static KMEMLEAK_BASELINE: AtomicBool = AtomicBool::new(false);

/// Once per run, before the first scan that can fail a test: a scan and a
/// clear, so that what leaked before (`what` says where) is not blamed on
/// what follows. What it finds comes back as notes (so that the log shows
/// it), not as a failure; later calls find nothing to do (every scan after
/// it clears what it found).
fn kmemleak_baseline(what: &str) -> Vec<String> {
    if KMEMLEAK_BASELINE.swap(true, Relaxed) {
        return Vec::new();
    }
    match kmemleak_scan() {
        Some(lines) if !lines.is_empty() => leak_report(&lines, what)
            .lines()
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// `--kmemleak device`, before a device's first test: the baseline scan
/// ([`kmemleak_baseline`]); its notes.
pub fn kmemleak_device_begin() -> Vec<String> {
    kmemleak_baseline("reported before the first device's first test (leaked earlier in the run)")
}

/// `--kmemleak device`, after a device's last test: `None` if kmemleak is
/// not usable, else clean or the report of what its tests leaked.
pub fn kmemleak_device_end() -> Option<TestResult> {
    let lines = kmemleak_scan()?;
    Some(if lines.is_empty() {
        Ok(())
    } else {
        Err(leak_report(&lines, "after the device's tests"))
    })
}

/// The `eventfd-id:` of an eventfd, from `/proc/self/fdinfo`.
pub fn fdinfo_field(fd: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    parse_fdinfo(&text, field)
}

/// The value of `field:` in fdinfo text.
pub fn parse_fdinfo(text: &str, field: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == field).then(|| v.trim().to_string())
    })
}

/// The id a new eventfd gets: the lowest free one (eventfd ids come from
/// an IDA and are freed when the `eventfd_ctx` is), so leaked contexts
/// make it creep up. `None` without /proc or the field.
pub fn eventfd_lowest_free_id() -> Option<u64> {
    use std::os::fd::AsRawFd;
    let e = sys::eventfd(0, libc::EFD_NONBLOCK).ok()?;
    fdinfo_field(e.as_raw_fd(), "eventfd-id")?.parse().ok()
}

/// How far the lowest free eventfd id may creep during a scenario before it
/// counts as a leak (other processes may hold a few ids meanwhile).
const EVENTFD_ID_SLACK: u64 = 32;

/// Waits for every shutdown queued so far by the module behind `ctx`: a
/// deassign flushes the module's cleanup queue whether it matched or not.
pub fn flush_cleanup(ctx: &Ctx) -> TestResult {
    flush_queue(ctx, "")
}

/// [`flush_cleanup`], its failure prefixed with `whose`.
fn flush_queue(ctx: &Ctx, whose: &str) -> TestResult {
    let e = new_eventfd()?;
    ok(
        &format!("{whose}deassign(unbound eventfd) to flush the cleanup queue"),
        ctx.deassign(&e, 0),
    )
}

/// Flushes the cleanup queue of the module behind `path`: a deassign waits
/// for every shutdown queued before it, whoever queued it.
fn flush_module(env: &Env, path: &std::path::Path) -> TestResult {
    let c = env.open_path(path)?;
    flush_queue(&c, &format!("{}: ", path.display()))
}

/// The KTAP name of the device under test.
pub fn device_name(env: &Env) -> String {
    env.device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| env.device.display().to_string())
}

/// Runs one race scenario in its frame: kmsg begin marker, the body (a
/// panic becomes a failure), a flush of the cleanup queues (the devices'
/// and the peers'), the eventfd-id leak check, a kmemleak scan (leaks fail
/// the scenario with the first 20 lines of the report), the end marker,
/// and the report for the table (left in `env` for the runner).
pub fn scenario(env: &Env, name: &str, body: fn(&Run) -> Ran) -> Ran {
    let dev = device_name(env);
    let mut notes = Vec::new();
    let scan = env.stress.kmemleak == Kmemleak::Scenario;
    // Before the first scenario of the run, so that what the tests before
    // the race scenarios leaked is not blamed on a race scenario.
    if scan {
        notes.extend(kmemleak_baseline(
            "reported before the first race scenario (leaked earlier in the run, not by a race \
             scenario)",
        ));
    }
    let id_before = eventfd_lowest_free_id();
    kmsg(&format!("rust_irqfd_test: begin {name} {dev}"));

    let run = Run::new(env);
    let mut res = catch(|| body(&run));

    for path in std::iter::once(env.device.clone()).chain(env.present_peers()) {
        if let Err(m) = flush_module(env, &path) {
            res = also(res, m);
        }
    }
    if let (Some(a), Some(b)) = (id_before, eventfd_lowest_free_id()) {
        if b > a + EVENTFD_ID_SLACK {
            res = also(
                res,
                format!(
                    "eventfd_ctx leak: the lowest free eventfd id went from {a} to {b} during the \
                     scenario, with every eventfd of the test closed and the cleanup queues flushed"
                ),
            );
        }
    }
    let t0 = Instant::now();
    if let Some(lines) = scan.then(kmemleak_scan).flatten() {
        notes.push(format!(
            "kmemleak scan: {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        if !lines.is_empty() {
            res = also(res, leak_report(&lines, "after the scenario"));
        }
    }
    kmsg(&format!("rust_irqfd_test: end {name} {dev}"));

    notes.extend(lock(&run.notes).drain(..));
    env.put_report(Report {
        tally: lock(&run.tally).clone(),
        notes,
    });
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_ids_creep_with_open_eventfds() {
        let Some(a) = eventfd_lowest_free_id() else {
            eprintln!("no eventfd-id in fdinfo: check skipped");
            return;
        };
        let held: Vec<_> = (0..4).map(|_| sys::eventfd(0, 0).unwrap()).collect();
        let b = eventfd_lowest_free_id().unwrap();
        assert!(b >= a + 4, "{a} {b}");
        drop(held);
        assert!(eventfd_lowest_free_id().unwrap() <= a + 1);
    }

    #[test]
    fn fdinfo_parsing() {
        let t = "pos:\t0\nflags:\t02004002\nmnt_id:\t15\nino:\t1057\n\
                 eventfd-count:                0\neventfd-id: 12\neventfd-semaphore: 0\n";
        assert_eq!(parse_fdinfo(t, "eventfd-id").as_deref(), Some("12"));
        assert_eq!(parse_fdinfo(t, "eventfd-count").as_deref(), Some("0"));
        assert_eq!(parse_fdinfo(t, "nope"), None);
    }

    #[test]
    fn kmemleak_text() {
        assert!(leak_lines("").is_empty());
        let t = "unreferenced object 0xffff888 (size 64):\n  comm \"x\"\n";
        assert_eq!(leak_lines(t).len(), 2);
    }
}

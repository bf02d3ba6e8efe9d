// SPDX-License-Identifier: GPL-2.0
//! Fault injection over every allocation of the assign paths, with the
//! kernel's fail-nth (`/proc/self/task/TID/fail-nth`, FAILSLAB): for n = 1,
//! 2, ... the n-th slab allocation of the call fails, until the call needs
//! fewer than n. Each injected failure must give a clean errno and leave
//! nothing half-assigned, and the context must stay fully usable; leaks show
//! in the run's kmemleak scans.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::dev::Ctx;
use crate::harness::{
    ensure, eq, expect_nr_irqfds, new_eventfd, ok, one_record, signal, skip, test, Env, Needs,
    Test, TestResult,
};
use crate::sys::{self, SysResult};

/// The fault-injection tests, in run order.
pub const TESTS: &[Test] = &[
    test!(failnth_assign, Needs::NONE),
    test!(failnth_batch_assign, Needs::gsis(4)),
];

/// More failure points than any of these calls has.
const MAX_POINTS: u32 = 200;
const FAILSLAB: &str = "/sys/kernel/debug/failslab";

/// fail-nth of this thread, and failslab set up to fail sleeping
/// allocations quietly; restored on drop.
///
/// The proc file cannot seek, and a read at its end gives nothing: every
/// read uses a descriptor of its own, opened up front (opening one after a
/// call could itself consume a failure still armed).
struct FailNth {
    file: File,
    readers: Vec<File>,
    saved: Vec<(String, String)>,
}

impl FailNth {
    fn new() -> Result<Self, String> {
        let path = format!("/proc/self/task/{}/fail-nth", sys::gettid());
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) => {
                skip(format!("{path}: {e} (needs CONFIG_FAULT_INJECTION)"))?;
                return Err(String::new());
            }
        };
        if !Path::new(FAILSLAB).exists() {
            skip(format!("no {FAILSLAB} (needs CONFIG_FAILSLAB and debugfs)"))?;
        }
        let readers = (0..=MAX_POINTS)
            .map(|_| File::open(&path).map_err(|e| format!("open {path}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut me = Self {
            file,
            readers,
            saved: Vec::new(),
        };
        // GFP_KERNEL allocations may sleep: let them fail too, and without
        // the stack dump each injected failure prints by default.
        me.set("ignore-gfp-wait", "N")?;
        me.set("verbose", "0")?;
        Ok(me)
    }

    fn set(&mut self, knob: &str, value: &str) -> TestResult {
        let path = format!("{FAILSLAB}/{knob}");
        let old = std::fs::read_to_string(&path).map_err(|e| format!("read {path}: {e}"))?;
        std::fs::write(&path, value).map_err(|e| format!("write {path}: {e}"))?;
        self.saved.push((path, old.trim().to_string()));
        Ok(())
    }

    /// Arms the n-th allocation of this thread's next calls to fail.
    fn arm(&mut self, n: u32) -> TestResult {
        self.file
            .write_all(n.to_string().as_bytes())
            .map_err(|e| format!("write fail-nth {n}: {e}"))
    }

    /// Whether the armed failure was injected (fail-nth reads 0), and disarms.
    fn fired(&mut self) -> Result<bool, String> {
        let mut s = String::new();
        self.readers
            .pop()
            .ok_or("out of fail-nth readers")?
            .read_to_string(&mut s)
            .map_err(|e| format!("read fail-nth: {e}"))?;
        let left: u32 = s
            .trim()
            .parse()
            .map_err(|e| format!("fail-nth {s:?}: {e}"))?;
        if left != 0 {
            self.arm(0)?;
        }
        Ok(left == 0)
    }
}

impl Drop for FailNth {
    fn drop(&mut self) {
        let _ = self.arm(0);
        for (path, value) in self.saved.drain(..).rev() {
            let _ = std::fs::write(path, value);
        }
    }
}

/// Sweeps `call` over n = 1, 2, ...: the errno of every injected failure
/// must be in `clean`, and `after_failure` must hold after it. A call that
/// succeeds although its n-th allocation was failed (someone inside the
/// kernel fell back gracefully, kmemleak's metadata allocation for one) is
/// undone with `undo` and the sweep goes on. Returns the number of failure
/// points the call itself reported (failed with an errno).
fn sweep(
    what: &str,
    fi: &mut FailNth,
    mut call: impl FnMut() -> SysResult<()>,
    mut undo: impl FnMut() -> TestResult,
    clean: &[i32],
    mut after_failure: impl FnMut(u32) -> TestResult,
) -> Result<u32, String> {
    let mut points = 0;
    for n in 1..=MAX_POINTS {
        fi.arm(n)?;
        let r = call();
        let fired = fi.fired()?;
        match r {
            Ok(()) if !fired => return Ok(points),
            Ok(()) => undo()?,
            Err(e) => {
                ensure(fired && clean.contains(&e.0), || {
                    format!("{what}: with allocation {n} failed (injected: {fired}): {e}")
                })?;
                points += 1;
                after_failure(n)?;
            }
        }
    }
    Err(format!(
        "{what}: still failing after {MAX_POINTS} injected failures"
    ))
}

/// Every allocation of assign: `ENOMEM`, nothing bound after it, and the
/// same eventfd binds and delivers once the sweep is through.
fn failnth_assign(env: &Env) -> TestResult {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let e = new_eventfd()?;
    let points = sweep(
        "assign",
        &mut fi,
        || c.assign(&e, 0),
        || ok("deassign after a tolerated failure", c.deassign(&e, 0)),
        &[libc::ENOMEM],
        |n| expect_nr_irqfds(&c, 0, &format!("after failing allocation {n} of assign")),
    )?;
    drop(fi);
    println!("# assign: {points} failure points");
    ensure(points >= 1, || {
        "assign allocated nothing that could fail".into()
    })?;
    expect_nr_irqfds(&c, 1, "after the assign that succeeded")?;
    signal(&e)?;
    one_record(env, &c, 0, 1)?;
    ok("deassign", c.deassign(&e, 0))?;
    ok("close(context)", c.close())
}

/// Every allocation of a 4-entry batch assign: a clean errno, nothing bound
/// after it (the rollback ran), and the batch succeeds at the end.
fn failnth_batch_assign(env: &Env) -> TestResult {
    let mut fi = FailNth::new()?;
    let c = env.open()?;
    let efds = (0..4)
        .map(|_| new_eventfd())
        .collect::<Result<Vec<_>, _>>()?;
    let entries = crate::batch::entries(&efds);
    let run = |c: &Ctx| crate::batch::batch(c, &entries, 4, 0, 0).0.map(drop);
    let points = sweep(
        "batch assign",
        &mut fi,
        || run(&c),
        || {
            for (i, e) in efds.iter().enumerate() {
                ok(
                    "deassign after a tolerated failure",
                    c.deassign(e, i as u32),
                )?;
            }
            Ok(())
        },
        &[libc::ENOMEM],
        |n| {
            expect_nr_irqfds(
                &c,
                0,
                &format!("after failing allocation {n} of a batch assign"),
            )
        },
    )?;
    drop(fi);
    println!("# batch assign of 4: {points} failure points");
    ensure(points >= 4, || {
        format!("a batch of 4 assigns had only {points} failure points")
    })?;
    expect_nr_irqfds(&c, 4, "after the batch that succeeded")?;
    for e in &efds {
        signal(e)?;
    }
    for g in 0..4 {
        eq(
            &format!("gsi {g} injections"),
            crate::harness::stats(&c, g)?.injected,
            1,
        )?;
    }
    ok("close(context)", c.close())
}

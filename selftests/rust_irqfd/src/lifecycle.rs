// SPDX-License-Identifier: GPL-2.0
//! Module lifecycle: unload is refused while a context is open, the module
//! loads and unloads 100 times with a context used each time, and open/close
//! storms race with unload attempts.
//!
//! These tests unload and reload the module under test, so they run last and
//! need to know how it was loaded: `IRQFD_MODULE_DIR` (where `<name>.ko` is)
//! and `IRQFD_MODULE_PARAMS` (its parameters; Rust module parameters are not
//! in sysfs). Without `IRQFD_MODULE_DIR` they skip. Every test leaves the
//! module loaded with the same parameters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{
    ensure, inject, new_eventfd, ok, skip, test, Env, Needs, Ran, Stop, Test, TestResult,
};

/// The lifecycle tests, in run order (after every other test).
pub const TESTS: &[Test] = &[
    test!(unload_refused_while_open, Needs::NONE, [Module]),
    test!(load_unload_cycles, Needs::NONE, [Heavy, Module]),
    test!(open_close_vs_unload, Needs::NONE, [Heavy, Module]),
];

/// How the module under test was loaded.
struct Module {
    name: String,
    ko: PathBuf,
    params: Vec<String>,
}

impl Module {
    fn of(env: &Env) -> Result<Self, Stop> {
        let Ok(dir) = std::env::var("IRQFD_MODULE_DIR") else {
            return skip(
                "IRQFD_MODULE_DIR is not set (the payload sets it where it may reload modules)",
            );
        };
        let name = env
            .device
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("no module name in {}", env.device.display()))?
            .to_string();
        let ko = Path::new(&dir).join(format!("{name}.ko"));
        ensure(ko.exists(), || format!("{} does not exist", ko.display()))?;
        let params = std::env::var("IRQFD_MODULE_PARAMS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        Ok(Self { name, ko, params })
    }

    fn rmmod(&self) -> Result<bool, String> {
        let st = Command::new("rmmod")
            .arg(&self.name)
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| format!("run rmmod: {e}"))?;
        Ok(st.success())
    }

    fn insmod(&self) -> TestResult {
        let out = Command::new("insmod")
            .arg(&self.ko)
            .args(&self.params)
            .output()
            .map_err(|e| format!("run insmod: {e}"))?;
        ensure(out.status.success(), || {
            format!(
                "insmod {} {:?}: {}",
                self.ko.display(),
                self.params,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })
    }

    fn loaded(&self) -> bool {
        Path::new("/sys/module").join(&self.name).exists()
    }

    /// Loaded again if it is not, whatever happened before.
    fn restore(&self) -> TestResult {
        if self.loaded() {
            Ok(())
        } else {
            self.insmod()
        }
    }
}

/// Waits for the device node to (re)appear after a load (devtmpfs).
fn wait_node(env: &Env) -> TestResult {
    let start = Instant::now();
    while !env.device.exists() {
        if start.elapsed() > env.timeout {
            return Err(format!("{} did not appear", env.device.display()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// One use of a fresh context: assign, signal, see the injection, close.
fn use_once(env: &Env) -> TestResult {
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    inject(env, &c, &e, 0, 1)?;
    ok("close(context)", c.close())
}

/// `rmmod` fails while a context is open (the file pins the module), even
/// one holding irqfds, and works once it is closed.
fn unload_refused_while_open(env: &Env) -> Ran {
    let m = Module::of(env)?;
    let c = env.open()?;
    let e = new_eventfd()?;
    ok("assign(gsi 0)", c.assign(&e, 0))?;
    let unloaded = m.rmmod()?;
    let result = ensure(!unloaded, || "rmmod succeeded with a context open".into());
    ok("close(context)", c.close())?;
    if unloaded {
        m.restore()?;
        return Ok(result?);
    }
    ensure(m.rmmod()?, || {
        "rmmod failed once the context was closed".into()
    })?;
    m.insmod()?;
    wait_node(env)?;
    Ok(use_once(env)?)
}

/// Cycles of rmmod, insmod and one context used (assign, signal, injection,
/// close): 25 at the default stress budget (2 s), 100 from 8 s up. A leak
/// shows in the kmemleak scan of the run, which a leak of one object per
/// cycle fills as surely with 25 cycles as with 100.
fn load_unload_cycles(env: &Env) -> Ran {
    let cycles = load_unload_count(env.stress.secs);
    let m = Module::of(env)?;
    let t0 = Instant::now();
    let r = (|| -> TestResult {
        for i in 0..cycles {
            ensure(m.rmmod()?, || format!("cycle {i}: rmmod failed"))?;
            m.insmod()?;
            wait_node(env)?;
            use_once(env).map_err(|e| format!("cycle {i}: {e}"))?;
        }
        Ok(())
    })();
    println!("# {cycles} load/unload cycles took {:?}", t0.elapsed());
    m.restore()?;
    Ok(r?)
}

/// Load/unload cycles for a stress budget of `secs`: 12.5 per second, from
/// 25 to 100.
fn load_unload_count(secs: f64) -> usize {
    // In range by the clamp; the cast only drops the fraction.
    (secs * 12.5).clamp(25.0, 100.0) as usize
}

/// Two threads open, use and close contexts as fast as they can while a
/// third unloads and reloads the module for the stress budget. An open
/// either works or fails because the module is gone (`ENOENT`, `ENXIO`,
/// `ENODEV`); a context that opened works until it is closed; unload
/// succeeds only when nothing is open.
fn open_close_vs_unload(env: &Env) -> Ran {
    let m = Module::of(env)?;
    let stop = AtomicBool::new(false);
    let opened = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let unloads = AtomicU64::new(0);
    let budget = Duration::from_secs_f64(env.stress.secs.max(1.0));
    let r = std::thread::scope(|s| -> TestResult {
        let users: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> TestResult {
                    while !stop.load(Ordering::Relaxed) {
                        match crate::dev::Ctx::open(&env.device) {
                            Ok(c) => {
                                opened.fetch_add(1, Ordering::Relaxed);
                                let e = new_eventfd()?;
                                ok("assign on an open context", c.assign(&e, 0))?;
                                ok("close(context)", c.close())?;
                                // Leave the module unpinned now and then, so
                                // that unload attempts can succeed too.
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Err(e) if [libc::ENOENT, libc::ENXIO, libc::ENODEV].contains(&e.0) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                std::thread::yield_now();
                            }
                            Err(e) => return Err(format!("open({}): {e}", env.device.display())),
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        let t0 = Instant::now();
        let mut result = Ok(());
        while t0.elapsed() < budget {
            match m.rmmod() {
                Ok(true) => {
                    unloads.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = m.insmod() {
                        result = Err(e);
                        break;
                    }
                }
                Ok(false) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        for u in users {
            if let Err(e) = u
                .join()
                .unwrap_or_else(|_| Err("user thread panicked".into()))
            {
                result = result.and(Err(e));
            }
        }
        result
    });
    println!(
        "# {} opens, {} refused while unloaded, {} unloads in {budget:?}",
        opened.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        unloads.load(Ordering::Relaxed)
    );
    m.restore()?;
    wait_node(env)?;
    r?;
    Ok(use_once(env)?)
}

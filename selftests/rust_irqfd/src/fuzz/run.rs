// SPDX-License-Identifier: GPL-2.0
//! The test, `fuzz_model`: one thread per `--fuzz-threads`, each with its
//! own context, fuzzer and PRNG, run concurrently against the device, and
//! the summary lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::check::{Fuzzer, Tally};
use super::gen::gsi_pool;
use super::real::{Real, Waits};
use super::{clock_seed, FuzzCfg};
use crate::harness::{catch, panic_message, skip, Env, Ran};
use crate::stress;

/// What one thread did.
struct ThreadReport {
    tally: Tally,
    waits: Waits,
    failure: Option<String>,
}

/// How a thread's body stopped short: a mismatch or error it reported, or
/// a panic, which [`catch`] hands over as `"panic: message"` through
/// `From<String>` (the body wraps its own failures in `Failed`).
enum Stopped {
    Failed(String),
    Panicked(String),
}

impl From<String> for Stopped {
    fn from(m: String) -> Self {
        Stopped::Panicked(m)
    }
}

/// One thread: its own context and eventfds, random ops until the budget
/// is spent (or another thread failed), then the final check.
fn fuzz_thread(
    env: &Env,
    cfg: &FuzzCfg,
    seed: u64,
    thread: usize,
    stop: &AtomicBool,
    forks: &RwLock<()>,
) -> ThreadReport {
    let pool = gsi_pool(env.nr_gsis());
    let mut fz = Fuzzer::new(seed, thread, cfg.threads, env.nr_gsis(), &pool);
    let mut real = match Real::new(env, forks) {
        Ok(r) => r,
        Err(e) => {
            stop.store(true, Relaxed);
            return ThreadReport {
                tally: Tally::default(),
                waits: Waits::default(),
                failure: Some(format!("thread {thread}: setup: {e}")),
            };
        }
    };
    let budget = Duration::from_secs_f64(cfg.secs);
    let max_ops = cfg.ops.unwrap_or(u64::MAX);
    let start = Instant::now();
    let body = catch(|| {
        while !stop.load(Relaxed) && start.elapsed() < budget && fz.ops() < max_ops {
            fz.random_step(&mut real).map_err(Stopped::Failed)?;
        }
        fz.finish(&mut real).map_err(Stopped::Failed)
    });
    let mut failure = match body {
        Ok(()) => None,
        Err(Stopped::Failed(m)) => Some(m),
        Err(Stopped::Panicked(m)) => Some(format!(
            "thread {thread}: panic at op #{}: {}",
            fz.ops(),
            m.strip_prefix("panic: ").unwrap_or(&m)
        )),
    };
    if let Err(e) = real.close_all() {
        failure.get_or_insert(format!("thread {thread}: {e}"));
    }
    if failure.is_some() {
        stop.store(true, Relaxed);
    }
    ThreadReport {
        tally: fz.tally,
        waits: real.waits,
        failure,
    }
}

/// The model-checked fuzzer on one device. Its diagnostics are indented as
/// the device's subtest is.
pub(super) fn fuzz_model(env: &Env) -> Ran {
    if env.deferred() {
        return skip(
            "deferred_only: injections are asynchronous and C merges them, \
             so the model cannot predict records (the fuzzer runs in the normal pass)",
        );
    }
    let cfg = env.fuzz;
    let seed = cfg.seed.unwrap_or_else(clock_seed);
    let dev = stress::device_name(env);
    println!("    # fuzz seed={seed:#018x} (rerun: --fuzz-seed {seed:#018x})");
    stress::kmsg(&format!(
        "rust_irqfd_test: begin fuzz_model {dev} seed={seed:#018x}"
    ));
    let stop = AtomicBool::new(false);
    let forks = RwLock::new(());
    let start = Instant::now();
    let reports: Vec<ThreadReport> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let (stop, forks, cfg) = (&stop, &forks, &cfg);
                std::thread::Builder::new()
                    .name(format!("fuzz{t}"))
                    .spawn_scoped(s, move || fuzz_thread(env, cfg, seed, t, stop, forks))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(t, h)| match h {
                Ok(h) => h.join().unwrap_or_else(|p| ThreadReport {
                    tally: Tally::default(),
                    waits: Waits::default(),
                    failure: Some(format!("thread {t}: {}", panic_message(&*p))),
                }),
                Err(e) => {
                    stop.store(true, Relaxed);
                    ThreadReport {
                        tally: Tally::default(),
                        waits: Waits::default(),
                        failure: Some(format!("thread {t}: spawn: {e}")),
                    }
                }
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    stress::kmsg(&format!("rust_irqfd_test: end fuzz_model {dev}"));

    let mut total = Tally::default();
    let mut waits = Waits::default();
    for r in &reports {
        total.merge(&r.tally);
        waits.shutdowns += r.waits.shutdowns;
        waits.shutdowns_at_once += r.waits.shutdowns_at_once;
        waits.injections += r.waits.injections;
        waits.injections_at_once += r.waits.injections_at_once;
    }
    let failures: Vec<&String> = reports.iter().filter_map(|r| r.failure.as_ref()).collect();
    println!(
        "    # fuzz {dev}: seed={seed:#018x} threads {} ops {} in {secs:.1} s ({:.0} ops/s), \
         records checked {} (carrying {} injections), stats checked {}, mismatches {}",
        cfg.threads,
        total.ops,
        total.ops as f64 / secs.max(1e-9),
        total.records,
        total.record_injections,
        total.stats,
        failures.len()
    );
    println!("    # fuzz {dev}: ops: {}", total.mix());
    println!(
        "    # fuzz {dev}: waited for {} EPOLLHUP shutdowns ({} done at the first look), \
         {} assign-time injections ({} done when the assign returned)",
        waits.shutdowns, waits.shutdowns_at_once, waits.injections, waits.injections_at_once
    );
    match failures.split_first() {
        None => Ok(()),
        Some((first, rest)) => {
            let mut m = (*first).clone();
            for f in rest {
                let _ = write!(m, "\nalso: {}", f.lines().next().unwrap_or(""));
            }
            Err(m.into())
        }
    }
}

// SPDX-License-Identifier: GPL-2.0
//! Running ops against a target and checking them: a thread's [`Fuzzer`]
//! draws each op, asks the model what must come back, runs it on the
//! [`Target`] and compares; a mismatch becomes the failure report (seed,
//! op, trace, model, rerun line).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use super::gen::gen;
use super::model::Model;
use super::op::{counter_read, Op, Outcome, Step, REC};
use super::rng::Rng;
use super::SLOTS;
use crate::abi::DELIVERY_MSI;
use crate::sys::Errno;

/// Ops of each thread kept for a failure report.
const TRACE: usize = 12;

/// The released resamplefds as read: (slot, read result).
pub type Released = Vec<(usize, Result<u64, Errno>)>;

/// What runs the ops: the device (in the VM) or, in the unit tests, a
/// model with a planted bug.
pub trait Target {
    /// Runs `op`; an `Err` is a failure to run it at all.
    fn exec(&mut self, op: &Op) -> Result<Outcome, String>;
    /// Waits for what `step` says is still to come, then reads the released
    /// resamplefds: (slot, read result), in `step.released` order.
    fn settle(&mut self, step: &Step) -> Result<Released, String>;
}

/// Counts of one op kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindTally {
    pub n: u64,
    /// Expected errors, by errno name.
    pub errors: BTreeMap<String, u64>,
}

/// What a thread (or a device's run) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ops: u64,
    pub kinds: BTreeMap<&'static str, KindTally>,
    /// Records compared field by field, and the injections they carried.
    pub records: u64,
    pub record_injections: u64,
    /// Full stats compared.
    pub stats: u64,
}

impl Tally {
    fn count(&mut self, op: &Op, o: &Outcome) {
        self.ops += 1;
        let k = self.kinds.entry(op.kind()).or_default();
        k.n += 1;
        let err = match o {
            Outcome::Done(Err(e)) => Some(*e),
            Outcome::Value(Err(e)) => Some(*e),
            Outcome::Records(Err(e)) => Some(*e),
            Outcome::Stats(Err(e)) => Some(*e),
            _ => None,
        };
        if let Some(e) = err {
            *k.errors.entry(e.name()).or_default() += 1;
        }
        match o {
            Outcome::Records(Ok(v)) => {
                self.records += v.len() as u64;
                self.record_injections += v.iter().map(|d| d.count).sum::<u64>();
            }
            Outcome::Stats(Ok(_)) => self.stats += 1,
            _ => {}
        }
    }

    /// Adds another tally.
    pub fn merge(&mut self, o: &Tally) {
        self.ops += o.ops;
        self.records += o.records;
        self.record_injections += o.record_injections;
        self.stats += o.stats;
        for (k, t) in &o.kinds {
            let mine = self.kinds.entry(k).or_default();
            mine.n += t.n;
            for (e, n) in &t.errors {
                *mine.errors.entry(e.clone()).or_default() += n;
            }
        }
    }

    /// `assign 123 (EBUSY 4, EINVAL 2), ...`
    pub fn mix(&self) -> String {
        self.kinds
            .iter()
            .map(|(k, t)| {
                if t.errors.is_empty() {
                    format!("{k} {}", t.n)
                } else {
                    let e: Vec<String> = t.errors.iter().map(|(e, n)| format!("{e} {n}")).collect();
                    format!("{k} {} ({})", t.n, e.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A short form of an outcome, for the trace.
fn short(o: &Outcome) -> String {
    match o {
        Outcome::Records(Ok(v)) => {
            let r: Vec<String> = v
                .iter()
                .map(|d| {
                    format!(
                        "seq {} gsi {} n {} fl {:#x}{}",
                        d.seq,
                        d.gsi,
                        d.count,
                        d.flags,
                        if d.flags & DELIVERY_MSI != 0 {
                            format!(" msi {:#x}/{:#x}", d.msi_addr, d.msi_data)
                        } else {
                            String::new()
                        }
                    )
                })
                .collect();
            format!("records [{}]", r.join("; "))
        }
        Outcome::Stats(Ok(s)) => format!(
            "stats inj {} raised {} coal {} deliv {} pend {} latched {} acks {} masked {} asserted {}",
            s.injected,
            s.raised,
            s.coalesced,
            s.delivered,
            s.pending,
            s.latched,
            s.acks,
            s.masked,
            s.asserted
        ),
        o => format!("{o:?}"),
    }
}

/// One thread's fuzzer: its PRNG, its model, its trace and tally.
pub struct Fuzzer {
    pub seed: u64,
    pub thread: usize,
    threads: usize,
    rng: Rng,
    pub model: Model,
    trace: VecDeque<String>,
    pub tally: Tally,
    next: u64,
}

impl Fuzzer {
    /// Thread `thread` (of `threads`) of a run seeded with `seed`.
    pub fn new(seed: u64, thread: usize, threads: usize, nr_gsis: u32, pool: &[u32]) -> Self {
        Fuzzer {
            seed,
            thread,
            threads,
            rng: Rng::for_thread(seed, thread),
            model: Model::new(nr_gsis, pool, SLOTS),
            trace: VecDeque::new(),
            tally: Tally::default(),
            next: 0,
        }
    }

    /// The failure report of op `idx`.
    fn fail(&self, idx: u64, op: &Op, what: &str) -> String {
        let mut s = format!(
            "fuzz mismatch: seed={:#018x} thread {} op #{idx}: {op:?}\n{what}\n",
            self.seed, self.thread
        );
        let _ = writeln!(s, "last ops of thread {}:", self.thread);
        for t in &self.trace {
            let _ = writeln!(s, "  {t}");
        }
        let _ = writeln!(s, "model after op #{idx} (as predicted):");
        for l in self.model.describe().lines() {
            let _ = writeln!(s, "  {l}");
        }
        let _ = write!(
            s,
            "rerun: --filter fuzz_model --fuzz-seed {:#018x} --fuzz-threads {} --fuzz-ops {} \
             (thread {} makes the same ops again; the interleaving differs)",
            self.seed,
            self.threads,
            idx + 1,
            self.thread
        );
        s
    }

    /// Runs `op` on `t` and checks it against the model.
    pub fn step<T: Target>(&mut self, t: &mut T, op: Op) -> Result<(), String> {
        let idx = self.next;
        self.next += 1;
        let step = self.model.apply(&op);
        if let Err(e) = self.model.check_invariants() {
            return Err(self.fail(idx, &op, &format!("the model itself is broken: {e}")));
        }
        let got = match t.exec(&op) {
            Ok(o) => o,
            Err(e) => return Err(self.fail(idx, &op, &format!("could not run it: {e}"))),
        };
        if got != step.expect {
            return Err(self.fail(
                idx,
                &op,
                &format!(
                    "expected: {}\ngot:      {}",
                    short(&step.expect),
                    short(&got)
                ),
            ));
        }
        let released = match t.settle(&step) {
            Ok(r) => r,
            Err(e) => return Err(self.fail(idx, &op, &format!("after the op: {e}"))),
        };
        let want: Released = step
            .released
            .iter()
            .map(|&(s, c)| (s, counter_read(c)))
            .collect();
        if released != want {
            return Err(self.fail(
                idx,
                &op,
                &format!("released resamplefds (slot, read): expected {want:?}, got {released:?}"),
            ));
        }
        self.tally.count(&op, &got);
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace
            .push_back(format!("#{idx} {op:?} -> {}", short(&got)));
        Ok(())
    }

    /// One random op.
    pub fn random_step<T: Target>(&mut self, t: &mut T) -> Result<(), String> {
        let op = gen(&mut self.rng, &self.model);
        self.step(t, op)
    }

    /// The final check: every record read, every line's stats, every
    /// irqfd deassigned, and the context's counters.
    pub fn finish<T: Target>(&mut self, t: &mut T) -> Result<(), String> {
        while !self.model.fifo.is_empty() {
            self.step(t, Op::Read { bytes: REC * 16 })?;
        }
        self.step(t, Op::Read { bytes: REC * 16 })?;
        for i in 0..self.model.lines.len() {
            let gsi = self.model.lines[i].gsi;
            self.step(t, Op::Stats { gsi, pad: 0 })?;
        }
        for slot in 0..self.model.slots.len() {
            if let Some(b) = self.model.slots[slot].binding {
                let gsi = self.model.lines[b.line].gsi;
                self.step(
                    t,
                    Op::Deassign {
                        slot,
                        fd: 0,
                        gsi,
                        resample_flag: false,
                    },
                )?;
            }
        }
        self.step(t, Op::Info)
    }

    /// Ops run so far.
    pub fn ops(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::fake::{run_fake, Bug, Fake, NR};
    use crate::fuzz::gen::gsi_pool;

    /// The same seed gives the same ops; another seed other ops.
    #[test]
    fn fuzz_is_reproducible() {
        let ops = |seed| {
            let mut f = Fuzzer::new(seed, 1, 3, NR, &gsi_pool(NR));
            let mut fake = Fake::new(&f, Bug::None);
            (0..2000)
                .map(|_| {
                    let op = gen(&mut f.rng, &f.model);
                    f.step(&mut fake, op).unwrap();
                    op
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ops(5), ops(5));
        assert_ne!(ops(5), ops(6));
    }

    /// Every planted bug is caught, with the seed, the op and the trace in
    /// the report.
    #[test]
    fn fuzz_catches_planted_bugs() {
        for bug in [
            Bug::LoseSignal,
            Bug::UnmaskStaleRoute,
            Bug::NoDeassertOnLeave,
            Bug::AckSignalsNothing,
        ] {
            let (_, r) = run_fake(0x5eed, bug, 20_000);
            let m = r.expect_err(&format!("{bug:?} not caught"));
            eprintln!("{bug:?}: {}", m.lines().next().unwrap_or(""));
            assert!(
                m.starts_with("fuzz mismatch: seed=0x0000000000005eed thread 0 op #"),
                "{m}"
            );
            assert!(
                m.contains("expected") && m.contains("last ops of thread 0:"),
                "{m}"
            );
            assert!(
                m.contains("rerun: --filter fuzz_model --fuzz-seed 0x0000000000005eed"),
                "{m}"
            );
        }
    }
}

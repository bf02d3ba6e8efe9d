// SPDX-License-Identifier: GPL-2.0
//! The op generator: the next random op of a thread, from its PRNG and its
//! model only (so that a seed replays it), and the GSIs each thread uses.

use super::model::{Binding, Model, Resample, Slot};
use super::op::{AssignKind, Op, REC};
use super::rng::Rng;
use super::MAX_FDS;
use crate::abi::{MASK_MASKED, ROUTE_MSI};

/// Two routes that differ in every byte (as `routing.rs`'s).
pub(super) const ROUTE_A: (u64, u32) = (0x1111_1111_fee0_1000, 0x1111_1111);
pub(super) const ROUTE_B: (u64, u32) = (0x2222_2222_efd3_2ffc, 0x2222_2222);

/// The op mix, in per mille.
pub const MIX: &[(&str, usize)] = &[
    ("signal", 230),
    ("fork_signal", 25),
    ("assign", 100),
    ("deassign", 60),
    ("close", 50),
    ("dup", 30),
    ("route", 60),
    ("mask", 80),
    ("ack", 80),
    ("read", 120),
    ("stats", 70),
    ("info", 20),
    ("read_eventfd", 30),
    ("read_resamplefd", 30),
    ("close_resamplefd", 10),
    ("reopen", 5),
];

/// A GSI out of range.
fn bad_gsi(rng: &mut Rng, nr: u32) -> u32 {
    rng.pick(&[nr, nr + 1, nr + 1000, 0x8000_0000, u32::MAX])
}

/// A GSI of the pool, or with `bad` percent chance one out of range.
fn any_gsi(rng: &mut Rng, m: &Model, bad: usize) -> u32 {
    if rng.percent(bad) {
        bad_gsi(rng, m.nr_gsis)
    } else {
        rng.pick(&m.pool)
    }
}

/// A slot; with `pct` percent chance one for which `want` holds, if any.
fn slot_where(rng: &mut Rng, m: &Model, pct: usize, want: impl Fn(&Slot) -> bool) -> usize {
    if rng.percent(pct) {
        let c: Vec<usize> = (0..m.slots.len()).filter(|&i| want(&m.slots[i])).collect();
        if !c.is_empty() {
            return rng.pick(&c);
        }
    }
    rng.below(m.slots.len())
}

/// Slots whose binding has an open dedicated resamplefd.
fn dedicated_slots(m: &Model) -> Vec<usize> {
    (0..m.slots.len())
        .filter(|&i| {
            matches!(
                m.slots[i].binding,
                Some(Binding {
                    resample: Some(Resample::Dedicated { open: true, .. }),
                    ..
                })
            )
        })
        .collect()
}

/// The next random op for a thread whose state is `m`.
pub fn gen(rng: &mut Rng, m: &Model) -> Op {
    let total: usize = MIX.iter().map(|w| w.1).sum();
    let mut x = rng.below(total);
    let mut kind = MIX[0].0;
    for &(k, w) in MIX {
        if x < w {
            kind = k;
            break;
        }
        x -= w;
    }
    let bound = |s: &Slot| s.binding.is_some();
    match kind {
        "signal" | "fork_signal" => {
            let slot = slot_where(rng, m, 75, bound);
            let fd = rng.below(m.slots[slot].fds);
            if kind == "signal" {
                Op::Signal { slot, fd }
            } else {
                Op::ForkSignal { slot, fd }
            }
        }
        "assign" => {
            let slot = slot_where(rng, m, 80, |s| s.binding.is_none());
            let fds = m.slots[slot].fds;
            let fd = rng.below(fds);
            let gsi = any_gsi(rng, m, 3);
            let kind = match rng.below(100) {
                0..50 => AssignKind::Edge,
                50..75 => AssignKind::Dedicated,
                75..97 => AssignKind::Own {
                    rfd: rng.below(fds),
                },
                _ => AssignKind::NotEventfd,
            };
            Op::Assign {
                slot,
                fd,
                gsi,
                kind,
            }
        }
        "deassign" => {
            let slot = slot_where(rng, m, 85, bound);
            let fd = rng.below(m.slots[slot].fds);
            let gsi = match m.slots[slot].binding {
                Some(b) if rng.percent(80) => m.lines[b.line].gsi,
                _ => any_gsi(rng, m, 10),
            };
            Op::Deassign {
                slot,
                fd,
                gsi,
                resample_flag: rng.percent(15),
            }
        }
        "close" => {
            let slot = rng.below(m.slots.len());
            Op::Close {
                slot,
                fd: rng.below(m.slots[slot].fds),
            }
        }
        "dup" => {
            let slot = slot_where(rng, m, 100, |s| s.fds < MAX_FDS);
            let fd = rng.below(m.slots[slot].fds);
            if m.slots[slot].fds < MAX_FDS {
                Op::Dup { slot, fd }
            } else {
                Op::Signal { slot, fd }
            }
        }
        "route" => {
            let gsi = any_gsi(rng, m, 3);
            let (flags, addr, data, pad) = match rng.below(100) {
                0..35 => (ROUTE_MSI, ROUTE_A.0, ROUTE_A.1, 0),
                35..55 => (ROUTE_MSI, ROUTE_B.0, ROUTE_B.1, 0),
                55..70 => (ROUTE_MSI, (rng.next() & !3).max(4), rng.next() as u32, 0),
                70..95 => (0, 0, 0, 0),
                _ => rng.pick(&[
                    (ROUTE_MSI, 0, 1, 0),
                    (ROUTE_MSI, ROUTE_A.0 | 1, 1, 0),
                    (ROUTE_MSI, ROUTE_A.0 | 2, 1, 0),
                    (0, 4, 0, 0),
                    (0, 0, 1, 0),
                    (2, ROUTE_A.0, 1, 0),
                    (ROUTE_MSI | 2, ROUTE_A.0, 1, 0),
                    (ROUTE_MSI, ROUTE_A.0, 1, 1),
                ]),
            };
            Op::Route {
                gsi,
                flags,
                addr,
                data,
                pad,
            }
        }
        "mask" => {
            let gsi = any_gsi(rng, m, 3);
            let flags = if rng.percent(3) {
                rng.pick(&[2, 0x8000_0001])
            } else if rng.percent(50) {
                MASK_MASKED
            } else {
                0
            };
            Op::Mask { gsi, flags }
        }
        "ack" => {
            let asserted: Vec<u32> = m
                .lines
                .iter()
                .filter(|l| l.asserted)
                .map(|l| l.gsi)
                .collect();
            let gsi = if !asserted.is_empty() && rng.percent(60) {
                rng.pick(&asserted)
            } else {
                any_gsi(rng, m, 3)
            };
            let pad = u32::from(rng.percent(2));
            Op::Ack { gsi, pad }
        }
        "read" => {
            let bytes = if rng.percent(4) {
                1 + rng.below(REC - 1)
            } else {
                let extra = if rng.percent(20) {
                    1 + rng.below(REC - 1)
                } else {
                    0
                };
                REC * (1 + rng.below(8)) + extra
            };
            Op::Read { bytes }
        }
        "stats" => Op::Stats {
            gsi: any_gsi(rng, m, 3),
            pad: if rng.percent(2) { 7 } else { 0 },
        },
        "read_eventfd" => {
            let slot = rng.below(m.slots.len());
            Op::ReadEventfd {
                slot,
                fd: rng.below(m.slots[slot].fds),
            }
        }
        "read_resamplefd" | "close_resamplefd" => {
            let d = dedicated_slots(m);
            match (d.is_empty(), kind) {
                (true, _) => Op::Stats {
                    gsi: rng.pick(&m.pool),
                    pad: 0,
                },
                (false, "read_resamplefd") => Op::ReadResamplefd { slot: rng.pick(&d) },
                (false, _) => Op::CloseResamplefd { slot: rng.pick(&d) },
            }
        }
        "reopen" => Op::Reopen,
        _ => Op::Info,
    }
}

/// The GSIs of each thread: the first six, the middle and the last one.
pub fn gsi_pool(nr: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..nr.min(6)).collect();
    for g in [nr / 2, nr.saturating_sub(1)] {
        if !v.contains(&g) {
            v.push(g);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::check::{Fuzzer, Released, Tally, Target};
    use crate::fuzz::fake::{run_fake, Bug, Fake, NR};
    use crate::fuzz::op::{Outcome, Step};

    #[test]
    fn gsi_pools() {
        assert_eq!(gsi_pool(1024), vec![0, 1, 2, 3, 4, 5, 512, 1023]);
        assert_eq!(gsi_pool(8), vec![0, 1, 2, 3, 4, 5, 7]);
        assert_eq!(gsi_pool(1), vec![0]);
    }

    /// Against a correct target the model agrees with itself for long runs,
    /// keeps its invariants, and the mix reaches every op and every result.
    #[test]
    fn fuzz_clean_target_passes_and_covers() {
        let mut all = Tally::default();
        for seed in [1, 2, 0xdead_beef] {
            let (f, r) = run_fake(seed, Bug::None, 20_000);
            r.unwrap();
            all.merge(&f.tally);
        }
        for (k, _) in MIX {
            assert!(
                all.kinds.get(k).is_some_and(|t| t.n > 0),
                "{k}: {}",
                all.mix()
            );
        }
        let errs = |k: &str| all.kinds[k].errors.clone();
        assert!(errs("assign").contains_key("EBUSY"), "{}", all.mix());
        assert!(errs("assign").contains_key("EINVAL"), "{}", all.mix());
        assert!(errs("read").contains_key("EAGAIN"), "{}", all.mix());
        assert!(
            errs("read_resamplefd").contains_key("EAGAIN"),
            "{}",
            all.mix()
        );
        assert!(all.records > 1000 && all.stats > 1000, "{all:?}");
    }

    /// FNV-1a, 64 bits: a hash that no Rust release changes.
    fn fnv(h: u64, bytes: &[u8]) -> u64 {
        bytes.iter().fold(h, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// A target that hashes every op it runs and what it answered.
    struct Recorder {
        inner: Fake,
        hash: u64,
    }

    impl Target for Recorder {
        fn exec(&mut self, op: &Op) -> Result<Outcome, String> {
            let o = self.inner.exec(op)?;
            self.hash = fnv(self.hash, format!("{op:?} -> {o:?}\n").as_bytes());
            Ok(o)
        }

        fn settle(&mut self, step: &Step) -> Result<Released, String> {
            self.inner.settle(step)
        }
    }

    /// A printed seed replays the run: the op sequences (and the model's
    /// answers) of seed 0x1234 are pinned, 3 threads of 1000 random ops and
    /// the final check each, and so is the report of a planted bug. A change
    /// of these hashes changes what every recorded seed means.
    #[test]
    fn fuzz_seed_pins_op_sequence() {
        let mut hash = 0xcbf2_9ce4_8422_2325;
        for thread in 0..3 {
            let mut f = Fuzzer::new(0x1234, thread, 3, NR, &gsi_pool(NR));
            let mut rec = Recorder {
                inner: Fake::new(&f, Bug::None),
                hash,
            };
            for _ in 0..1000 {
                f.random_step(&mut rec).unwrap();
            }
            f.finish(&mut rec).unwrap();
            hash = fnv(rec.hash, f.tally.mix().as_bytes());
        }
        assert_eq!(hash, 0x36e2_1da6_99b1_bec9, "op sequence hash {hash:#018x}");
        let (_, r) = run_fake(0x1234, Bug::LoseSignal, 20_000);
        let m = r.unwrap_err();
        let h = fnv(0xcbf2_9ce4_8422_2325, m.as_bytes());
        assert_eq!(
            h, 0x4c85_7d05_ffba_47b5,
            "failure report hash {h:#018x}:\n{m}"
        );
    }
}

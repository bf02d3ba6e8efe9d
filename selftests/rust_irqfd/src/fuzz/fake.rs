// SPDX-License-Identifier: GPL-2.0
//! For the unit tests: the model itself as a [`Target`], with a bug planted
//! or not, so that the fuzzer can be run and checked without a device.

use std::collections::BTreeMap;

use super::check::{Fuzzer, Released, Target};
use super::gen::gsi_pool;
use super::model::{Model, Route};
use super::op::{counter_read, Op, Outcome, Step};
use crate::abi::MASK_MASKED;

/// `nr_gsis` of the fake contexts.
pub(super) const NR: u32 = 16;

/// A model with a planted bug, as a target: the fuzzer must notice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Bug {
    None,
    /// Every 50th signal of a bound eventfd injects nothing.
    LoseSignal,
    /// Unmask releases the latch with the route the GSI had at mask.
    UnmaskStaleRoute,
    /// The last resample irqfd leaving does not deassert the line.
    NoDeassertOnLeave,
    /// An ack signals no resamplefd (but returns the count).
    AckSignalsNothing,
}

pub(super) struct Fake {
    m: Model,
    bug: Bug,
    signals: u64,
    routes_at_mask: BTreeMap<u32, Route>,
    last: Option<Step>,
}

impl Fake {
    pub(super) fn new(f: &Fuzzer, bug: Bug) -> Self {
        Fake {
            m: f.model.clone(),
            bug,
            signals: 0,
            routes_at_mask: BTreeMap::new(),
            last: None,
        }
    }
}

impl Target for Fake {
    fn exec(&mut self, op: &Op) -> Result<Outcome, String> {
        let before = self.m.clone();
        let line_of = |m: &Model, gsi: u32| m.lines.iter().position(|l| l.gsi == gsi);
        if let (Bug::LoseSignal, Op::Signal { slot, .. }) = (self.bug, op) {
            if self.m.slots[*slot].binding.is_some() {
                self.signals += 1;
                if self.signals.is_multiple_of(50) {
                    self.m.slots[*slot].counter = 0;
                    self.last = Some(Step::done(Ok(())));
                    return Ok(Outcome::Done(Ok(())));
                }
            }
        }
        let mut swapped = None;
        if let (Bug::UnmaskStaleRoute, Op::Mask { gsi, flags }) = (self.bug, op) {
            if let Some(i) = line_of(&self.m, *gsi) {
                if *flags == MASK_MASKED && !self.m.lines[i].masked {
                    self.routes_at_mask.insert(*gsi, self.m.lines[i].route);
                } else if *flags == 0 {
                    if let Some(r) = self.routes_at_mask.get(gsi) {
                        swapped = Some((i, self.m.lines[i].route));
                        self.m.lines[i].route = *r;
                    }
                }
            }
        }
        let step = self.m.apply(op);
        if let Some((i, r)) = swapped {
            self.m.lines[i].route = r;
        }
        match (self.bug, op) {
            (Bug::NoDeassertOnLeave, Op::Deassign { .. } | Op::Close { .. }) => {
                for (l, b) in self.m.lines.iter_mut().zip(&before.lines) {
                    l.asserted = b.asserted;
                }
            }
            (Bug::AckSignalsNothing, Op::Ack { gsi, pad: 0 }) => {
                self.m = before;
                if let Some(l) = self.m.lines.iter_mut().find(|l| l.gsi == *gsi) {
                    if l.asserted {
                        l.asserted = false;
                        l.acks += 1;
                    }
                }
            }
            _ => {}
        }
        let expect = step.expect.clone();
        self.last = Some(step);
        Ok(expect)
    }

    fn settle(&mut self, _: &Step) -> Result<Released, String> {
        let step = self.last.take().ok_or("no step")?;
        Ok(step
            .released
            .iter()
            .map(|&(s, c)| (s, counter_read(c)))
            .collect())
    }
}

/// Runs `ops` random ops and the final check of thread 0 against a
/// fake with `bug`.
pub(super) fn run_fake(seed: u64, bug: Bug, ops: u64) -> (Fuzzer, Result<(), String>) {
    let mut f = Fuzzer::new(seed, 0, 1, NR, &gsi_pool(NR));
    let mut fake = Fake::new(&f, bug);
    let r = (|| {
        for _ in 0..ops {
            f.random_step(&mut fake)?;
            f.model.check_invariants()?;
        }
        f.finish(&mut fake)
    })();
    (f, r)
}

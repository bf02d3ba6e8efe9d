// SPDX-License-Identifier: GPL-2.0
//! The reference model: the state of one thread's context and eventfds as
//! the ABI defines it, and for each op what the kernel must answer.

use std::collections::VecDeque;
use std::fmt::Write as _;

use super::op::{counter_read, AssignKind, Op, Outcome, Step, Wait, REC};
use crate::abi::{
    RustIrqfdDelivery, RustIrqfdGsiStats, DELIVERY_LEVEL, DELIVERY_MSI, MASK_MASKED, ROUTE_MSI,
};
use crate::sys::Errno;

/// The route of a GSI, or the one a record was raised with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Route {
    /// A plain line.
    #[default]
    Line,
    /// An MSI message.
    Msi { addr: u64, data: u32 },
}

/// A GSI's pending record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    pub seq: u64,
    pub count: u64,
    pub route: Route,
    pub level: bool,
}

/// One GSI of the interrupt controller: what the controller keeps.
#[derive(Clone, Debug, Default)]
pub struct Line {
    pub gsi: u32,
    pub route: Route,
    pub masked: bool,
    pub latched: u64,
    pub latched_level: bool,
    pub asserted: bool,
    pub pending: Option<Pending>,
    pub injected: u64,
    pub raised: u64,
    pub coalesced: u64,
    pub delivered: u64,
    pub acks: u64,
}

impl Line {
    fn new(gsi: u32) -> Self {
        Line {
            gsi,
            ..Default::default()
        }
    }

    /// What `RUST_IRQFD_GSI_STATS` must say.
    pub fn stats(&self) -> RustIrqfdGsiStats {
        RustIrqfdGsiStats {
            gsi: self.gsi,
            pad: 0,
            injected: self.injected,
            raised: self.raised,
            coalesced: self.coalesced,
            delivered: self.delivered,
            pending: u64::from(self.pending.is_some()),
            latched: self.latched,
            acks: self.acks,
            masked: u32::from(self.masked),
            asserted: u32::from(self.asserted),
        }
    }
}

/// The resamplefd of a resample irqfd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// The irqfd's own eventfd: an ack's signal injects again through it.
    Own,
    /// A fresh eventfd made for the binding: `count` is its counter; `open`
    /// while the test still holds its descriptor (to read it).
    Dedicated { count: u64, open: bool },
}

/// An irqfd: the slot's eventfd bound to a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Index into [`Model::lines`].
    pub line: usize,
    pub resample: Option<Resample>,
}

/// One eventfd of a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Open descriptors of it (the first one and its dups).
    pub fds: usize,
    /// Its counter.
    pub counter: u64,
    pub binding: Option<Binding>,
}

impl Slot {
    fn fresh() -> Self {
        Slot {
            fds: 1,
            counter: 0,
            binding: None,
        }
    }
}

/// The state of one thread's context and eventfds, as the ABI defines it.
#[derive(Clone, Debug)]
pub struct Model {
    pub nr_gsis: u32,
    /// The in-range GSIs the generator uses.
    pub pool: Vec<u32>,
    pub lines: Vec<Line>,
    /// Lines with a pending record, oldest first.
    pub fifo: VecDeque<usize>,
    pub next_seq: u64,
    pub slots: Vec<Slot>,
    pub shutdowns: u64,
}

impl Model {
    /// A fresh context with `nr_gsis` lines, of which the generator uses
    /// `pool`, and `slots` fresh eventfds.
    pub fn new(nr_gsis: u32, pool: &[u32], slots: usize) -> Self {
        Model {
            nr_gsis,
            pool: pool.to_vec(),
            lines: pool.iter().map(|&g| Line::new(g)).collect(),
            fifo: VecDeque::new(),
            next_seq: 1,
            slots: vec![Slot::fresh(); slots],
            shutdowns: 0,
        }
    }

    /// The line of an in-range `gsi` (made on first use).
    fn line(&mut self, gsi: u32) -> usize {
        match self.lines.iter().position(|l| l.gsi == gsi) {
            Some(i) => i,
            None => {
                self.lines.push(Line::new(gsi));
                self.lines.len() - 1
            }
        }
    }

    /// The resample irqfds bound to `line` (its resampler's list).
    fn resamplers(&self, line: usize) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&s| {
                matches!(self.slots[s].binding,
                    Some(Binding { line: l, resample: Some(_) }) if l == line)
            })
            .collect()
    }

    /// Active irqfds.
    pub fn nr_irqfds(&self) -> u32 {
        self.slots.iter().filter(|s| s.binding.is_some()).count() as u32
    }

    /// Hands `k` injections to the unmasked `line` with `route`: a new
    /// record, or merged into the pending one or the asserted level line.
    fn deliver(&mut self, line: usize, k: u64, route: Route, level: bool) {
        let l = &mut self.lines[line];
        if level {
            if l.asserted {
                l.coalesced += k;
                if let Some(p) = &mut l.pending {
                    p.count += k;
                }
                return;
            }
            l.asserted = true;
        }
        if let Some(p) = &mut l.pending {
            p.count += k;
            l.coalesced += k;
            return;
        }
        l.pending = Some(Pending {
            seq: self.next_seq,
            count: k,
            route,
            level,
        });
        l.raised += 1;
        l.coalesced += k - 1;
        self.next_seq += 1;
        self.fifo.push_back(line);
    }

    /// One injection into `line` with its route now.
    fn inject(&mut self, line: usize, level: bool) {
        let l = &mut self.lines[line];
        l.injected += 1;
        if l.masked {
            l.latched += 1;
            l.latched_level |= level;
            return;
        }
        let route = l.route;
        self.deliver(line, 1, route, level);
    }

    /// The slot's eventfd is signalled once: a bound eventfd's wakeup
    /// consumes the counter and injects; an unbound one counts.
    fn signal(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        match s.binding {
            Some(b) => {
                s.counter = 0;
                self.inject(b.line, b.resample.is_some());
            }
            None => s.counter += 1,
        }
    }

    /// The slot's irqfd is shut down: its resampler loses it (the last one
    /// to leave deasserts the line) and a dedicated resamplefd is released.
    fn unbind(&mut self, slot: usize, released: &mut Vec<(usize, u64)>) {
        let Some(b) = self.slots[slot].binding.take() else {
            return;
        };
        self.shutdowns += 1;
        if b.resample.is_some() && self.resamplers(b.line).is_empty() {
            self.deassert(b.line);
        }
        if let Some(Resample::Dedicated { count, open: true }) = b.resample {
            released.push((slot, count));
        }
    }

    /// The last resample irqfd of `line` left: the line is deasserted, and
    /// a level injection the mask latch holds goes out as an edge.
    fn deassert(&mut self, line: usize) {
        let l = &mut self.lines[line];
        l.asserted = false;
        l.latched_level = false;
    }

    /// A record leaves the FIFO (`read(2)`).
    fn pop(&mut self) -> Option<RustIrqfdDelivery> {
        let line = self.fifo.pop_front()?;
        let l = &mut self.lines[line];
        let p = l.pending.take()?;
        l.delivered += 1;
        let (msi, msi_addr, msi_data) = match p.route {
            Route::Line => (0, 0, 0),
            Route::Msi { addr, data } => (DELIVERY_MSI, addr, data),
        };
        Some(RustIrqfdDelivery {
            seq: p.seq,
            gsi: l.gsi,
            flags: msi | if p.level { DELIVERY_LEVEL } else { 0 },
            count: p.count,
            msi_addr,
            msi_data,
            pad: 0,
        })
    }

    /// Whether a `SET_ROUTE` request is valid, and the route it sets.
    fn route_arg(flags: u32, addr: u64, data: u32, pad: u32) -> Option<Route> {
        match (flags, pad) {
            (ROUTE_MSI, 0) if addr != 0 && addr & 3 == 0 => Some(Route::Msi { addr, data }),
            (0, 0) if addr == 0 && data == 0 => Some(Route::Line),
            _ => None,
        }
    }

    /// Applies `op` and predicts what the kernel answers.
    pub fn apply(&mut self, op: &Op) -> Step {
        const EINVAL: i32 = libc::EINVAL;
        let nr = self.nr_gsis;
        match *op {
            Op::Assign {
                slot, gsi, kind, ..
            } => {
                // Checks in the documented order: gsi, fd, resamplefd, limit,
                // memory, busy.
                if gsi >= nr || kind == AssignKind::NotEventfd {
                    return Step::done(Err(EINVAL));
                }
                let line = self.line(gsi);
                let resample = match kind {
                    AssignKind::Edge => None,
                    AssignKind::Dedicated => Some(Resample::Dedicated {
                        count: 0,
                        open: true,
                    }),
                    AssignKind::Own { .. } | AssignKind::NotEventfd => Some(Resample::Own),
                };
                if self.slots[slot].binding.is_some() {
                    // A resample assign joined the GSI's resampler before it
                    // failed to hook on: leaving it as the last one deasserts.
                    if resample.is_some() && self.resamplers(line).is_empty() {
                        self.deassert(line);
                    }
                    return Step::done(Err(libc::EBUSY));
                }
                self.slots[slot].binding = Some(Binding { line, resample });
                let mut step = Step::done(Ok(()));
                // An event pending at assign: one injection, the counter stays.
                if self.slots[slot].counter > 0 {
                    self.inject(line, resample.is_some());
                    step.wait = Wait::Injected {
                        gsi,
                        n: self.lines[line].injected,
                    };
                }
                step
            }
            Op::Deassign { slot, gsi, .. } => {
                let mut step = Step::done(Ok(()));
                if let Some(b) = self.slots[slot].binding {
                    if self.lines[b.line].gsi == gsi {
                        self.unbind(slot, &mut step.released);
                        // The shutdown unhooks it and drains the counter.
                        self.slots[slot].counter = 0;
                    }
                }
                step
            }
            Op::Signal { slot, .. } => {
                self.signal(slot);
                Step::done(Ok(()))
            }
            Op::ForkSignal { slot, .. } => {
                self.signal(slot);
                Step::new(Outcome::Value(Ok(0)))
            }
            Op::Close { slot, .. } => {
                let mut step = Step::done(Ok(()));
                self.slots[slot].fds -= 1;
                if self.slots[slot].fds == 0 {
                    // The last descriptor: EPOLLHUP shuts the irqfd down,
                    // asynchronously. The slot gets a fresh eventfd.
                    if self.slots[slot].binding.is_some() {
                        self.unbind(slot, &mut step.released);
                        step.wait = Wait::Shutdowns(self.shutdowns);
                    }
                    self.slots[slot] = Slot::fresh();
                }
                step
            }
            Op::Dup { slot, .. } => {
                self.slots[slot].fds += 1;
                Step::done(Ok(()))
            }
            Op::Route {
                gsi,
                flags,
                addr,
                data,
                pad,
            } => match Self::route_arg(flags, addr, data, pad) {
                Some(route) if gsi < nr => {
                    let line = self.line(gsi);
                    self.lines[line].route = route;
                    Step::done(Ok(()))
                }
                _ => Step::done(Err(EINVAL)),
            },
            Op::Mask { gsi, flags } => {
                if gsi >= nr || flags & !MASK_MASKED != 0 {
                    return Step::done(Err(EINVAL));
                }
                let line = self.line(gsi);
                let l = &mut self.lines[line];
                if flags & MASK_MASKED != 0 {
                    l.masked = true;
                } else if l.masked {
                    l.masked = false;
                    let (k, level, route) = (l.latched, l.latched_level, l.route);
                    l.latched = 0;
                    l.latched_level = false;
                    if k > 0 {
                        self.deliver(line, k, route, level);
                    }
                }
                Step::done(Ok(()))
            }
            Op::Ack { gsi, pad } => {
                if gsi >= nr || pad != 0 {
                    return Step::new(Outcome::Value(Err(Errno(EINVAL))));
                }
                let line = self.line(gsi);
                if !self.lines[line].asserted {
                    return Step::new(Outcome::Value(Ok(0)));
                }
                self.lines[line].asserted = false;
                self.lines[line].acks += 1;
                let list = self.resamplers(line);
                for &s in &list {
                    match &mut self.slots[s].binding {
                        Some(Binding {
                            resample: Some(Resample::Dedicated { count, .. }),
                            ..
                        }) => *count += 1,
                        _ => {
                            // Its own eventfd: the wakeup consumes the signal
                            // and injects (level) again.
                            self.slots[s].counter = 0;
                            self.inject(line, true);
                        }
                    }
                }
                Step::new(Outcome::Value(Ok(list.len() as u64)))
            }
            Op::Read { bytes } => {
                if bytes < REC {
                    return Step::new(Outcome::Records(Err(Errno(EINVAL))));
                }
                let n = (bytes / REC).min(self.fifo.len());
                if n == 0 {
                    return Step::new(Outcome::Records(Err(Errno(libc::EAGAIN))));
                }
                let v = (0..n).filter_map(|_| self.pop()).collect();
                Step::new(Outcome::Records(Ok(v)))
            }
            Op::Stats { gsi, pad } => {
                if gsi >= nr || pad != 0 {
                    return Step::new(Outcome::Stats(Err(Errno(EINVAL))));
                }
                let line = self.line(gsi);
                Step::new(Outcome::Stats(Ok(self.lines[line].stats())))
            }
            Op::Info => Step::new(Outcome::Info {
                nr_irqfds: self.nr_irqfds(),
                shutdowns: self.shutdowns,
            }),
            Op::ReadEventfd { slot, .. } => {
                let v = std::mem::take(&mut self.slots[slot].counter);
                Step::new(Outcome::Value(counter_read(v)))
            }
            Op::ReadResamplefd { slot } => match &mut self.slots[slot].binding {
                Some(Binding {
                    resample: Some(Resample::Dedicated { count, open: true }),
                    ..
                }) => Step::new(Outcome::Value(counter_read(std::mem::take(count)))),
                // The generator never asks for this.
                _ => Step::new(Outcome::Value(Err(Errno(libc::EBADF)))),
            },
            Op::CloseResamplefd { slot } => {
                if let Some(Binding {
                    resample: Some(Resample::Dedicated { open, .. }),
                    ..
                }) = &mut self.slots[slot].binding
                {
                    *open = false;
                }
                Step::done(Ok(()))
            }
            Op::Reopen => {
                // Release shuts every irqfd down (draining the counters of
                // their eventfds) and waits; the new context starts afresh.
                let mut step = Step::done(Ok(()));
                for s in 0..self.slots.len() {
                    if let Some(b) = self.slots[s].binding.take() {
                        if let Some(Resample::Dedicated { count, open: true }) = b.resample {
                            step.released.push((s, count));
                        }
                        self.slots[s].counter = 0;
                    }
                }
                for l in &mut self.lines {
                    *l = Line::new(l.gsi);
                }
                self.fifo.clear();
                self.next_seq = 1;
                self.shutdowns = 0;
                step
            }
        }
    }

    /// The per-line invariants of the ABI, on the model itself.
    pub fn check_invariants(&self) -> Result<(), String> {
        for l in &self.lines {
            let s = l.stats();
            if s.injected != s.coalesced + s.raised + s.latched
                || s.raised != s.delivered + s.pending
                || (!l.masked && l.latched != 0)
            {
                return Err(format!("model line broken: {l:?}"));
            }
        }
        let queued: Vec<usize> = self.fifo.iter().copied().collect();
        let pending: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].pending.is_some())
            .collect();
        let mut sorted = queued.clone();
        sorted.sort_unstable();
        if sorted != pending {
            return Err(format!(
                "model fifo {queued:?} vs pending lines {pending:?}"
            ));
        }
        Ok(())
    }

    /// One line per GSI and slot, for a failure report.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            let _ = writeln!(
                s,
                "gsi {}: route {:?} masked {} latched {}{} asserted {} pending {:?} \
                 inj {} raised {} coal {} deliv {} acks {}",
                l.gsi,
                l.route,
                l.masked,
                l.latched,
                if l.latched_level { " (level)" } else { "" },
                l.asserted,
                l.pending,
                l.injected,
                l.raised,
                l.coalesced,
                l.delivered,
                l.acks
            );
        }
        for (i, sl) in self.slots.iter().enumerate() {
            let _ = writeln!(
                s,
                "slot {i}: fds {} counter {} binding {:?}",
                sl.fds,
                sl.counter,
                sl.binding.map(|b| (self.lines[b.line].gsi, b.resample))
            );
        }
        let _ = write!(
            s,
            "fifo {:?} next_seq {} shutdowns {}",
            self.fifo
                .iter()
                .map(|&i| self.lines[i].gsi)
                .collect::<Vec<_>>(),
            self.next_seq,
            self.shutdowns
        );
        s
    }
}

#[cfg(test)]
mod tests;

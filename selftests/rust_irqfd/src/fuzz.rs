// SPDX-License-Identifier: GPL-2.0
//! Model-checked fuzzer (`fuzz_model`): random sequences of assign,
//! deassign, signal (by `write(2)` and from a forked child), close, dup,
//! route, mask, ack, read and the observing ioctls, from several threads at
//! once, each checked against a reference model that predicts every result,
//! every record `read(2)` returns (seq, gsi, count, flags, route) and every
//! counter of `RUST_IRQFD_GSI_STATS`.
//!
//! Each thread has its own context (one open of the device), its own
//! eventfds and its own GSIs, so that its model is sequential and exact;
//! the threads run concurrently in the kernel, where they share the module,
//! the workqueues and the slabs. Only the fast path is predictable to the
//! injection: with `deferred_only` the test skips.
//!
//! Reproducible: every thread draws its ops from its own PRNG, seeded from
//! the run's seed (`--fuzz-seed`, printed before the run) and its index, and
//! an op depends only on that PRNG and the thread's model, which a passing
//! run keeps equal to the kernel. So a seed gives every thread the same op
//! sequence again (up to the time budget; `--fuzz-ops` bounds it exactly);
//! only the interleaving of the threads differs.
//!
//! The asynchronous effects are waited for, bounded by `--timeout`: the
//! shutdown of an irqfd whose eventfd was closed (`EPOLLHUP`; a child forked
//! by another thread may hold a copy of the eventfd and delay it until it
//! exits), and the injection an assign makes for an event already pending
//! (queued by the C reference, made before the ioctl returns by the Rust
//! module: the summary counts how often it was already there).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::abi::{
    RustIrqfd, RustIrqfdAck, RustIrqfdDelivery, RustIrqfdGsiStats, RustIrqfdMask, RustIrqfdRoute,
    DELIVERY_LEVEL, DELIVERY_MSI, FLAG_DEASSIGN, FLAG_RESAMPLE, MASK_MASKED, ROUTE_MSI,
};
use crate::dev::Ctx;
use crate::harness::{panic_message, skip, test, wait_until, Env, Needs, Ran, Test};
use crate::stress;
use crate::sys::{self, Errno};

/// The fuzzer, one test per device.
pub const TESTS: &[Test] = &[test!(fuzz_model, Needs::gsis(8), [Fuzz])];

/// `--fuzz-secs` default: the short run of `make check`.
pub const DEFAULT_SECS: f64 = 3.0;
/// `--fuzz-threads` default.
pub const DEFAULT_THREADS: usize = 3;
/// Most threads `--fuzz-threads` takes.
pub const MAX_THREADS: usize = 64;

/// Eventfd slots of each thread.
pub const SLOTS: usize = 6;
/// Most descriptors (the eventfd and its dups) a slot holds at once.
pub const MAX_FDS: usize = 3;
/// Ops of each thread kept for a failure report.
const TRACE: usize = 12;

/// The fuzzer's settings, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FuzzCfg {
    /// Time budget of each device's run, in seconds.
    pub secs: f64,
    /// The run's seed; `None`: drawn from the clock (and printed).
    pub seed: Option<u64>,
    /// Threads, each with its own context.
    pub threads: usize,
    /// Op budget of each thread (random ops; the final checks come on top).
    pub ops: Option<u64>,
}

impl Default for FuzzCfg {
    fn default() -> Self {
        FuzzCfg {
            secs: DEFAULT_SECS,
            seed: None,
            threads: DEFAULT_THREADS,
            ops: None,
        }
    }
}

impl FuzzCfg {
    /// These settings with the seed resolved: a missing one is drawn from
    /// the clock now (the runner does it once, so that every device gets
    /// the same op sequences).
    pub fn resolved(self) -> Self {
        FuzzCfg {
            seed: Some(self.seed.unwrap_or_else(clock_seed)),
            ..self
        }
    }
}

/// A seed from the clock and the pid.
fn clock_seed() -> u64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Rng::new(t ^ (u64::from(std::process::id()) << 40)).next()
}

/// Parses a seed: `0x` hex or decimal.
pub fn parse_seed(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

// --- PRNG ---

/// splitmix64: small, fast, and every seed is a good one.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with state `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The generator of thread `thread` of a run seeded with `seed`.
    pub fn for_thread(seed: u64, thread: usize) -> Self {
        let mut r = Rng(seed ^ (thread as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng(r.next())
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

// --- The model ---

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

/// What an op is expected to return, or returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An ioctl, write or close with no value.
    Done(Result<(), Errno>),
    /// A value: the ack's count, an eventfd's counter, a child's status.
    Value(Result<u64, Errno>),
    /// What one `read(2)` of the context returned.
    Records(Result<Vec<RustIrqfdDelivery>, Errno>),
    /// `RUST_IRQFD_GSI_STATS`.
    Stats(Result<RustIrqfdGsiStats, Errno>),
    /// `nr_irqfds` and `shutdowns` of `RUST_IRQFD_GET_INFO`.
    Info { nr_irqfds: u32, shutdowns: u64 },
}

/// An asynchronous effect to wait for after an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    None,
    /// `shutdowns` of the context reaches this.
    Shutdowns(u64),
    /// `injected` of `gsi` reaches `n`.
    Injected {
        gsi: u32,
        n: u64,
    },
}

/// The model's prediction for one op.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub expect: Outcome,
    pub wait: Wait,
    /// Dedicated resamplefds whose irqfd went away: (slot, counter), read
    /// once the op (and its wait) is done.
    pub released: Vec<(usize, u64)>,
}

impl Step {
    fn new(expect: Outcome) -> Self {
        Step {
            expect,
            wait: Wait::None,
            released: Vec::new(),
        }
    }

    fn done(r: Result<(), i32>) -> Self {
        Self::new(Outcome::Done(r.map_err(Errno)))
    }
}

/// An eventfd read: its counter, or `EAGAIN` at 0.
pub fn counter_read(v: u64) -> Result<u64, Errno> {
    if v > 0 {
        Ok(v)
    } else {
        Err(Errno(libc::EAGAIN))
    }
}

/// How an assign makes its irqfd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignKind {
    /// Edge-triggered.
    Edge,
    /// `RESAMPLE` with a fresh eventfd as resamplefd.
    Dedicated,
    /// `RESAMPLE` with resamplefd the slot's own eventfd (descriptor `rfd`
    /// of the slot, possibly a dup).
    Own { rfd: usize },
    /// `RESAMPLE` with resamplefd the context itself: `EINVAL`.
    NotEventfd,
}

/// One operation of a thread. `slot` and `fd` index the thread's eventfds
/// and the open descriptors of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Assign {
        slot: usize,
        fd: usize,
        gsi: u32,
        kind: AssignKind,
    },
    /// With `resample_flag`, `RESAMPLE` is set too (and resamplefd is not
    /// open): deassign ignores both.
    Deassign {
        slot: usize,
        fd: usize,
        gsi: u32,
        resample_flag: bool,
    },
    /// `write(2)` of 1.
    Signal {
        slot: usize,
        fd: usize,
    },
    /// A forked child writes 1 and exits; its status must be 0.
    ForkSignal {
        slot: usize,
        fd: usize,
    },
    Close {
        slot: usize,
        fd: usize,
    },
    Dup {
        slot: usize,
        fd: usize,
    },
    Route {
        gsi: u32,
        flags: u32,
        addr: u64,
        data: u32,
        pad: u32,
    },
    Mask {
        gsi: u32,
        flags: u32,
    },
    Ack {
        gsi: u32,
        pad: u32,
    },
    /// One non-blocking `read(2)` with a buffer of `bytes`.
    Read {
        bytes: usize,
    },
    Stats {
        gsi: u32,
        pad: u32,
    },
    Info,
    /// Non-blocking read of the slot's eventfd.
    ReadEventfd {
        slot: usize,
        fd: usize,
    },
    /// Non-blocking read of the slot's dedicated resamplefd.
    ReadResamplefd {
        slot: usize,
    },
    /// Close the dedicated resamplefd (the irqfd keeps its own reference).
    CloseResamplefd {
        slot: usize,
    },
    /// Close the context and open a new one.
    Reopen,
}

impl Op {
    /// The op's name in the summary.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Assign { .. } => "assign",
            Op::Deassign { .. } => "deassign",
            Op::Signal { .. } => "signal",
            Op::ForkSignal { .. } => "fork_signal",
            Op::Close { .. } => "close",
            Op::Dup { .. } => "dup",
            Op::Route { .. } => "route",
            Op::Mask { .. } => "mask",
            Op::Ack { .. } => "ack",
            Op::Read { .. } => "read",
            Op::Stats { .. } => "stats",
            Op::Info => "info",
            Op::ReadEventfd { .. } => "read_eventfd",
            Op::ReadResamplefd { .. } => "read_resamplefd",
            Op::CloseResamplefd { .. } => "close_resamplefd",
            Op::Reopen => "reopen",
        }
    }
}

/// Size of one record.
const REC: usize = RustIrqfdDelivery::SIZE;

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

// --- The generator ---

/// Two routes that differ in every byte (as `routing.rs`'s).
const ROUTE_A: (u64, u32) = (0x1111_1111_fee0_1000, 0x1111_1111);
const ROUTE_B: (u64, u32) = (0x2222_2222_efd3_2ffc, 0x2222_2222);

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

// --- Running ops against a target ---

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

// --- The device as a target ---

/// The descriptors of one slot.
struct RealSlot {
    fds: Vec<OwnedFd>,
    /// The dedicated resamplefd of its binding, while the test holds it.
    rfd: Option<OwnedFd>,
}

/// Waits made for asynchronous effects, and how many were already done at
/// the first look.
#[derive(Clone, Copy, Debug, Default)]
struct Waits {
    shutdowns: u64,
    shutdowns_at_once: u64,
    injections: u64,
    injections_at_once: u64,
}

/// One thread's context on the device and its eventfds.
struct Real<'a> {
    env: &'a Env,
    /// Forks hold it shared; closing a context takes it exclusively, so that
    /// no forked child holds a copy of the context then (its release, and
    /// the shutdown of its irqfds, would wait for the child).
    forks: &'a RwLock<()>,
    ctx: Option<Ctx>,
    slots: Vec<RealSlot>,
    waits: Waits,
}

fn new_efd() -> Result<OwnedFd, String> {
    sys::eventfd(0, libc::EFD_NONBLOCK).map_err(|e| format!("eventfd: {e}"))
}

impl<'a> Real<'a> {
    fn new(env: &'a Env, forks: &'a RwLock<()>) -> Result<Self, String> {
        let mut slots = Vec::new();
        for _ in 0..SLOTS {
            slots.push(RealSlot {
                fds: vec![new_efd()?],
                rfd: None,
            });
        }
        Ok(Real {
            env,
            forks,
            ctx: Some(env.open()?),
            slots,
            waits: Waits::default(),
        })
    }

    fn ctx(&self) -> Result<&Ctx, String> {
        self.ctx.as_ref().ok_or_else(|| "no context".to_string())
    }

    fn raw(&self, slot: usize, fd: usize) -> Result<u32, String> {
        self.slots[slot]
            .fds
            .get(fd)
            .map(|f| f.as_raw_fd() as u32)
            .ok_or_else(|| format!("slot {slot} has no descriptor {fd}"))
    }

    /// Closes everything, the context last, with no forked child around.
    fn close_all(&mut self) -> Result<(), String> {
        let _g = self.forks.write().unwrap_or_else(PoisonError::into_inner);
        self.slots.clear();
        match self.ctx.take() {
            Some(c) => c.close().map_err(|e| format!("close(context): {e}")),
            None => Ok(()),
        }
    }

    /// One non-blocking `read(2)` of `bytes`.
    fn read(&self, bytes: usize) -> Result<Result<Vec<RustIrqfdDelivery>, Errno>, String> {
        let mut buf = vec![0u8; bytes];
        let n = match sys::read(self.ctx()?.as_fd(), &mut buf) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        if n == 0 || n % REC != 0 {
            return Err(format!(
                "read({bytes}) returned {n} bytes: not whole records"
            ));
        }
        Ok(Ok(buf[..n]
            .chunks_exact(REC)
            .filter_map(RustIrqfdDelivery::from_bytes)
            .collect()))
    }
}

impl Target for Real<'_> {
    fn exec(&mut self, op: &Op) -> Result<Outcome, String> {
        let ctx = self.ctx()?;
        Ok(match *op {
            Op::Assign {
                slot,
                fd,
                gsi,
                kind,
            } => {
                let efd = self.raw(slot, fd)?;
                let mut fresh = None;
                let (flags, resamplefd) = match kind {
                    AssignKind::Edge => (0, 0),
                    AssignKind::Dedicated => {
                        let r = new_efd()?;
                        let n = r.as_raw_fd() as u32;
                        fresh = Some(r);
                        (FLAG_RESAMPLE, n)
                    }
                    AssignKind::Own { rfd } => (FLAG_RESAMPLE, self.raw(slot, rfd)?),
                    AssignKind::NotEventfd => (FLAG_RESAMPLE, ctx.as_fd().as_raw_fd() as u32),
                };
                let r = ctx.irqfd(&RustIrqfd {
                    fd: efd,
                    gsi,
                    flags,
                    resamplefd,
                    ..Default::default()
                });
                if r.is_ok() {
                    self.slots[slot].rfd = fresh;
                }
                Outcome::Done(r)
            }
            Op::Deassign {
                slot,
                fd,
                gsi,
                resample_flag,
            } => {
                let (flags, resamplefd) = if resample_flag {
                    (FLAG_DEASSIGN | FLAG_RESAMPLE, u32::MAX)
                } else {
                    (FLAG_DEASSIGN, 0)
                };
                Outcome::Done(ctx.irqfd(&RustIrqfd {
                    fd: self.raw(slot, fd)?,
                    gsi,
                    flags,
                    resamplefd,
                    ..Default::default()
                }))
            }
            Op::Signal { slot, fd } => {
                Outcome::Done(sys::eventfd_signal(self.slots[slot].fds[fd].as_fd(), 1))
            }
            Op::ForkSignal { slot, fd } => {
                let _g = self.forks.read().unwrap_or_else(PoisonError::into_inner);
                Outcome::Value(
                    sys::fork_signal(self.slots[slot].fds[fd].as_fd(), 1).map(|s| s as u64),
                )
            }
            Op::Close { slot, fd } => {
                let f = self.slots[slot].fds.remove(fd);
                let r = sys::close(f);
                if self.slots[slot].fds.is_empty() {
                    self.slots[slot].fds.push(new_efd()?);
                }
                Outcome::Done(r)
            }
            Op::Dup { slot, fd } => match sys::dup(self.slots[slot].fds[fd].as_fd()) {
                Ok(d) => {
                    self.slots[slot].fds.push(d);
                    Outcome::Done(Ok(()))
                }
                Err(e) => Outcome::Done(Err(e)),
            },
            Op::Route {
                gsi,
                flags,
                addr,
                data,
                pad,
            } => Outcome::Done(ctx.set_route_raw(&RustIrqfdRoute {
                gsi,
                flags,
                msi_addr: addr,
                msi_data: data,
                pad,
            })),
            Op::Mask { gsi, flags } => {
                Outcome::Done(ctx.set_mask_raw(&RustIrqfdMask { gsi, flags }))
            }
            Op::Ack { gsi, pad } => {
                Outcome::Value(ctx.ack_raw(&RustIrqfdAck { gsi, pad }).map(|n| n as u64))
            }
            Op::Read { bytes } => Outcome::Records(self.read(bytes)?),
            Op::Stats { gsi, pad } => Outcome::Stats(ctx.stats_raw(gsi, pad)),
            Op::Info => {
                let i = ctx
                    .info()
                    .map_err(|e| format!("RUST_IRQFD_GET_INFO: {e}"))?;
                let want = self.env.info;
                if (i.version, i.nr_gsis, i.flags, i.max_irqfds, i.reserved)
                    != (
                        want.version,
                        want.nr_gsis,
                        want.flags,
                        want.max_irqfds,
                        want.reserved,
                    )
                {
                    return Err(format!("GET_INFO changed: {i:?}, at the start {want:?}"));
                }
                Outcome::Info {
                    nr_irqfds: i.nr_irqfds,
                    shutdowns: i.shutdowns,
                }
            }
            Op::ReadEventfd { slot, fd } => {
                Outcome::Value(sys::eventfd_read(self.slots[slot].fds[fd].as_fd()))
            }
            Op::ReadResamplefd { slot } => match &self.slots[slot].rfd {
                Some(r) => Outcome::Value(sys::eventfd_read(r.as_fd())),
                None => return Err(format!("slot {slot} holds no resamplefd")),
            },
            Op::CloseResamplefd { slot } => match self.slots[slot].rfd.take() {
                Some(r) => Outcome::Done(sys::close(r)),
                None => return Err(format!("slot {slot} holds no resamplefd")),
            },
            Op::Reopen => {
                let r = {
                    let _g = self.forks.write().unwrap_or_else(PoisonError::into_inner);
                    match self.ctx.take() {
                        Some(c) => c.close(),
                        None => Ok(()),
                    }
                };
                self.ctx = Some(self.env.open()?);
                Outcome::Done(r)
            }
        })
    }

    fn settle(&mut self, step: &Step) -> Result<Released, String> {
        let ctx = self.ctx()?;
        match step.wait {
            Wait::None => {}
            Wait::Shutdowns(n) => {
                let mut first = true;
                let mut at_once = false;
                wait_until(self.env, &format!("shutdowns == {n}"), || {
                    let i = ctx
                        .info()
                        .map_err(|e| format!("RUST_IRQFD_GET_INFO: {e}"))?;
                    if i.shutdowns > n {
                        return Err(format!("shutdowns {} > the model's {n}", i.shutdowns));
                    }
                    at_once |= first && i.shutdowns == n;
                    first = false;
                    Ok((i.shutdowns == n, format!("{i:?}")))
                })?;
                self.waits.shutdowns += 1;
                self.waits.shutdowns_at_once += u64::from(at_once);
            }
            Wait::Injected { gsi, n } => {
                let mut first = true;
                let mut at_once = false;
                wait_until(self.env, &format!("injected == {n} on gsi {gsi}"), || {
                    let s = ctx
                        .stats(gsi)
                        .map_err(|e| format!("RUST_IRQFD_GSI_STATS: {e}"))?;
                    if s.injected > n {
                        return Err(format!("injected {} > the model's {n}", s.injected));
                    }
                    at_once |= first && s.injected == n;
                    first = false;
                    Ok((s.injected == n, format!("{s:?}")))
                })?;
                self.waits.injections += 1;
                self.waits.injections_at_once += u64::from(at_once);
            }
        }
        let mut out = Vec::new();
        for &(slot, _) in &step.released {
            let r = self.slots[slot]
                .rfd
                .take()
                .ok_or_else(|| format!("slot {slot} holds no resamplefd to check"))?;
            out.push((slot, sys::eventfd_read(r.as_fd())));
        }
        Ok(out)
    }
}

// --- The test ---

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

/// What one thread did.
struct ThreadReport {
    tally: Tally,
    waits: Waits,
    failure: Option<String>,
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
    let body = panic::catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        while !stop.load(Relaxed) && start.elapsed() < budget && fz.ops() < max_ops {
            fz.random_step(&mut real)?;
        }
        fz.finish(&mut real)
    }));
    let mut failure = match body {
        Ok(Ok(())) => None,
        Ok(Err(m)) => Some(m),
        Err(p) => Some(format!(
            "thread {thread}: panic at op #{}: {}",
            fz.ops(),
            panic_message(&*p)
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
fn fuzz_model(env: &Env) -> Ran {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NR: u32 = 16;

    fn model() -> Model {
        Model::new(NR, &[0, 1, 2, 3], 3)
    }

    fn ok() -> Outcome {
        Outcome::Done(Ok(()))
    }

    fn err(e: i32) -> Outcome {
        Outcome::Done(Err(Errno(e)))
    }

    fn rec(
        seq: u64,
        gsi: u32,
        count: u64,
        route: Option<(u64, u32)>,
        level: bool,
    ) -> RustIrqfdDelivery {
        let (msi, msi_addr, msi_data) = match route {
            Some((a, d)) => (DELIVERY_MSI, a, d),
            None => (0, 0, 0),
        };
        RustIrqfdDelivery {
            seq,
            gsi,
            flags: msi | if level { DELIVERY_LEVEL } else { 0 },
            count,
            msi_addr,
            msi_data,
            pad: 0,
        }
    }

    fn read(m: &mut Model) -> Outcome {
        m.apply(&Op::Read { bytes: REC * 16 }).expect
    }

    fn records(v: Vec<RustIrqfdDelivery>) -> Outcome {
        Outcome::Records(Ok(v))
    }

    fn eagain() -> Outcome {
        Outcome::Records(Err(Errno(libc::EAGAIN)))
    }

    fn assign(slot: usize, gsi: u32, kind: AssignKind) -> Op {
        Op::Assign {
            slot,
            fd: 0,
            gsi,
            kind,
        }
    }

    fn deassign(slot: usize, gsi: u32) -> Op {
        Op::Deassign {
            slot,
            fd: 0,
            gsi,
            resample_flag: false,
        }
    }

    fn sig(slot: usize) -> Op {
        Op::Signal { slot, fd: 0 }
    }

    fn stats(m: &mut Model, gsi: u32) -> RustIrqfdGsiStats {
        match m.apply(&Op::Stats { gsi, pad: 0 }).expect {
            Outcome::Stats(Ok(s)) => s,
            o => panic!("{o:?}"),
        }
    }

    fn route(gsi: u32, r: (u64, u32)) -> Op {
        Op::Route {
            gsi,
            flags: ROUTE_MSI,
            addr: r.0,
            data: r.1,
            pad: 0,
        }
    }

    fn mask(gsi: u32, on: bool) -> Op {
        Op::Mask {
            gsi,
            flags: if on { MASK_MASKED } else { 0 },
        }
    }

    fn ack(m: &mut Model, gsi: u32) -> Outcome {
        m.apply(&Op::Ack { gsi, pad: 0 }).expect
    }

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::for_thread(42, 1);
        let mut b = Rng::for_thread(42, 1);
        let mut c = Rng::for_thread(42, 2);
        let va: Vec<u64> = (0..8).map(|_| a.next()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed("0XfF"), Some(255));
        assert_eq!(parse_seed("1_000"), Some(1000));
        assert_eq!(parse_seed("0xg"), None);
        assert_eq!(parse_seed(""), None);
    }

    #[test]
    fn gsi_pools() {
        assert_eq!(gsi_pool(1024), vec![0, 1, 2, 3, 4, 5, 512, 1023]);
        assert_eq!(gsi_pool(8), vec![0, 1, 2, 3, 4, 5, 7]);
        assert_eq!(gsi_pool(1), vec![0]);
    }

    /// Edge irqfd: coalescing into the pending record, FIFO order, seq.
    #[test]
    fn model_edge_coalescing_and_fifo() {
        let mut m = model();
        assert_eq!(m.apply(&assign(0, 2, AssignKind::Edge)).expect, ok());
        assert_eq!(m.apply(&assign(1, 1, AssignKind::Edge)).expect, ok());
        m.apply(&sig(0));
        m.apply(&sig(1));
        m.apply(&sig(0));
        assert_eq!(
            m.apply(&Op::Read { bytes: REC + 39 }).expect,
            records(vec![rec(1, 2, 2, None, false)])
        );
        m.apply(&sig(0));
        assert_eq!(
            read(&mut m),
            records(vec![rec(2, 1, 1, None, false), rec(3, 2, 1, None, false)])
        );
        assert_eq!(read(&mut m), eagain());
        assert_eq!(
            m.apply(&Op::Read { bytes: REC - 1 }).expect,
            Outcome::Records(Err(Errno(libc::EINVAL)))
        );
        let s = stats(&mut m, 2);
        assert_eq!(
            (s.injected, s.raised, s.coalesced, s.delivered, s.pending),
            (3, 2, 1, 2, 0)
        );
        assert_eq!(
            m.apply(&Op::Info).expect,
            Outcome::Info {
                nr_irqfds: 2,
                shutdowns: 0
            }
        );
        m.check_invariants().unwrap();
    }

    /// An event pending at assign injects once; the counter stays until
    /// the next signal's wakeup, and deassign drains it.
    #[test]
    fn model_pending_at_assign() {
        let mut m = model();
        m.apply(&sig(0));
        m.apply(&sig(0));
        let st = m.apply(&assign(0, 3, AssignKind::Edge));
        assert_eq!(st.expect, ok());
        assert_eq!(st.wait, Wait::Injected { gsi: 3, n: 1 });
        assert_eq!(
            m.apply(&Op::ReadEventfd { slot: 0, fd: 0 }).expect,
            Outcome::Value(Ok(2))
        );
        assert_eq!(read(&mut m), records(vec![rec(1, 3, 1, None, false)]));
        // Again, and deassign drains the counter.
        m.apply(&deassign(0, 3));
        m.apply(&sig(0));
        assert_eq!(
            m.apply(&assign(0, 3, AssignKind::Edge)).wait,
            Wait::Injected { gsi: 3, n: 2 }
        );
        // The wrong gsi does not match.
        m.apply(&deassign(0, 2));
        assert_eq!(m.slots[0].counter, 1);
        m.apply(&deassign(0, 3));
        assert_eq!(
            m.apply(&Op::ReadEventfd { slot: 0, fd: 0 }).expect,
            Outcome::Value(Err(Errno(libc::EAGAIN)))
        );
        assert_eq!(m.shutdowns, 2);
    }

    /// Mask latch: injections held, released by unmask with the route of
    /// the unmask; a record raised keeps its route.
    #[test]
    fn model_mask_and_routes() {
        let mut m = model();
        m.apply(&assign(0, 1, AssignKind::Edge));
        assert_eq!(m.apply(&route(1, ROUTE_A)).expect, ok());
        m.apply(&sig(0));
        m.apply(&route(1, ROUTE_B));
        m.apply(&sig(0));
        assert_eq!(
            read(&mut m),
            records(vec![rec(1, 1, 2, Some(ROUTE_A), false)])
        );
        m.apply(&mask(1, true));
        m.apply(&sig(0));
        m.apply(&sig(0));
        assert_eq!(read(&mut m), eagain());
        let s = stats(&mut m, 1);
        assert_eq!((s.latched, s.masked), (2, 1));
        m.apply(&route(1, ROUTE_A));
        m.apply(&mask(1, true));
        m.apply(&mask(1, false));
        m.apply(&mask(1, false));
        assert_eq!(
            read(&mut m),
            records(vec![rec(2, 1, 2, Some(ROUTE_A), false)])
        );
        // Clear the route: a plain line again.
        assert_eq!(
            m.apply(&Op::Route {
                gsi: 1,
                flags: 0,
                addr: 0,
                data: 0,
                pad: 0
            })
            .expect,
            ok()
        );
        m.apply(&sig(0));
        assert_eq!(read(&mut m), records(vec![rec(3, 1, 1, None, false)]));
        for bad in [
            Op::Route {
                gsi: 1,
                flags: ROUTE_MSI,
                addr: 2,
                data: 0,
                pad: 0,
            },
            Op::Route {
                gsi: 1,
                flags: 0,
                addr: 0,
                data: 1,
                pad: 0,
            },
            route(NR, ROUTE_A),
            Op::Mask { gsi: 1, flags: 2 },
            Op::Mask { gsi: NR, flags: 0 },
        ] {
            assert_eq!(m.apply(&bad).expect, err(libc::EINVAL), "{bad:?}");
        }
        let s = stats(&mut m, 1);
        assert_eq!(
            (
                s.injected,
                s.raised,
                s.coalesced,
                s.delivered,
                s.latched,
                s.masked
            ),
            (5, 3, 2, 3, 0, 0)
        );
        m.check_invariants().unwrap();
    }

    /// Level irqfd with a dedicated resamplefd: asserted line, coalescing
    /// into it, ack.
    #[test]
    fn model_resample_dedicated() {
        let mut m = model();
        m.apply(&assign(0, 2, AssignKind::Dedicated));
        m.apply(&sig(0));
        m.apply(&sig(0));
        assert_eq!(read(&mut m), records(vec![rec(1, 2, 2, None, true)]));
        m.apply(&sig(0));
        assert_eq!(read(&mut m), eagain());
        assert_eq!(stats(&mut m, 2).asserted, 1);
        assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(1)));
        assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(0)));
        assert_eq!(
            m.apply(&Op::ReadResamplefd { slot: 0 }).expect,
            Outcome::Value(Ok(1))
        );
        // An edge irqfd on the asserted line raises records regardless.
        m.apply(&sig(0));
        m.apply(&assign(1, 2, AssignKind::Edge));
        m.apply(&sig(1));
        assert_eq!(read(&mut m), records(vec![rec(2, 2, 2, None, true)]));
        m.apply(&sig(1));
        assert_eq!(read(&mut m), records(vec![rec(3, 2, 1, None, false)]));
        let s = stats(&mut m, 2);
        assert_eq!((s.injected, s.coalesced, s.acks, s.asserted), (6, 3, 1, 1));
        // The last resample irqfd leaves: deasserted, its resamplefd read.
        assert_eq!(ack(&mut m, 2), Outcome::Value(Ok(1)));
        m.apply(&sig(0));
        let st = m.apply(&deassign(0, 2));
        assert_eq!(st.released, vec![(0, 1)]);
        assert_eq!(stats(&mut m, 2).asserted, 0);
        m.check_invariants().unwrap();
    }

    /// resamplefd == fd: the ack's signal injects again, synchronously.
    #[test]
    fn model_resample_own() {
        let mut m = model();
        m.apply(&assign(0, 3, AssignKind::Own { rfd: 0 }));
        m.apply(&sig(0));
        assert_eq!(read(&mut m), records(vec![rec(1, 3, 1, None, true)]));
        assert_eq!(ack(&mut m, 3), Outcome::Value(Ok(1)));
        assert_eq!(read(&mut m), records(vec![rec(2, 3, 1, None, true)]));
        let s = stats(&mut m, 3);
        assert_eq!((s.injected, s.acks, s.asserted), (2, 1, 1));
        // Masked: the re-injection is latched, and asserts at unmask.
        m.apply(&mask(3, true));
        assert_eq!(ack(&mut m, 3), Outcome::Value(Ok(1)));
        assert_eq!(stats(&mut m, 3).asserted, 0);
        m.apply(&route(3, ROUTE_B));
        m.apply(&mask(3, false));
        assert_eq!(
            read(&mut m),
            records(vec![rec(3, 3, 1, Some(ROUTE_B), true)])
        );
        assert_eq!(stats(&mut m, 3).asserted, 1);
        // Closing the last descriptor shuts it down asynchronously.
        let st = m.apply(&Op::Close { slot: 0, fd: 0 });
        assert_eq!(st.wait, Wait::Shutdowns(1));
        assert_eq!(stats(&mut m, 3).asserted, 0);
        assert_eq!(m.slots[0], Slot::fresh());
        m.check_invariants().unwrap();
    }

    /// A level injection latched while masked goes out as an edge when its
    /// irqfd, the last resample irqfd of the line, is gone by the unmask: no
    /// line is left asserted with no one to resample it. A resample assign
    /// that fails with EBUSY joins and leaves the resampler: no trace.
    #[test]
    fn model_last_resampler_clears_latched_level() {
        let mut m = model();
        m.apply(&assign(0, 1, AssignKind::Dedicated));
        m.apply(&mask(1, true));
        m.apply(&sig(0));
        m.apply(&deassign(0, 1));
        m.apply(&mask(1, false));
        assert_eq!(read(&mut m), records(vec![rec(1, 1, 1, None, false)]));
        assert_eq!(stats(&mut m, 1).asserted, 0);
        m.apply(&assign(1, 2, AssignKind::Edge));
        // Edge EBUSY: nothing.
        assert_eq!(
            m.apply(&assign(1, 1, AssignKind::Edge)).expect,
            err(libc::EBUSY)
        );
        // Resample EBUSY on gsi 1, which has no resample irqfd: nothing.
        assert_eq!(
            m.apply(&assign(1, 1, AssignKind::Own { rfd: 0 })).expect,
            err(libc::EBUSY)
        );
        assert_eq!(stats(&mut m, 1).asserted, 0);
        assert_eq!(stats(&mut m, 1).acks, 0);
        // EINVAL comes before EBUSY and changes nothing.
        assert_eq!(
            m.apply(&assign(1, NR, AssignKind::Edge)).expect,
            err(libc::EINVAL)
        );
        assert_eq!(
            m.apply(&assign(1, 1, AssignKind::NotEventfd)).expect,
            err(libc::EINVAL)
        );
        assert_eq!(ack(&mut m, 1), Outcome::Value(Ok(0)));
        assert_eq!(
            m.apply(&Op::Ack { gsi: 1, pad: 1 }).expect,
            Outcome::Value(Err(Errno(libc::EINVAL)))
        );
    }

    /// Two resample irqfds on one GSI share the resampler: an ack signals
    /// both; the own-fd one re-injects.
    #[test]
    fn model_shared_resampler_and_reopen() {
        let mut m = model();
        m.apply(&assign(0, 0, AssignKind::Dedicated));
        m.apply(&assign(1, 0, AssignKind::Own { rfd: 0 }));
        m.apply(&sig(0));
        m.apply(&sig(1));
        assert_eq!(read(&mut m), records(vec![rec(1, 0, 2, None, true)]));
        assert_eq!(ack(&mut m, 0), Outcome::Value(Ok(2)));
        assert_eq!(read(&mut m), records(vec![rec(2, 0, 1, None, true)]));
        m.apply(&sig(2));
        assert_eq!(ack(&mut m, 0), Outcome::Value(Ok(2)));
        let st = m.apply(&Op::Reopen);
        assert_eq!(st.released, vec![(0, 2)]);
        assert_eq!(m.slots[2].counter, 1);
        assert_eq!(m.nr_irqfds(), 0);
        assert_eq!(stats(&mut m, 0), Line::new(0).stats());
        assert_eq!(read(&mut m), eagain());
        m.apply(&assign(2, 0, AssignKind::Edge));
        m.apply(&sig(2));
        assert_eq!(read(&mut m), records(vec![rec(1, 0, 2, None, false)]));
    }

    /// A model with a planted bug, as a target: the fuzzer must notice.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Bug {
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

    struct Fake {
        m: Model,
        bug: Bug,
        signals: u64,
        routes_at_mask: BTreeMap<u32, Route>,
        last: Option<Step>,
    }

    impl Fake {
        fn new(f: &Fuzzer, bug: Bug) -> Self {
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
    fn run_fake(seed: u64, bug: Bug, ops: u64) -> (Fuzzer, Result<(), String>) {
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

// SPDX-License-Identifier: GPL-2.0
//! What the model, the generator, the checker and the targets share: an
//! op, what it answers ([`Outcome`]), and what the model predicts for it
//! ([`Step`]).

use crate::abi::{RustIrqfdDelivery, RustIrqfdGsiStats};
use crate::sys::Errno;

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
    pub(super) fn new(expect: Outcome) -> Self {
        Step {
            expect,
            wait: Wait::None,
            released: Vec::new(),
        }
    }

    pub(super) fn done(r: Result<(), i32>) -> Self {
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
pub(super) const REC: usize = RustIrqfdDelivery::SIZE;

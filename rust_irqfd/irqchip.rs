// SPDX-License-Identifier: GPL-2.0

//! The virtual interrupt controller: the module's [`Sink`], whose deliveries userspace reads.
//!
//! Every GSI has counters and at most one *pending record*. An injection into a GSI without one
//! raises a record, which joins a FIFO in raise order with the next context-wide sequence number;
//! an injection into a GSI whose record is still pending is coalesced into it (its count goes
//! up). `read(2)` pops records oldest first. The counters satisfy, at every moment and for every
//! GSI, `injected == coalesced + raised` and `raised == delivered + pending`.
//!
//! All state sits behind one IRQ-safe spinlock, so injection works from the eventfd wait-queue
//! callback, which runs with interrupts off, possibly in hard-IRQ context.

use kernel::{
    new_condvar,
    new_spinlock_irq,
    prelude::*,
    sync::{
        CondVar,
        SpinLockIrq, //
    }, //
};

use crate::{
    sink::{
        Injected,
        Sink,
        WouldBlock, //
    },
    uapi, //
};

/// Counters and pending record of one GSI.
#[derive(Clone, Copy, Default)]
struct Line {
    injected: u64,
    raised: u64,
    coalesced: u64,
    delivered: u64,
    /// Sequence number of the pending record, 0 if none is pending.
    pending_seq: u64,
    /// Injections merged into the pending record.
    pending_count: u64,
}

/// The lock-protected state of the controller.
///
/// # Invariants
///
/// * `fifo.len() == lines.len()`, `head < fifo.len()` and `len <= fifo.len()`.
/// * The `len` entries of `fifo` from `head` (wrapping) are exactly the GSIs whose line has a
///   pending record, each once, in the order they were raised.
struct State {
    lines: KVVec<Line>,
    fifo: KVVec<u32>,
    head: usize,
    len: usize,
    next_seq: u64,
}

/// Counters of one GSI, as `RUST_IRQFD_GSI_STATS` reports them.
pub(crate) struct LineStats {
    pub(crate) injected: u64,
    pub(crate) raised: u64,
    pub(crate) coalesced: u64,
    pub(crate) delivered: u64,
    pub(crate) pending: u64,
}

/// A virtual interrupt controller with a fixed number of edge-triggered lines.
#[pin_data]
pub(crate) struct IrqChip {
    nr_gsis: u32,
    #[pin]
    state: SpinLockIrq<State>,
    /// Readers blocked in `read(2)` wait here for a record.
    #[pin]
    readers: CondVar,
}

impl IrqChip {
    /// Creates a controller with `nr_gsis` lines, none pending.
    pub(crate) fn new(nr_gsis: u32) -> Result<impl PinInit<Self, Error>> {
        let n = usize::try_from(nr_gsis)?;
        if n == 0 {
            return Err(EINVAL);
        }
        // Up to 3 MiB with 65536 lines: vmalloc rather than a high-order kmalloc.
        let mut lines = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        let mut fifo = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..n {
            lines.push(Line::default(), GFP_KERNEL_ACCOUNT)?;
            fifo.push(0, GFP_KERNEL_ACCOUNT)?;
        }
        // INVARIANT: Both vectors have `n` entries and the FIFO is empty.
        let state = State {
            lines,
            fifo,
            head: 0,
            len: 0,
            next_seq: 1,
        };
        Ok(try_pin_init!(Self {
            nr_gsis,
            state <- new_spinlock_irq!(state, "IrqChip::state"),
            readers <- new_condvar!("IrqChip::readers"),
        }))
    }

    fn raise(&self, gsi: u32) -> Injected {
        let Ok(index) = usize::try_from(gsi) else {
            return Injected::Dropped;
        };
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let Some(line) = st.lines.get_mut(index) else {
            return Injected::Dropped;
        };
        line.injected += 1;
        if line.pending_seq != 0 {
            line.pending_count += 1;
            line.coalesced += 1;
            return Injected::Coalesced;
        }
        line.pending_seq = st.next_seq;
        line.pending_count = 1;
        line.raised += 1;
        st.next_seq += 1;
        let tail = wrap(st.head + st.len, st.fifo.len());
        if let Some(slot) = st.fifo.get_mut(tail) {
            // INVARIANT: The line had no pending record, so it was not in the FIFO, which
            // therefore has room for it.
            *slot = gsi;
            st.len += 1;
        }
        drop(guard);
        self.readers.notify_all();
        Injected::Raised
    }

    /// Pops up to `max` records, oldest first, into `out`; waits for one unless `nonblock`.
    ///
    /// `out` must have room for `max` records (it is not grown under the lock). Fails with
    /// `EAGAIN` when `nonblock` and nothing is pending, or `ERESTARTSYS` on a signal.
    pub(crate) fn pop(&self, out: &mut KVec<uapi::Delivery>, max: usize, nonblock: bool) -> Result {
        let mut guard = self.state.lock();
        while guard.len == 0 {
            if nonblock {
                return Err(EAGAIN);
            }
            if self.readers.wait_interruptible(&mut guard) {
                return Err(ERESTARTSYS);
            }
        }
        let st = &mut *guard;
        while st.len > 0 && out.len() < max {
            let Some(&gsi) = st.fifo.get(st.head) else {
                break;
            };
            let Some(line) = usize::try_from(gsi).ok().and_then(|i| st.lines.get_mut(i)) else {
                break;
            };
            let record = uapi::Delivery {
                seq: line.pending_seq,
                gsi,
                flags: 0,
                count: line.pending_count,
                msi_addr: 0,
                msi_data: 0,
                pad: 0,
            };
            if out.push_within_capacity(record).is_err() {
                break;
            }
            line.pending_seq = 0;
            line.pending_count = 0;
            line.delivered += 1;
            // INVARIANT: The record left the FIFO together with the line's pending state.
            st.head = wrap(st.head + 1, st.fifo.len());
            st.len -= 1;
        }
        Ok(())
    }

    /// The counters of `gsi`, `EINVAL` if out of range.
    pub(crate) fn stats(&self, gsi: u32) -> Result<LineStats> {
        let index = usize::try_from(gsi)?;
        let guard = self.state.lock();
        let line = guard.lines.get(index).ok_or(EINVAL)?;
        Ok(LineStats {
            injected: line.injected,
            raised: line.raised,
            coalesced: line.coalesced,
            delivered: line.delivered,
            pending: u64::from(line.pending_seq != 0),
        })
    }
}

/// `i` modulo `n`, for `i < 2 * n`: a FIFO index that may have run one lap past the end.
fn wrap(i: usize, n: usize) -> usize {
    if i >= n {
        i - n
    } else {
        i
    }
}

impl Sink for IrqChip {
    fn nr_gsis(&self) -> u32 {
        self.nr_gsis
    }

    fn inject_atomic(&self, gsi: u32) -> Result<Injected, WouldBlock> {
        // The lock is IRQ-safe and the wakeup does not sleep: always possible.
        Ok(self.raise(gsi))
    }

    fn inject(&self, gsi: u32) -> Injected {
        self.raise(gsi)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The virtual interrupt controller: the module's [`Sink`], whose deliveries userspace reads.
//!
//! Every GSI has counters and at most one *pending record*. An injection into a GSI without one
//! raises a record, which joins a FIFO in raise order with the next context-wide sequence number
//! and carries the route the injection was made with; an injection into a GSI whose record is
//! still pending is coalesced into it (its count goes up, its route stays). `read(2)` pops records
//! oldest first.
//!
//! A masked GSI raises nothing: its *pending latch* counts the injections, and unmasking hands
//! them on as one injection of that count with the GSI's route at the unmask (MSI-X: the message
//! is composed when the pending bit is serviced). A level injection (a resample irqfd) asserts
//! the line; while it is asserted, further level injections are coalesced, until an end of
//! interrupt ([`Sink::ack`]) deasserts it.
//!
//! The counters satisfy, at every moment and for every GSI,
//! `injected == coalesced + raised + latched` and `raised == delivered + pending`.
//!
//! All state sits behind one IRQ-safe spinlock, so injection works from the eventfd wait-queue
//! callback, which runs with interrupts off, possibly in hard-IRQ context.
//!
//! The controller knows nothing of the ABI: records and counters leave it as [`Record`] and
//! [`LineStats`], which [`crate::device`] turns into the structs userspace reads.

use kernel::{
    new_condvar,
    prelude::*,
    sync::CondVar, //
};

use crate::{
    compat::{
        self,
        new_spinlock_irq,
        LocalInterruptDisabled,
        SpinLockIrq, //
    },
    eventfd::WakeContext,
    nospec,
    route::Route,
    sink::{
        Injected,
        Injection,
        Sink,
        WouldBlock, //
    }, //
};

/// Counters, state and pending record of one GSI.
#[derive(Clone, Copy, Default)]
struct Line {
    injected: u64,
    raised: u64,
    coalesced: u64,
    delivered: u64,
    acks: u64,
    /// Sequence number of the pending record, 0 if none is pending.
    pending_seq: u64,
    /// Injections merged into the pending record.
    pending_count: u64,
    /// The route the pending record was raised with.
    pending_route: Route,
    /// The pending record was raised by a level injection.
    pending_level: bool,
    masked: bool,
    /// Injections held by the pending latch (only while masked).
    latched: u64,
    /// One of them was a level injection.
    latched_level: bool,
    /// A level injection holds the line until an end of interrupt.
    asserted: bool,
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

impl State {
    /// Hands `count` injections on to the line at `index` (unmasked), with `route`: raises a
    /// record, or merges them into the pending one or into the asserted level line.
    fn deliver(&mut self, index: usize, count: u64, route: Route, level: bool) -> Injected {
        let (Ok(gsi), Some(line)) = (u32::try_from(index), self.lines.get_mut(index)) else {
            return Injected::Dropped;
        };
        if level {
            if line.asserted {
                line.coalesced += count;
                if line.pending_seq != 0 {
                    line.pending_count += count;
                }
                return Injected::Coalesced;
            }
            line.asserted = true;
        }
        if line.pending_seq != 0 {
            line.pending_count += count;
            line.coalesced += count;
            return Injected::Coalesced;
        }
        line.pending_seq = self.next_seq;
        line.pending_count = count;
        line.pending_route = route;
        line.pending_level = level;
        line.raised += 1;
        line.coalesced += count - 1;
        self.next_seq += 1;
        let tail = wrap(self.head + self.len, self.fifo.len());
        if let Some(slot) = self.fifo.get_mut(tail) {
            // INVARIANT: The line had no pending record, so it was not in the FIFO, which
            // therefore has room for it.
            *slot = gsi;
            self.len += 1;
        }
        Injected::Raised
    }

    /// The sequence number of the record `pos` places from the head of the FIFO (`pos < len`).
    fn seq_at(&self, pos: usize) -> u64 {
        self.fifo
            .get(wrap(self.head + pos, self.fifo.len()))
            .and_then(|&gsi| self.lines.get(usize::try_from(gsi).ok()?))
            .map_or(0, |line| line.pending_seq)
    }

    /// Puts `record`, taken off the FIFO but not handed out, back: pending on its line again, in
    /// its place in raise order, or, if the line raised a new record since, merged into that one
    /// as an injection coalesced into it would be. Returns whether it went back into the FIFO.
    fn put_back(&mut self, record: &Record) -> bool {
        let Some(line) = usize::try_from(record.gsi)
            .ok()
            .and_then(|i| self.lines.get_mut(i))
        else {
            return false;
        };
        line.delivered -= 1;
        if line.pending_seq != 0 {
            // The record is no more: its injections count as coalesced into the pending one.
            line.pending_count += record.count;
            line.raised -= 1;
            line.coalesced += 1;
            return false;
        }
        line.pending_seq = record.seq;
        line.pending_count = record.count;
        line.pending_route = record.route;
        line.pending_level = record.level;
        // After the older records at the head (another reader's, put back before), if any.
        let n = self.fifo.len();
        let older = (0..self.len)
            .take_while(|&pos| self.seq_at(pos) < record.seq)
            .count();
        self.head = wrap(self.head + n - 1, n);
        for pos in 0..older {
            let next = self.fifo.get(wrap(self.head + pos + 1, n)).copied();
            if let (Some(next), Some(slot)) = (next, self.fifo.get_mut(wrap(self.head + pos, n))) {
                *slot = next;
            }
        }
        if let Some(slot) = self.fifo.get_mut(wrap(self.head + older, n)) {
            // INVARIANT: The line had no pending record, so its GSI was not in the FIFO, which
            // therefore had room for it; it is back in raise order.
            *slot = record.gsi;
            self.len += 1;
        }
        true
    }
}

/// A record taken off the FIFO: an interrupt raised on a GSI, with the injections merged into it.
#[derive(Clone, Copy, Default)]
pub(crate) struct Record {
    /// Context-wide sequence number, from 1, in raise order.
    pub(crate) seq: u64,
    pub(crate) gsi: u32,
    /// Injections merged into it, at least 1.
    pub(crate) count: u64,
    /// The route it was raised with.
    pub(crate) route: Route,
    /// Raised by a level injection.
    pub(crate) level: bool,
}

/// Counters of one GSI, as `RUST_IRQFD_GSI_STATS` reports them.
pub(crate) struct LineStats {
    pub(crate) injected: u64,
    pub(crate) raised: u64,
    pub(crate) coalesced: u64,
    pub(crate) delivered: u64,
    pub(crate) pending: u64,
    pub(crate) latched: u64,
    pub(crate) acks: u64,
    pub(crate) masked: bool,
    pub(crate) asserted: bool,
}

/// A virtual interrupt controller with a fixed number of lines, each maskable, edge- or
/// level-triggered by what injects into it.
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

    /// The index of `gsi`'s line, `None` if there is none. Clamped against speculation
    /// ([`nospec::index`]): every GSI that reaches the controller came from userspace.
    fn line_index(&self, gsi: u32) -> Option<usize> {
        nospec::index(gsi, usize::try_from(self.nr_gsis).ok()?)
    }

    /// Runs `f` on the state and the line of `gsi`, and wakes readers if it raised a record.
    ///
    /// With `irqs_off` (an eventfd's wakeup, where interrupts are already off) the lock is taken
    /// without saving and restoring them again.
    fn with_line(
        &self,
        gsi: u32,
        irqs_off: Option<&LocalInterruptDisabled>,
        f: impl FnOnce(&mut State, usize) -> Injected,
    ) -> Injected {
        let Some(index) = self.line_index(gsi) else {
            return Injected::Dropped;
        };
        let how = match irqs_off {
            Some(irqs_off) => {
                Self::on_line(&mut compat::lock_with(&self.state, irqs_off), index, f)
            }
            None => Self::on_line(&mut self.state.lock(), index, f),
        };
        if how == Injected::Raised {
            self.readers.notify_all();
        }
        how
    }

    /// Runs `f` on the locked state and line `index`, if the chip has that line.
    fn on_line(
        st: &mut State,
        index: usize,
        f: impl FnOnce(&mut State, usize) -> Injected,
    ) -> Injected {
        if index >= st.lines.len() {
            return Injected::Dropped;
        }
        f(st, index)
    }

    fn inject_locked(st: &mut State, index: usize, injection: &Injection) -> Injected {
        let Some(line) = st.lines.get_mut(index) else {
            return Injected::Dropped;
        };
        line.injected += 1;
        if line.masked {
            line.latched += 1;
            line.latched_level |= injection.level;
            return Injected::Latched;
        }
        st.deliver(index, 1, injection.route, injection.level)
    }
    /// Pops records, oldest first, into `out` until it is full or none is left, and returns how
    /// many it took; waits for one unless `nonblock`.
    ///
    /// Fails with `EAGAIN` when `nonblock` and nothing is pending, or `ERESTARTSYS` on a signal.
    pub(crate) fn pop(&self, out: &mut [Record], nonblock: bool) -> Result<usize> {
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
        let mut n = 0;
        for slot in out.iter_mut() {
            if st.len == 0 {
                break;
            }
            let Some(&gsi) = st.fifo.get(st.head) else {
                break;
            };
            let Some(line) = usize::try_from(gsi).ok().and_then(|i| st.lines.get_mut(i)) else {
                break;
            };
            *slot = Record {
                seq: line.pending_seq,
                gsi,
                count: line.pending_count,
                route: line.pending_route,
                level: line.pending_level,
            };
            line.pending_seq = 0;
            line.pending_count = 0;
            line.delivered += 1;
            // INVARIANT: The record left the FIFO together with the line's pending state.
            st.head = wrap(st.head + 1, st.fifo.len());
            st.len -= 1;
            n += 1;
        }
        Ok(n)
    }

    /// Puts back `records`, taken by [`IrqChip::pop`] but not handed to userspace (the copy to its
    /// buffer faulted), so that none is lost: each is pending again, in its place in raise order,
    /// or merged into the record its GSI raised since. The counters read as if the records had
    /// never been taken (a merged one as if it had been coalesced).
    pub(crate) fn put_back(&self, records: &[Record]) {
        let mut guard = self.state.lock();
        let mut queued = false;
        // Newest first, so that each goes in front of the one put back before it.
        for record in records.iter().rev() {
            queued |= guard.put_back(record);
        }
        drop(guard);
        if queued {
            self.readers.notify_all();
        }
    }

    /// The counters of `gsi`, `EINVAL` if out of range.
    pub(crate) fn stats(&self, gsi: u32) -> Result<LineStats> {
        let index = self.line_index(gsi).ok_or(EINVAL)?;
        let guard = self.state.lock();
        let line = guard.lines.get(index).ok_or(EINVAL)?;
        Ok(LineStats {
            injected: line.injected,
            raised: line.raised,
            coalesced: line.coalesced,
            delivered: line.delivered,
            pending: u64::from(line.pending_seq != 0),
            latched: line.latched,
            acks: line.acks,
            masked: line.masked,
            asserted: line.asserted,
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

    fn inject_atomic(
        &self,
        injection: &Injection,
        wake: &WakeContext<'_>,
    ) -> Result<Injected, WouldBlock> {
        // The lock is IRQ-safe and the wakeup does not sleep: always possible.
        Ok(self.with_line(injection.gsi, wake.irqs_off(), |st, i| {
            Self::inject_locked(st, i, injection)
        }))
    }

    fn inject(&self, injection: &Injection) -> Injected {
        self.with_line(injection.gsi, None, |st, i| {
            Self::inject_locked(st, i, injection)
        })
    }

    fn set_masked(&self, gsi: u32, masked: bool, route: Route) -> Result {
        let mut found = false;
        self.with_line(gsi, None, |st, i| {
            found = true;
            let Some(line) = st.lines.get_mut(i) else {
                return Injected::Dropped;
            };
            if masked || !line.masked {
                line.masked = masked;
                return Injected::Dropped;
            }
            line.masked = false;
            let (count, level) = (line.latched, line.latched_level);
            line.latched = 0;
            line.latched_level = false;
            if count == 0 {
                return Injected::Dropped;
            }
            st.deliver(i, count, route, level)
        });
        if found {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    fn ack(&self, gsi: u32) -> Result<bool> {
        let index = self.line_index(gsi).ok_or(EINVAL)?;
        let mut guard = self.state.lock();
        let line = guard.lines.get_mut(index).ok_or(EINVAL)?;
        let was = line.asserted;
        if was {
            line.asserted = false;
            line.acks += 1;
        }
        Ok(was)
    }

    fn deassert(&self, gsi: u32) {
        let Some(index) = self.line_index(gsi) else {
            return;
        };
        if let Some(line) = self.state.lock().lines.get_mut(index) {
            // A level injection still in the mask latch goes out as an edge at the unmask: no
            // one is left to resample the line, so it must not be left asserted.
            line.asserted = false;
            line.latched_level = false;
        }
    }
}

#[kunit_tests(rust_irqfd_irqchip)]
mod tests {
    use super::*;

    const MSI: Route = Route::Msi {
        addr: 0xfee0_0000,
        data: 0x41,
    };

    fn chip(nr_gsis: u32) -> Result<Pin<KBox<IrqChip>>> {
        KBox::pin_init(IrqChip::new(nr_gsis)?, GFP_KERNEL)
    }

    fn edge(gsi: u32) -> Injection {
        Injection {
            gsi,
            route: Route::Line,
            level: false,
        }
    }

    fn level(gsi: u32) -> Injection {
        Injection {
            gsi,
            route: Route::Line,
            level: true,
        }
    }

    /// The counters' invariant on `gsi`: every injection is coalesced, raised or latched, and
    /// every raised record is delivered or pending.
    fn balanced(chip: &IrqChip, gsi: u32) -> Result<bool> {
        let s = chip.stats(gsi)?;
        Ok(s.injected == s.coalesced + s.raised + s.latched && s.raised == s.delivered + s.pending)
    }

    /// Pops what is pending without waiting; 0 records if none (`EAGAIN`), any other error fails.
    fn pop_all(chip: &IrqChip, out: &mut [Record]) -> Result<usize> {
        match chip.pop(out, true) {
            Err(e) if e == EAGAIN => Ok(0),
            popped => popped,
        }
    }

    #[test]
    fn coalesces_into_the_pending_record() -> Result {
        let chip = chip(4)?;
        kunit_check!(chip.inject(&edge(1)) == Injected::Raised);
        kunit_check!(chip.inject(&edge(1)) == Injected::Coalesced);
        kunit_check!(chip.inject(&edge(1)) == Injected::Coalesced);
        let mut out = [Record::default(); 4];
        kunit_check!(pop_all(&chip, &mut out)? == 1);
        kunit_check!(out[0].seq == 1);
        kunit_check!(out[0].gsi == 1);
        kunit_check!(out[0].count == 3);
        let s = chip.stats(1)?;
        kunit_check!(s.injected == 3);
        kunit_check!(s.raised == 1);
        kunit_check!(s.coalesced == 2);
        kunit_check!(s.delivered == 1);
        kunit_check!(s.pending == 0);
        kunit_check!(balanced(&chip, 1)?);
        // Delivered: the next injection raises a new record.
        kunit_check!(chip.inject(&edge(1)) == Injected::Raised);
        kunit_check!(balanced(&chip, 1)?);
        Ok(())
    }

    #[test]
    fn pops_in_raise_order() -> Result {
        let chip = chip(4)?;
        for gsi in [3, 0, 2] {
            kunit_check!(chip.inject(&edge(gsi)) == Injected::Raised);
        }
        // Coalescing leaves the order alone.
        kunit_check!(chip.inject(&edge(3)) == Injected::Coalesced);
        let mut out = [Record::default(); 2];
        kunit_check!(pop_all(&chip, &mut out)? == 2);
        kunit_check!((out[0].gsi, out[0].seq, out[0].count) == (3, 1, 2));
        kunit_check!((out[1].gsi, out[1].seq) == (0, 2));
        kunit_check!(pop_all(&chip, &mut out)? == 1);
        kunit_check!((out[0].gsi, out[0].seq) == (2, 3));
        kunit_check!(chip.pop(&mut out, true) == Err(EAGAIN));
        Ok(())
    }

    #[test]
    fn put_back_restores_raise_order() -> Result {
        let chip = chip(4)?;
        for gsi in [2, 1, 3] {
            kunit_check!(chip.inject(&edge(gsi)) == Injected::Raised);
        }
        let mut taken = [Record::default(); 2];
        kunit_check!(pop_all(&chip, &mut taken)? == 2);
        // GSI 1 raises again before the put-back: its old record merges into the new one.
        kunit_check!(chip.inject(&edge(1)) == Injected::Raised);
        chip.put_back(&taken);
        let mut out = [Record::default(); 4];
        kunit_check!(pop_all(&chip, &mut out)? == 3);
        kunit_check!((out[0].gsi, out[0].seq) == (2, 1));
        kunit_check!((out[1].gsi, out[1].seq) == (3, 3));
        kunit_check!((out[2].gsi, out[2].seq, out[2].count) == (1, 4, 2));
        for gsi in 1..4 {
            kunit_check!(balanced(&chip, gsi)?);
        }
        Ok(())
    }

    #[test]
    fn masked_line_latches_until_unmask() -> Result {
        let chip = chip(2)?;
        chip.set_masked(0, true, Route::Line)?;
        for _ in 0..3 {
            kunit_check!(chip.inject(&edge(0)) == Injected::Latched);
        }
        let s = chip.stats(0)?;
        kunit_check!(s.latched == 3);
        kunit_check!(s.masked);
        kunit_check!(balanced(&chip, 0)?);
        let mut out = [Record::default(); 2];
        kunit_check!(pop_all(&chip, &mut out)? == 0);
        // Unmasking hands the latch on as one injection of its count, with the route given.
        chip.set_masked(0, false, MSI)?;
        kunit_check!(pop_all(&chip, &mut out)? == 1);
        kunit_check!(out[0].count == 3);
        kunit_check!(out[0].route == MSI);
        let s = chip.stats(0)?;
        kunit_check!(s.latched == 0);
        kunit_check!(s.raised == 1);
        kunit_check!(s.coalesced == 2);
        kunit_check!(balanced(&chip, 0)?);
        // Unmasking an empty latch raises nothing.
        chip.set_masked(0, true, Route::Line)?;
        chip.set_masked(0, false, MSI)?;
        kunit_check!(pop_all(&chip, &mut out)? == 0);
        Ok(())
    }

    #[test]
    fn level_line_stays_asserted_until_ack() -> Result {
        let chip = chip(2)?;
        kunit_check!(chip.inject(&level(1)) == Injected::Raised);
        let mut out = [Record::default(); 2];
        kunit_check!(pop_all(&chip, &mut out)? == 1);
        kunit_check!(out[0].level);
        // Delivered, but still asserted: further level injections coalesce, nothing is raised.
        kunit_check!(chip.inject(&level(1)) == Injected::Coalesced);
        kunit_check!(pop_all(&chip, &mut out)? == 0);
        kunit_check!(chip.stats(1)?.asserted);
        kunit_check!(chip.ack(1)?);
        kunit_check!(!chip.ack(1)?);
        kunit_check!(chip.stats(1)?.acks == 1);
        kunit_check!(chip.inject(&level(1)) == Injected::Raised);
        // Deasserted without an end of interrupt: the next one raises again once delivered.
        kunit_check!(pop_all(&chip, &mut out)? == 1);
        chip.deassert(1);
        kunit_check!(!chip.stats(1)?.asserted);
        kunit_check!(chip.inject(&level(1)) == Injected::Raised);
        kunit_check!(balanced(&chip, 1)?);
        Ok(())
    }

    #[test]
    fn out_of_range_gsi_is_refused() -> Result {
        let chip = chip(2)?;
        kunit_check!(chip.inject(&edge(2)) == Injected::Dropped);
        kunit_check!(chip.stats(2).err() == Some(EINVAL));
        kunit_check!(chip.set_masked(2, true, Route::Line) == Err(EINVAL));
        kunit_check!(chip.ack(u32::MAX).err() == Some(EINVAL));
        kunit_check!(IrqChip::new(0).err() == Some(EINVAL));
        Ok(())
    }
}

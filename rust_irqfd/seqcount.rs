// SPDX-License-Identifier: GPL-2.0

//! The kernel's `seqcount_spinlock_t`: a table of values, each under a sequence count of its own,
//! read without a lock, written only through the guard of the one IRQ-safe spinlock the
//! seqcounts are tied to.
//!
//! C header: [`include/linux/seqlock.h`](srctree/include/linux/seqlock.h)
//!
//! 7.3 has no Rust seqcount. Using the kernel's through the shim, rather than writing one with
//! atomics, brings what `seqcount_spinlock_t` carries: its ordering (`smp_rmb()`/`smp_wmb()` where
//! the kernel puts them), lockdep's check in `write_seqcount_begin()` that the writer holds the
//! seqcount's lock, and PREEMPT_RT's handling of a writer preempted with the sequence odd (a
//! reader that finds it odd takes and releases the lock, so it waits for the writer instead of
//! spinning on its CPU).
//!
//! A `seqcount_spinlock_t` must point at a `spinlock_t`, and `kernel::sync::SpinLockIrq` keeps
//! its `spinlock_t` private: there is no way to get its address. So [`SeqTable`] owns the
//! `spinlock_t` itself and locks it as a `SpinLockIrq`, the kernel's own Rust lock, through
//! [`Lock::from_raw`] (the documented way to use a lock initialised outside of a [`Lock`]).

use core::marker::PhantomData;
use kernel::{
    alloc::Flags,
    bindings,
    prelude::*,
    sync::{
        lock::{
            Backend,
            Lock, //
        },
        LockClassKey, //
    },
    types::Opaque, //
};

use crate::{
    compat::{
        SpinLockIrqBackend,
        SpinLockIrqGuard, //
    },
    ffi, //
};

/// Proof that the holder is inside a write section of a [`SeqTable`] slot: `write_seqcount_begin()`
/// is done and `write_seqcount_end()` is not. Only [`SeqTableGuard::write`] makes one, for the
/// duration of its closure, so a value's setters that take it cannot run outside a write section.
pub(crate) struct WriteSection<'a>(PhantomData<&'a ()>);

/// One value and its seqcount.
#[pin_data]
struct Slot<T> {
    #[pin]
    seq: Opaque<bindings::seqcount_spinlock_t>,
    value: T,
}

impl<T> Slot<T> {
    /// `value`, under a seqcount tied to the spinlock at `lock`.
    ///
    /// The seqcount is used only while the spinlock at `lock` is alive (see [`SeqTable`]'s
    /// invariants): `seqcount_spinlock_init()` only stores the address.
    fn new(lock: *mut bindings::spinlock_t, value: T) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // SAFETY: `slot` is valid for writes for the duration of the call; the shim stores
            // `lock` without dereferencing it.
            seq <- Opaque::ffi_init(|slot| unsafe {
                ffi::rust_irqfd_seqcount_spinlock_init(slot, lock)
            }),
            value,
        })
    }
}

/// `len` values of type `T`, each under its own `seqcount_spinlock_t`, and the IRQ-safe spinlock
/// that serialises their writers.
///
/// Readers take no lock ([`SeqTable::read`]): any context, hard IRQ included. Writers hold the
/// lock, with interrupts off ([`SeqTable::lock`], then [`SeqTableGuard::write`]), so the sequence
/// is never odd while an interrupt on the writer's CPU could spin on it.
///
/// `T` is only ever reached through shared references, by readers and writers at once, so a
/// reader racing with a writer sees whatever `T`'s interior mutability allows (atomics: stale or
/// mixed values, which the seqcount then makes it retry), never undefined behaviour.
///
/// # Invariants
///
/// * `lock` is a `spinlock_t` initialised by [`SpinLockIrqBackend::init`], locked only as a
///   [`SpinLockIrq`](crate::compat::SpinLockIrq) (through [`SeqTable::lock`]).
/// * The seqcount of every slot was initialised by `seqcount_spinlock_init()` with `lock`, and
///   `lock` and `slots` are pinned: the address each seqcount holds is valid while `self` is.
/// * A slot's seqcount is in a write section only while `lock` is held, by the holder of a
///   [`SeqTableGuard`] of `self`, and at most one slot at a time.
#[pin_data]
pub(crate) struct SeqTable<T> {
    #[pin]
    lock: Opaque<bindings::spinlock_t>,
    slots: Pin<KVBox<[Slot<T>]>>,
}

// SAFETY: The spinlock and the seqcounts may be used and freed from any thread; the values move
// with the table, so they must be `Send`.
unsafe impl<T: Send> Send for SeqTable<T> {}

// SAFETY: Through a shared reference the spinlock and the seqcounts are only used with the
// kernel's own functions, which are thread-safe; the values are reached through shared references
// from any thread at once, so they must be `Sync`.
unsafe impl<T: Sync> Sync for SeqTable<T> {}

impl<T> SeqTable<T> {
    /// A table of `len` slots, slot `i` holding `value(i)`, allocated with `flags`; the spinlock
    /// is called `name` for lockdep, in the class `key`.
    pub(crate) fn new(
        len: usize,
        mut value: impl FnMut(usize) -> T,
        flags: Flags,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self, Error> {
        // INVARIANT: `lock` is initialised first, at its final address (the table is pinned);
        // every seqcount is then tied to it, in a slice that is pinned too.
        try_pin_init!(Self {
            // SAFETY: `slot` is valid for writes for the duration of the call; `name` and `key`
            // are static, so they stay valid for reads as long as the lock exists.
            lock <- Opaque::ffi_init(|slot| unsafe {
                SpinLockIrqBackend::init(slot, name.as_char_ptr(), key.as_ptr())
            }),
            slots: KVBox::pin_slice(|i| Slot::new(lock.get(), value(i)), len, flags)?,
        })
    }

    /// The number of slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Runs `f` on slot `i`'s value until it ran with no write overlapping it, and returns what
    /// that run returned; `None` if `i` is out of range. `f` may run several times, and may see
    /// a value being written in the runs whose result is thrown away.
    ///
    /// `read_seqcount_begin()` .. `read_seqcount_retry()`. Lock-free, callable in any context,
    /// hard IRQ included (a write section runs with interrupts off, so none is in progress on the
    /// reader's CPU; on PREEMPT_RT a reader that finds one waits on the lock), but not from inside
    /// [`SeqTableGuard::write`]'s closure.
    pub(crate) fn read<R>(&self, i: usize, mut f: impl FnMut(&T) -> R) -> Option<R> {
        let slot = self.slots.get(i)?;
        loop {
            // SAFETY: By the type invariants `slot.seq` is an initialised `seqcount_spinlock_t`
            // whose lock is alive as long as `self` is.
            let start = unsafe { ffi::rust_irqfd_read_seqcount_begin(slot.seq.get()) };
            let r = f(&slot.value);
            // SAFETY: As above.
            if !unsafe { ffi::rust_irqfd_read_seqcount_retry(slot.seq.get(), start) } {
                return Some(r);
            }
        }
    }

    /// Takes the writers' lock, with interrupts off, until the guard is dropped.
    pub(crate) fn lock(&self) -> SeqTableGuard<'_, T> {
        // SAFETY: By the type invariants `self.lock` is an initialised `spinlock_t` that lives as
        // long as `self` and is only ever locked as a `SpinLockIrq`.
        let lock = unsafe { Lock::<(), SpinLockIrqBackend>::from_raw(self.lock.get()) };
        // INVARIANT: The guard holds the lock for as long as it exists.
        SeqTableGuard {
            table: self,
            _lock: lock.lock(),
        }
    }

    /// Runs `f` on slot `i`'s value inside a write section of its seqcount
    /// (`write_seqcount_begin()` .. `write_seqcount_end()`); `None` if `i` is out of range.
    ///
    /// # Safety
    ///
    /// The caller holds `self`'s lock and is in no other write section of `self`: the seqcount's
    /// writers must be serialised, or their plain increments of the sequence race (a data race in
    /// C, and a sequence readers can no longer trust).
    unsafe fn write_section<R>(
        &self,
        i: usize,
        f: impl FnOnce(&T, &WriteSection<'_>) -> R,
    ) -> Option<R> {
        let slot = self.slots.get(i)?;
        // SAFETY: By the type invariants `slot.seq` is an initialised `seqcount_spinlock_t`
        // tied to `self.lock`, which the caller holds (lockdep checks it here).
        unsafe { ffi::rust_irqfd_write_seqcount_begin(slot.seq.get()) };
        let r = f(&slot.value, &WriteSection(PhantomData));
        // SAFETY: As above; the write section begun above is still open.
        unsafe { ffi::rust_irqfd_write_seqcount_end(slot.seq.get()) };
        Some(r)
    }
}

/// The writers' lock of a [`SeqTable`], held (with interrupts off): the only way to write it.
pub(crate) struct SeqTableGuard<'a, T> {
    table: &'a SeqTable<T>,
    _lock: SpinLockIrqGuard<'a, ()>,
}

impl<T> SeqTableGuard<'_, T> {
    /// Runs `f` on slot `i`'s value inside a write section of its seqcount, which readers retry
    /// around; `None` if `i` is out of range. `f` runs with interrupts off and must not read the
    /// table through [`SeqTable::read`] (the sequence it would wait for is its own, odd).
    pub(crate) fn write<R>(
        &mut self,
        i: usize,
        f: impl FnOnce(&T, &WriteSection<'_>) -> R,
    ) -> Option<R> {
        // SAFETY: The guard holds the table's lock, and `&mut self` keeps this guard out of any
        // other write section while `f` runs; the lock keeps every other guard out.
        unsafe { self.table.write_section(i, f) }
    }

    /// Slot `i`'s value, which no write can change while the lock is held; `None` if `i` is out
    /// of range.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.table.slots.get(i).map(|slot| &slot.value)
    }
}

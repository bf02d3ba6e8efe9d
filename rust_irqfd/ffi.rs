// SPDX-License-Identifier: GPL-2.0

//! Declarations of the module's C shim.
//!
//! C header: [`rust_irqfd/shim.h`](../shim.h)
//!
//! bindgen never sees the shim's header, so these prototypes are kept in sync with it by hand.
//! Only the wrapper files ([`crate::eventfd`], [`crate::wq`], [`crate::seqcount`],
//! [`crate::nospec`], [`crate::compat`] and [`crate::test_hooks`]) call them.

use kernel::{
    bindings,
    prelude::*, //
};

// Some kernel structs reached through these pointers contain zero-sized bindgen placeholders,
// which the lint flags although only pointers cross the boundary.
#[expect(improper_ctypes)]
extern "C" {
    /// `init_waitqueue_func_entry()`: sets `flags`, `private` and `func` of a wait entry.
    pub(crate) fn rust_irqfd_init_waitqueue_func_entry(
        wq_entry: *mut bindings::wait_queue_entry,
        func: bindings::wait_queue_func_t,
    );

    /// `init_poll_funcptr()`: sets the queueing callback of a poll table.
    pub(crate) fn rust_irqfd_init_poll_funcptr(
        pt: *mut bindings::poll_table_struct,
        qproc: bindings::poll_queue_proc,
    );

    /// `vfs_poll()`: polls `file`, calling the table's queueing callback for its wait queues.
    pub(crate) fn rust_irqfd_vfs_poll(
        file: *mut bindings::file,
        pt: *mut bindings::poll_table_struct,
    ) -> bindings::__poll_t;

    /// `alloc_ordered_workqueue("%s", 0, name)`; NULL on failure.
    pub(crate) fn rust_irqfd_alloc_ordered_workqueue(
        name: *const c_char,
    ) -> *mut bindings::workqueue_struct;

    /// `seqcount_spinlock_init(s, lock)`: an even sequence, tied to `lock`, whose writers must hold
    /// it (lockdep checks that). Every seqcount initialised here has the one lockdep class of the
    /// shim's call site.
    pub(crate) fn rust_irqfd_seqcount_spinlock_init(
        s: *mut bindings::seqcount_spinlock_t,
        lock: *mut bindings::spinlock_t,
    );

    /// `read_seqcount_begin(s)`: waits for an even sequence and returns it, with `smp_rmb()`
    /// after. On PREEMPT_RT an odd sequence makes it take and release `s`'s lock instead of
    /// spinning.
    pub(crate) fn rust_irqfd_read_seqcount_begin(s: *mut bindings::seqcount_spinlock_t) -> c_uint;

    /// `read_seqcount_retry(s, start)`: `smp_rmb()`, then whether the sequence moved from `start`
    /// (the reads since `read_seqcount_begin()` may be torn and must be retried).
    pub(crate) fn rust_irqfd_read_seqcount_retry(
        s: *mut bindings::seqcount_spinlock_t,
        start: c_uint,
    ) -> bool;

    /// `write_seqcount_begin(s)`: asserts (lockdep) that `s`'s lock is held, makes the sequence
    /// odd, then `smp_wmb()`.
    pub(crate) fn rust_irqfd_write_seqcount_begin(s: *mut bindings::seqcount_spinlock_t);

    /// `write_seqcount_end(s)`: `smp_wmb()`, then makes the sequence even again.
    pub(crate) fn rust_irqfd_write_seqcount_end(s: *mut bindings::seqcount_spinlock_t);

    /// `array_index_nospec(index, size)`: `index` if it is below `size`, else 0, computed
    /// without a branch that speculation could run past.
    pub(crate) fn rust_irqfd_array_index_nospec(index: c_ulong, size: c_ulong) -> c_ulong;
}

// What 7.2 lacks (see `crate::compat`); `shim.c` builds these only for a tree before 7.3.
#[cfg(kernel_before_7_3)]
#[expect(improper_ctypes)]
extern "C" {
    /// `spin_lock_irqsave(lock, flags)`; returns `flags`.
    pub(crate) fn rust_irqfd_spin_lock_irqsave(lock: *mut bindings::spinlock_t) -> c_ulong;

    /// `spin_trylock_irqsave(lock, *flags)`: whether it took the lock (and wrote `*flags`).
    pub(crate) fn rust_irqfd_spin_trylock_irqsave(
        lock: *mut bindings::spinlock_t,
        flags: *mut c_ulong,
    ) -> bool;

    /// `spin_unlock_irqrestore(lock, flags)`.
    pub(crate) fn rust_irqfd_spin_unlock_irqrestore(
        lock: *mut bindings::spinlock_t,
        flags: c_ulong,
    );

    /// `lockdep_assert_irqs_disabled()`.
    pub(crate) fn rust_irqfd_lockdep_assert_irqs_disabled();

    /// `misc_register(misc)` with a copy of `misc->fops` owned by this module.
    pub(crate) fn rust_irqfd_misc_register(misc: *mut bindings::miscdevice) -> c_int;

    /// The `deferred_only` module parameter.
    pub(crate) fn rust_irqfd_deferred_only() -> bool;
}

#[cfg(test_hooks)]
extern "C" {
    /// The `test_inject_delay_us` parameter (test_hooks.c, `TEST_HOOKS=1` builds only).
    pub(crate) fn rust_irqfd_test_inject_delay_us() -> c_uint;

    /// Busy-waits `test_route_delay_us` (test_hooks.c); callable with interrupts off.
    pub(crate) fn rust_irqfd_test_route_delay();

    /// The `test_shutdown_delay_us` parameter (test_hooks.c, `TEST_HOOKS=1` builds only).
    pub(crate) fn rust_irqfd_test_shutdown_delay_us() -> c_uint;
}

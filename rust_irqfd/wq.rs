// SPDX-License-Identifier: GPL-2.0

//! A workqueue the module allocates and owns, and work flushing.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! `kernel::workqueue` only exposes the system queues and has no way to flush a work item; this
//! file fills both gaps with the smallest wrappers that keep the `unsafe` here.

use core::{
    ops::Deref,
    ptr::NonNull, //
};
use kernel::{
    bindings,
    prelude::*,
    workqueue::{
        Queue,
        Work, //
    }, //
};

use crate::ffi;

/// An ordered (one item at a time, in queueing order) workqueue owned by the module.
///
/// Dropping it drains and destroys the queue, so the last reference must not be dropped from a
/// work item running on it.
///
/// # Invariants
///
/// `self.0` points at a workqueue allocated by `alloc_ordered_workqueue()` that is destroyed
/// exactly once, in [`Drop`].
pub(crate) struct OrderedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: A workqueue may be used and destroyed from any thread.
unsafe impl Send for OrderedQueue {}

// SAFETY: All operations on a workqueue through a shared reference are thread-safe.
unsafe impl Sync for OrderedQueue {}

impl OrderedQueue {
    /// Allocates an ordered workqueue called `name`.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the queue (it is static);
        // the shim passes it as the argument of a `"%s"` format.
        let ptr = unsafe { ffi::rust_irqfd_alloc_ordered_workqueue(name.as_char_ptr()) };
        // INVARIANT: The pointer comes from `alloc_ordered_workqueue()`; `Drop` destroys it.
        NonNull::new(ptr).map(Self).ok_or(ENOMEM)
    }

    /// Waits until every work item queued before this call has finished.
    ///
    /// Must not be called from a work item running on this queue: it would wait for itself.
    pub(crate) fn flush(&self) {
        // SAFETY: By the type invariant the queue is alive.
        unsafe { bindings::__flush_workqueue(self.0.as_ptr()) };
    }
}

impl Deref for OrderedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: By the type invariant the queue is alive for as long as `self` is borrowed.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OrderedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant the queue is alive and this is the only destruction.
        // `destroy_workqueue()` drains the queue first, so no item of ours runs afterwards.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}

/// The per-CPU system workqueue (`system_percpu_wq`, what `schedule_work()` uses).
///
/// `kernel::workqueue::system()` still names `system_wq`, which 7.3 marks deprecated.
pub(crate) fn system_percpu() -> &'static Queue {
    // SAFETY: `system_percpu_wq` is created at boot, before any module loads, and never destroyed.
    unsafe { Queue::from_raw(bindings::system_percpu_wq) }
}

/// Waits for the last queueing of `work` to finish executing.
///
/// Must not be called from `work`'s own callback.
pub(crate) fn flush_work<T: ?Sized, const ID: u64>(work: &Work<T, ID>) {
    // SAFETY: `work` is a valid, initialised `Work` for the duration of the call, so the pointer
    // `raw_get` returns is a valid `work_struct`.
    unsafe { bindings::flush_work(Work::raw_get(work)) };
}

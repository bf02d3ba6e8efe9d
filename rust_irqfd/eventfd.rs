// SPDX-License-Identifier: GPL-2.0

//! Eventfd ownership, the irqfd's custom wait-queue entry and its poll registration.
//!
//! C headers: [`include/linux/eventfd.h`](srctree/include/linux/eventfd.h),
//! [`include/linux/wait.h`](srctree/include/linux/wait.h) and
//! [`include/linux/poll.h`](srctree/include/linux/poll.h)
//!
//! No Rust abstraction in 7.3 installs a callback on somebody else's wait queue, so this file
//! does it, and it is one of the few files of the module with `unsafe` code. The contract it
//! offers the rest of the module is safe:
//!
//! * [`EventFd`] owns one `eventfd_ctx` reference and puts it when dropped.
//! * [`EventFdWaiter::register`] hooks an `Arc<T>` onto the eventfd's wait queue as its one
//!   priority, exclusive waiter. From then on the wait queue owns one reference to `T`, and the
//!   callbacks of [`EventFdHandler`] run on every wakeup, with the eventfd's wait-queue lock held
//!   and interrupts off.
//! * [`EventFdWaiter::unregister`] unhooks it and hands that reference back. Once it returns, no
//!   callback is running or will run.

use core::{
    marker::PhantomData,
    ptr::{
        addr_of,
        NonNull, //
    }, //
};
use kernel::{
    bindings,
    error::from_err_ptr,
    fs::LocalFile,
    prelude::*,
    sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    },
    types::Opaque, //
};

use crate::{
    compat::LocalInterruptDisabled,
    ffi, //
};

#[cfg(not(CONFIG_EVENTFD))]
compile_error!("rust_irqfd needs CONFIG_EVENTFD=y");

/// An owned reference to an eventfd context.
///
/// # Invariants
///
/// `self.ptr` points at a valid `eventfd_ctx` on which this value owns one reference.
pub(crate) struct EventFd {
    ptr: NonNull<bindings::eventfd_ctx>,
}

// SAFETY: An eventfd context reference may be used and put from any thread.
unsafe impl Send for EventFd {}

// SAFETY: The eventfd functions this type exposes through `&self` are thread-safe.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// Takes a reference on the eventfd behind descriptor `fd` of the current task.
    ///
    /// Fails with `EBADF` if `fd` is not open and with `EINVAL` if it is not an eventfd.
    pub(crate) fn fdget(fd: u32) -> Result<Self> {
        let fd = c_int::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: `eventfd_ctx_fdget()` accepts any descriptor number and returns either a new
        // reference or an error pointer.
        let ptr = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        // INVARIANT: A non-error pointer from `eventfd_ctx_fdget()` carries one reference.
        NonNull::new(ptr).map(Self::owning).ok_or(EINVAL)
    }

    /// Takes a reference on the eventfd of `file`, `EINVAL` if it is not an eventfd.
    pub(crate) fn from_file(file: &LocalFile) -> Result<Self> {
        // SAFETY: `file` is a valid file for the duration of the call.
        let ptr = from_err_ptr(unsafe { bindings::eventfd_ctx_fileget(file.as_ptr()) })?;
        // INVARIANT: A non-error pointer from `eventfd_ctx_fileget()` carries one reference.
        NonNull::new(ptr).map(Self::owning).ok_or(EINVAL)
    }

    /// Wraps a pointer that carries one reference.
    fn owning(ptr: NonNull<bindings::eventfd_ctx>) -> Self {
        Self { ptr }
    }

    /// Whether `self` and `other` are the same eventfd.
    pub(crate) fn same(&self, other: &EventFd) -> bool {
        self.ptr == other.ptr
    }

    /// A key that identifies the eventfd among all live ones: its `eventfd_ctx` address.
    ///
    /// Stable while `self` is alive (it holds a reference, so the address cannot be reused).
    pub(crate) fn key(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Adds 1 to the eventfd's counter and wakes its waiters (`eventfd_signal()`).
    ///
    /// Process context, or any context but the wakeup of an eventfd: signalling from inside a
    /// wakeup is the recursion of race R19, which the eventfd core refuses with a warning.
    pub(crate) fn signal(&self) {
        // SAFETY: By the type invariant, `ptr` is a valid eventfd context we hold a reference on.
        unsafe { bindings::eventfd_signal_mask(self.as_ptr(), 0) };
    }

    fn as_ptr(&self) -> *mut bindings::eventfd_ctx {
        self.ptr.as_ptr()
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: By the type invariant, this value owns one reference, given back here once.
        unsafe { bindings::eventfd_ctx_put(self.as_ptr()) };
    }
}

/// The wait entry has never been registered.
const NEW: u32 = 0;
/// Registration is in progress.
const REGISTERING: u32 = 1;
/// The wait entry is on the eventfd's wait queue, which owns a reference to the container.
const REGISTERED: u32 = 2;
/// The wait entry was removed again (or registration failed); it is never reused.
const DONE: u32 = 3;

/// Everything an object needs to sit on an eventfd's wait queue: the eventfd reference, the
/// wait-queue entry with its callback and the poll table used to register it.
///
/// # Invariants
///
/// * Whenever `entry` is on a wait queue, it is the wait queue of `eventfd`, and the
///   `EventFdHandler` that contains `self` is in an `Arc` of which the wait queue owns one
///   reference. That is the case in state `REGISTERED`, and in state `REGISTERING` once
///   [`queue_proc`] has queued the entry.
/// * In states `NEW` and `DONE`, `entry` is on no wait queue.
#[pin_data]
pub(crate) struct EventFdWaiter {
    eventfd: EventFd,
    #[pin]
    entry: Opaque<bindings::wait_queue_entry>,
    #[pin]
    table: Opaque<bindings::poll_table_struct>,
    state: Atomic<u32>,
    /// What `add_wait_queue_priority_exclusive()` returned in [`queue_proc`].
    add_result: Atomic<i32>,
}

// SAFETY: The wait entry and poll table are only touched through the wait-queue code, under its
// lock, or by `register`/`unregister`, which serialise on `state`; the rest is `Send`.
unsafe impl Send for EventFdWaiter {}

// SAFETY: As for `Send`: shared access goes through the wait-queue lock or the atomic `state`.
unsafe impl Sync for EventFdWaiter {}

impl EventFdWaiter {
    /// Creates a waiter for `eventfd`, not yet on its wait queue.
    pub(crate) fn new(eventfd: EventFd) -> impl PinInit<Self> {
        // INVARIANT: `state` is `NEW` and `entry` is on no wait queue.
        pin_init!(Self {
            eventfd,
            entry: Opaque::uninit(),
            table: Opaque::uninit(),
            state: Atomic::new(NEW),
            add_result: Atomic::new(0),
        })
    }

    /// The eventfd this waiter belongs to.
    pub(crate) fn eventfd(&self) -> &EventFd {
        &self.eventfd
    }

    /// Hooks `this` onto its eventfd's wait queue as the queue's one priority, exclusive waiter,
    /// by polling `file`, which must be that eventfd's file.
    ///
    /// Returns whether the eventfd was readable (its counter non-zero) at registration. On
    /// success the wait queue owns one reference to `this` until [`Self::unregister`]; the
    /// handler's callbacks may run as soon as the entry is on the queue, before this returns.
    ///
    /// Fails with `EBUSY` if the eventfd already has a priority waiter (an irqfd in this or
    /// another module, or in KVM), with `EINVAL` if `file` is not this waiter's eventfd, and with
    /// `EBUSY` if `this` was registered before (a waiter is registered at most once).
    pub(crate) fn register<T: EventFdHandler>(this: &Arc<T>, file: &LocalFile) -> Result<bool> {
        let waiter = this.waiter();
        if !EventFd::from_file(file)?.same(&waiter.eventfd) {
            return Err(EINVAL);
        }
        if waiter.state.cmpxchg(NEW, REGISTERING, Relaxed).is_err() {
            return Err(EBUSY);
        }

        // The wait queue's reference, leaked here: `wake::<T>` may use it as soon as the entry is
        // queued, which happens inside `vfs_poll()`. Every pointer handed to C derives from it.
        let queued = Arc::into_raw(this.clone());
        // SAFETY: `queued` points at a live `T` (we hold two references).
        let raw = unsafe { T::raw_get_waiter(queued) };
        // SAFETY: `raw` points at a live `EventFdWaiter`; these are field projections.
        let (entry, table) = unsafe {
            (
                Opaque::cast_into(addr_of!((*raw).entry)),
                Opaque::cast_into(addr_of!((*raw).table)),
            )
        };

        // SAFETY: `entry` and `table` are pinned inside `this` and on no queue (state
        // `REGISTERING`, set by us alone), so they may be (re)initialised; the callbacks match the
        // C prototypes.
        unsafe {
            ffi::rust_irqfd_init_waitqueue_func_entry(entry, Some(wake::<T>));
            ffi::rust_irqfd_init_poll_funcptr(table, Some(queue_proc));
        }
        // A file whose poll never calls `poll_wait()` leaves this in place.
        waiter.add_result.store(EINVAL.to_errno(), Relaxed);

        // SAFETY: `file` is valid for the call; `table` was initialised above, and
        // `queue_proc()` finds the waiter from it, which `this` keeps alive throughout.
        let events = unsafe { ffi::rust_irqfd_vfs_poll(file.as_ptr(), table) };

        let ret = waiter.add_result.load(Relaxed);
        if ret != 0 {
            // INVARIANT: The entry was not queued; it never will be.
            waiter.state.store(DONE, Relaxed);
            // SAFETY: `queued` came from `Arc::into_raw` above and the wait queue never got it.
            drop(unsafe { Arc::from_raw(queued) });
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: The entry is on the eventfd's wait queue, which owns the reference `queued`.
        waiter.state.store(REGISTERED, Relaxed);
        Ok(events & bindings::POLLIN != 0)
    }

    /// Removes `this` from its eventfd's wait queue, discarding the counter's value, and returns
    /// the reference the wait queue owned; `None` if `this` is not registered.
    ///
    /// Once this returns, no callback of `this` is running or will run: removal takes the
    /// wait-queue lock, which every callback runs under. So it must not be called from a
    /// callback of `this` (it would wait for its own lock).
    pub(crate) fn unregister<T: EventFdHandler>(this: &Arc<T>) -> Option<Arc<T>> {
        let waiter = this.waiter();
        if waiter.state.cmpxchg(REGISTERED, DONE, Relaxed).is_err() {
            return None;
        }
        let mut cnt: u64 = 0;
        // SAFETY: By the type invariant (state was `REGISTERED`), `entry` is on the wait queue of
        // `eventfd`, which is alive because we own a reference to it.
        unsafe {
            bindings::eventfd_ctx_remove_wait_queue(
                waiter.eventfd.as_ptr(),
                waiter.entry.get(),
                &mut cnt,
            )
        };
        // SAFETY: By the type invariant, the wait queue owned a reference to this `Arc`, made by
        // `Arc::into_raw` in `register`, whose pointer `Arc::as_ptr` returns again. The entry is
        // off the queue, so that reference is ours now, and it is taken back exactly once (the
        // state is `DONE`).
        Some(unsafe { Arc::from_raw(Arc::as_ptr(this)) })
    }
}

/// Types that embed an [`EventFdWaiter`].
///
/// # Safety
///
/// [`HasEventFdWaiter::waiter_container_of`] must be the inverse of the field projection
/// [`HasEventFdWaiter::waiter`] uses. Use [`impl_has_eventfd_waiter!`] rather than implementing
/// this by hand.
pub(crate) unsafe trait HasEventFdWaiter {
    /// The embedded waiter.
    fn waiter(&self) -> &EventFdWaiter;

    /// The waiter embedded in the object at `ptr`, keeping `ptr`'s provenance.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid `Self`.
    unsafe fn raw_get_waiter(ptr: *const Self) -> *const EventFdWaiter;

    /// The object that contains the waiter at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point at the waiter field of a valid `Self`.
    unsafe fn waiter_container_of(ptr: *const EventFdWaiter) -> *const Self;
}

/// Implements [`HasEventFdWaiter`] for a type with an [`EventFdWaiter`] field.
macro_rules! impl_has_eventfd_waiter {
    (impl$({$($generics:tt)*})? HasEventFdWaiter for $self:ty { self.$field:ident }) => {
        // SAFETY: `waiter_container_of` inverts the projection to `$field` that `waiter` makes.
        unsafe impl$(<$($generics)*>)? $crate::eventfd::HasEventFdWaiter for $self {
            fn waiter(&self) -> &$crate::eventfd::EventFdWaiter {
                &self.$field
            }

            unsafe fn raw_get_waiter(ptr: *const Self) -> *const $crate::eventfd::EventFdWaiter {
                // SAFETY: The caller promises that `ptr` points at a valid `Self`.
                unsafe { ::core::ptr::addr_of!((*ptr).$field) }
            }

            unsafe fn waiter_container_of(
                ptr: *const $crate::eventfd::EventFdWaiter,
            ) -> *const Self {
                // SAFETY: The caller promises that `ptr` points at the `$field` of a `Self`.
                unsafe { ::kernel::container_of!(ptr.cast_mut(), Self, $field) }
            }
        }
    };
}
pub(crate) use impl_has_eventfd_waiter;

/// The context of an eventfd's wakeup: its wait-queue lock is held, and every path into a wakeup
/// takes that lock with local interrupts off (`eventfd_signal()` may run in hard-IRQ context), so
/// they stay off for the whole callback, except on `PREEMPT_RT`, where the lock sleeps and
/// interrupts stay on.
///
/// It carries the proof that lets a callback take an IRQ-safe lock without saving and restoring
/// the interrupt state again ([`compat::lock_with`]).
///
/// [`compat::lock_with`]: crate::compat::lock_with
pub(crate) struct WakeContext<'a> {
    #[cfg(not(CONFIG_PREEMPT_RT))]
    irqs_off: &'a LocalInterruptDisabled,
    _wakeup: PhantomData<&'a LocalInterruptDisabled>,
}

impl WakeContext<'_> {
    /// Proof that local interrupts are off, `None` on `PREEMPT_RT`.
    pub(crate) fn irqs_off(&self) -> Option<&LocalInterruptDisabled> {
        #[cfg(not(CONFIG_PREEMPT_RT))]
        return Some(self.irqs_off);
        #[cfg(CONFIG_PREEMPT_RT)]
        return None;
    }
}

/// What an object on an eventfd's wait queue does on wakeups.
///
/// Both callbacks run in the wakeup's context: the eventfd's wait-queue lock is held, interrupts
/// are off, and the caller may be in hard-IRQ context. They must not sleep, and must not call
/// [`EventFdWaiter::unregister`] on themselves.
pub(crate) trait EventFdHandler: HasEventFdWaiter + Send + Sync + Sized {
    /// The eventfd was signalled (`EPOLLIN`); its counter, `count`, has been consumed.
    fn signalled(this: ArcBorrow<'_, Self>, count: u64, wake: &WakeContext<'_>);

    /// The eventfd is being released (`EPOLLHUP`).
    fn hangup(this: ArcBorrow<'_, Self>);
}

/// The wait-queue callback of every registered [`EventFdWaiter`].
///
/// Returns 1 for `EPOLLIN`, so that this exclusive waiter consumes the wakeup and no other waiter
/// of the eventfd sees it, as KVM's irqfd does.
///
/// # Safety
///
/// Called only by the wait-queue code, under the wait-queue lock, for an entry queued by
/// [`EventFdWaiter::register::<T>`]: `entry` is the `entry` field of an `EventFdWaiter` embedded
/// in a `T` that the wait queue owns a reference to.
unsafe extern "C" fn wake<T: EventFdHandler>(
    entry: *mut bindings::wait_queue_entry,
    _mode: c_uint,
    _sync: c_int,
    key: *mut c_void,
) -> c_int {
    // CAST: The key of a poll wakeup is a 32-bit poll mask stored in a pointer (`key_to_poll()`).
    let events = key.addr() as u32;
    let entry = entry.cast::<Opaque<bindings::wait_queue_entry>>();
    // SAFETY: The caller promises that `entry` is the `entry` field of an `EventFdWaiter`.
    let waiter = unsafe { kernel::container_of!(entry, EventFdWaiter, entry) };
    // SAFETY: The caller promises that the waiter is embedded in a `T`.
    let ptr = unsafe { T::waiter_container_of(waiter) };
    // SAFETY: `ptr` derives from the pointer `register` got from `Arc::into_raw` (all the
    // projections keep its provenance). By the invariant of `EventFdWaiter`, since the entry is
    // queued the wait queue owns a reference to that `Arc`, which cannot go away before the entry
    // is unqueued, and that needs the lock we run under. No `UniqueArc` of it can exist while
    // that reference does.
    let this = unsafe { ArcBorrow::from_raw(ptr) };
    let waiter = this.waiter();
    let wake = WakeContext {
        #[cfg(not(CONFIG_PREEMPT_RT))]
        // SAFETY: The caller holds the eventfd's wait-queue lock for the whole call, and every
        // path into a wakeup takes it with local interrupts off, which they stay until it is
        // released, after this function returns (not so on `PREEMPT_RT`, hence the `cfg`).
        irqs_off: unsafe { LocalInterruptDisabled::assume_disabled() },
        _wakeup: PhantomData,
    };

    let mut ret = 0;
    if events & bindings::POLLIN != 0 {
        let mut count: u64 = 0;
        // SAFETY: The eventfd is alive (the waiter owns a reference) and its wait-queue lock is
        // held, as `eventfd_ctx_do_read()` requires.
        unsafe { bindings::eventfd_ctx_do_read(waiter.eventfd.as_ptr(), &mut count) };
        T::signalled(this, count, &wake);
        ret = 1;
    }
    if events & bindings::POLLHUP != 0 {
        T::hangup(this);
    }
    ret
}

/// The poll-table callback: queues the waiter's entry on the eventfd's wait queue.
///
/// # Safety
///
/// Called only by `vfs_poll()` through a table initialised in [`EventFdWaiter::register`]:
/// `table` is the `table` field of a live `EventFdWaiter` and `wqh` a live wait queue head.
unsafe extern "C" fn queue_proc(
    _file: *mut bindings::file,
    wqh: *mut bindings::wait_queue_head,
    table: *mut bindings::poll_table_struct,
) {
    let table = table.cast::<Opaque<bindings::poll_table_struct>>();
    // SAFETY: The caller promises that `table` is the `table` field of a live `EventFdWaiter`.
    let waiter = unsafe { &*kernel::container_of!(table, EventFdWaiter, table) };
    // SAFETY: `wqh` is live (the caller) and the entry was initialised by `register` and is on no
    // queue (the state is `REGISTERING`).
    let ret = unsafe { bindings::add_wait_queue_priority_exclusive(wqh, waiter.entry.get()) };
    waiter.add_result.store(ret, Relaxed);
}

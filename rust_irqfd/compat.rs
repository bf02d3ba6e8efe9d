// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernels the module builds against, in one place.
//!
//! The module is written against the newest supported release (7.3). For each older one, Kbuild
//! passes `--cfg kernel_before_X_Y` for every newer release `X.Y` whose Rust API the tree lacks
//! (`rust_irqfd/Kbuild`, from the tree's `VERSION` and `PATCHLEVEL`; the C shims get the macro
//! `KERNEL_BEFORE_X_Y`); the rest of the module uses these names and is written once. On 7.3
//! they are the kernel's own items, re-exported.
//!
//! What 7.2 lacks, and what stands in for it here:
//!
//! * `SpinLockIrq` (`kernel::sync`, 7.3): an IRQ-safe spinlock. Here: a [`Backend`] over
//!   `spin_lock_irqsave()`/`spin_unlock_irqrestore()` (C shims, `shim.c`), with the same type
//!   names and `new_spinlock_irq!`. `CondVar` works with any backend: it unlocks (restoring the
//!   interrupt state) before it sleeps and relocks after. One difference: 7.3 counts interrupt
//!   disables, so its guards may be dropped in any order; saved flags are restored as they were,
//!   so on 7.2 the guards of nested IRQ-safe locks must be dropped in reverse order of locking.
//!   The module nests them only that way (a route table's guard around the irqchip's).
//! * `kernel::interrupt::LocalInterruptDisabled` and `SpinLockIrq::lock_with` (7.3): the proof
//!   that interrupts are off, and taking an IRQ-safe lock with it without saving them again.
//!   Here: the same token (its constructor asserts with lockdep, as 7.3's does) and [`lock_with`],
//!   which takes the lock as a plain spinlock, exactly as 7.3's method does.
//! * `ModuleParamAccess::value()` returns the value in 7.3, a reference in 7.2: [`param`].
//! * `bool` module parameters (7.3): `rust_irqfd_main.rs` declares `deferred_only` in C on 7.2
//!   (`shim.c`), read through [`deferred_only`].
//! * The misc device's file operations carry `.owner = THIS_MODULE` only from 7.3 on: on 7.2 an
//!   open file does not pin the module, and `rmmod` with `/dev/rust_irqfd` open would free the
//!   code its release still has to run. Here: [`MiscDeviceRegistration`] registers a copy of the
//!   operations with the owner set (`shim.c`).
//!
//! A release's changes to these APIs go here, under a new `kernel_before_X_Y`.

#[cfg(not(kernel_before_7_3))]
pub(crate) use kernel::{
    interrupt::LocalInterruptDisabled,
    miscdevice::MiscDeviceRegistration,
    new_spinlock_irq,
    sync::{
        lock::spinlock::SpinLockIrqBackend,
        SpinLockIrq,
        SpinLockIrqGuard, //
    }, //
};

/// The guard of [`lock_with`]: a plain spinlock's, in both releases.
pub(crate) use kernel::sync::SpinLockGuard;

use kernel::module_param::ModuleParamAccess;

/// Locks `lock`, whose interrupts `irqs_off` proves off already, without saving and restoring
/// them again (`SpinLockIrq::lock_with`).
#[cfg(not(kernel_before_7_3))]
#[inline]
pub(crate) fn lock_with<'a, T>(
    lock: &'a SpinLockIrq<T>,
    irqs_off: &'a LocalInterruptDisabled,
) -> SpinLockGuard<'a, T> {
    lock.lock_with(irqs_off)
}

/// The value of a module parameter.
#[inline]
pub(crate) fn param<T: Copy>(p: &ModuleParamAccess<T>) -> T {
    #[cfg(not(kernel_before_7_3))]
    return p.value();
    #[cfg(kernel_before_7_3)]
    return *p.value();
}

/// The `deferred_only` module parameter.
#[inline]
pub(crate) fn deferred_only() -> bool {
    #[cfg(not(kernel_before_7_3))]
    return param(&crate::module_parameters::deferred_only);
    #[cfg(kernel_before_7_3)]
    // SAFETY: The shim only reads its parameter.
    return unsafe { crate::ffi::rust_irqfd_deferred_only() };
}

#[cfg(kernel_before_7_3)]
pub(crate) use v7_2::*;

#[cfg(kernel_before_7_3)]
mod v7_2 {
    use core::marker::PhantomData;

    use kernel::{
        bindings,
        error::to_result,
        miscdevice::{
            MiscDevice,
            MiscDeviceOptions, //
        },
        prelude::*,
        sync::lock::{
            spinlock::SpinLockBackend,
            Backend,
            Guard,
            Lock, //
        },
        types::{
            NotThreadSafe,
            Opaque, //
        }, //
    };

    use crate::ffi;

    /// A proof that local interrupts are off on this CPU, as 7.3's
    /// `kernel::interrupt::LocalInterruptDisabled`: only ever handed out by reference, for as
    /// long as they stay off.
    ///
    /// # Invariants
    ///
    /// Local interrupts are off while a reference to it exists; it is neither `Send` nor `Sync`
    /// (`NotThreadSafe`), so the reference stays on the CPU where that holds.
    pub(crate) struct LocalInterruptDisabled(NotThreadSafe);

    impl LocalInterruptDisabled {
        /// The proof, for a caller that knows interrupts are off.
        ///
        /// # Safety
        ///
        /// Local interrupts are off, and stay off for `'a`.
        pub(crate) unsafe fn assume_disabled<'a>() -> &'a LocalInterruptDisabled {
            const PROOF: &LocalInterruptDisabled = &LocalInterruptDisabled(NotThreadSafe);
            // SAFETY: The shim only asserts (lockdep) that interrupts are off.
            unsafe { ffi::rust_irqfd_lockdep_assert_irqs_disabled() };
            // INVARIANT: The caller promises that interrupts are off for `'a`.
            PROOF
        }
    }

    /// The backend of [`SpinLockIrq`]: a `spinlock_t` taken with `spin_lock_irqsave()`, the
    /// interrupt state saved in the guard and restored at unlock.
    pub(crate) struct SpinLockIrqBackend;

    // SAFETY: A `spinlock_t` excludes every other holder between `lock` and `unlock`, and the
    // default `relock` takes it again with `lock`, the same method.
    unsafe impl Backend for SpinLockIrqBackend {
        type State = bindings::spinlock_t;
        type GuardState = c_ulong;

        unsafe fn init(
            ptr: *mut Self::State,
            name: *const c_char,
            key: *mut bindings::lock_class_key,
        ) {
            // SAFETY: The caller passes a writable `spinlock_t`, and a name and a key that live
            // forever.
            unsafe { bindings::__spin_lock_init(ptr, name, key) }
        }

        unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
            // SAFETY: The caller passes a lock initialised by `init`.
            unsafe { ffi::rust_irqfd_spin_lock_irqsave(ptr) }
        }

        unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
            let mut flags = 0;
            // SAFETY: The caller passes a lock initialised by `init`; `flags` is writable.
            (unsafe { ffi::rust_irqfd_spin_trylock_irqsave(ptr, &mut flags) }).then_some(flags)
        }

        unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
            // SAFETY: The caller holds the lock, taken by `lock`, `try_lock` or `relock`, which
            // gave `guard_state`.
            unsafe { ffi::rust_irqfd_spin_unlock_irqrestore(ptr, *guard_state) }
        }

        unsafe fn assert_is_held(ptr: *mut Self::State) {
            // SAFETY: The caller passes a lock initialised by `init`.
            unsafe { bindings::spin_assert_is_held(ptr) }
        }
    }

    /// An IRQ-safe spinlock, as 7.3's `kernel::sync::SpinLockIrq`.
    pub(crate) type SpinLockIrq<T> = Lock<T, SpinLockIrqBackend>;
    /// A guard of a [`SpinLockIrq`].
    pub(crate) type SpinLockIrqGuard<'a, T> = Guard<'a, T, SpinLockIrqBackend>;

    /// Locks `lock` as a plain spinlock: interrupts are off already (`_irqs_off`).
    #[inline]
    pub(crate) fn lock_with<'a, T>(
        lock: &'a SpinLockIrq<T>,
        _irqs_off: &'a LocalInterruptDisabled,
    ) -> super::SpinLockGuard<'a, T> {
        // SAFETY: `Lock` is `repr(C)` and both backends' state is a `spinlock_t`, so the two lock
        // types have one layout; with interrupts off, `spin_lock()` is what `spin_lock_irqsave()`
        // would do. 7.3's `lock_with` does the same.
        let lock = unsafe { &*core::ptr::from_ref(lock).cast::<Lock<T, SpinLockBackend>>() };
        lock.lock()
    }

    /// Creates a [`SpinLockIrq`], with a lockdep class of the call site, as 7.3's macro.
    macro_rules! new_spinlock_irq {
        ($inner:expr $(, $name:literal)? $(,)?) => {
            $crate::compat::SpinLockIrq::new(
                $inner,
                ::kernel::optional_name!($($name)?),
                ::kernel::static_lock_class!(),
            )
        };
    }
    pub(crate) use new_spinlock_irq;

    /// A registered misc device whose file operations pin the module while a file is open.
    ///
    /// Laid out as 7.2's `kernel::miscdevice::MiscDeviceRegistration<T>`, which the device's
    /// `open` finds in the file's `private_data`.
    ///
    /// # Invariants
    ///
    /// `inner` is registered with `misc_register()` from [`MiscDeviceRegistration::register`]
    /// until [`PinnedDrop::drop`] deregisters it.
    #[repr(transparent)]
    #[pin_data(PinnedDrop)]
    pub(crate) struct MiscDeviceRegistration<T> {
        #[pin]
        inner: Opaque<bindings::miscdevice>,
        _t: PhantomData<T>,
    }

    // SAFETY: `misc_deregister()` may run on another thread than `misc_register()`.
    unsafe impl<T> Send for MiscDeviceRegistration<T> {}
    // SAFETY: It has no `&self` methods.
    unsafe impl<T> Sync for MiscDeviceRegistration<T> {}

    impl<T: MiscDevice> MiscDeviceRegistration<T> {
        /// Registers the device `opts` describes, its file operations owned by this module.
        pub(crate) fn register(opts: MiscDeviceOptions) -> impl PinInit<Self, Error> {
            try_pin_init!(Self {
                inner <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                    // SAFETY: `slot` is writable.
                    unsafe { slot.write(opts.into_raw::<T>()) };
                    // INVARIANT: Registered if this succeeds; `slot` is pinned and deregistered
                    // before it is freed.
                    // SAFETY: `slot` holds a `miscdevice` ready for registration. The shim gives
                    // it one static copy of its file operations, which open files point at: it
                    // refuses (`EBUSY`) any registration after the first of the module's life, so
                    // the copy is never written while a file can use it.
                    to_result(unsafe { ffi::rust_irqfd_misc_register(slot) })
                }),
                _t: PhantomData,
            })
        }
    }

    #[pinned_drop]
    impl<T> PinnedDrop for MiscDeviceRegistration<T> {
        fn drop(self: Pin<&mut Self>) {
            // SAFETY: Registered, by the type invariant.
            unsafe { bindings::misc_deregister(self.inner.get()) };
        }
    }
}

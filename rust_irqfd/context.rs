// SPDX-License-Identifier: GPL-2.0

//! A context (the stand-in for a VM): its irqfds, its interrupt sink, assign, deassign, release.

use kernel::{
    fs::LocalFile,
    new_mutex,
    prelude::*,
    rbtree::{
        RBTree,
        RBTreeNodeReservation, //
    },
    sync::{
        atomic::Atomic,
        Arc,
        Mutex, //
    }, //
};

use crate::{
    compat::{
        new_spinlock_irq,
        SpinLockIrq, //
    },
    eventfd::{
        EventFd,
        EventFdWaiter, //
    },
    irqfd::{
        Irqfd,
        IrqfdInfo, //
    },
    route::{
        Route,
        Routes, //
    },
    shutdown,
    sink::Sink,
    wq::OrderedQueue, //
};

/// Irqfds handled per hold of the IRQ-safe `irqfds` lock by the loops over many of them (a
/// deassign batch, the rollback of an assign batch): the lock keeps interrupts off, and those
/// sections must not grow with the number of irqfds. [`Context::release`] takes the whole tree
/// in one step instead.
const LOCK_BATCH: usize = 32;

/// The resample irqfds of each GSI that has any: the GSI's shared resampler.
///
/// # Invariants
///
/// Every list is non-empty, and holds irqfds of this context bound to its key's GSI with a
/// `resample` eventfd, each once. An irqfd joins before its wait entry is registered and leaves
/// in its shutdown (or when its assign fails), so an injection it made can always be acked.
pub(crate) type Resamplers<S> = RBTree<u32, KVec<Arc<Irqfd<S>>>>;

/// The active irqfds of a context, keyed by their eventfd.
///
/// Only the methods below change it, so that the tree and its counts stay in step; outside this
/// file, an irqfd can only be taken out ([`Irqfds::take`]).
///
/// # Invariants
///
/// * Every irqfd in `tree` belongs to the context that holds this (`irqfd.ctx`), under the key
///   of its eventfd ([`EventFd::key`]); an irqfd is in this tree or in none.
/// * `active` is the number of entries of `tree`.
/// * `assigning` counts the places held by [`Irqfds::reserve`] for assigns that have not yet
///   put their irqfd into `tree` ([`Irqfds::insert`]) or failed ([`Irqfds::unreserve`]);
///   `active + assigning` never exceeds the context's `max_irqfds`, which `reserve` is given.
pub(crate) struct Irqfds<S: Sink> {
    tree: RBTree<usize, Arc<Irqfd<S>>>,
    active: u32,
    assigning: u32,
}

impl<S: Sink> Irqfds<S> {
    /// No irqfds, and no place held.
    fn new() -> Self {
        // INVARIANT: An empty tree, and nothing counted.
        Self {
            tree: RBTree::new(),
            active: 0,
            assigning: 0,
        }
    }

    /// Number of active irqfds.
    fn len(&self) -> u32 {
        self.active
    }

    /// Holds a place for one more irqfd, or `ENOSPC` if `max` are active or held already.
    fn reserve(&mut self, max: u32) -> Result {
        if self.active + self.assigning >= max {
            return Err(ENOSPC);
        }
        // INVARIANT: Checked against the limit just above; given back by `insert` or `unreserve`.
        self.assigning += 1;
        Ok(())
    }

    /// Gives back a place [`Irqfds::reserve`] held, for an assign that failed.
    fn unreserve(&mut self) {
        // INVARIANT: The place is free again.
        self.assigning -= 1;
    }

    /// Puts `irqfd`, an irqfd of the context that holds `self`, into the tree in the place
    /// [`Irqfds::reserve`] held for it, with the node `node`.
    ///
    /// Returns the irqfd that had the same eventfd, if any: it is out of the tree now, and its
    /// shutdown the caller's. (An eventfd takes one irqfd at a time, so there is none.)
    fn insert(
        &mut self,
        node: RBTreeNodeReservation<usize, Arc<Irqfd<S>>>,
        irqfd: Arc<Irqfd<S>>,
    ) -> Option<Arc<Irqfd<S>>> {
        let key = irqfd.waiter.eventfd().key();
        // INVARIANT: The held place becomes an entry of the tree, under the irqfd's eventfd key;
        // the caller promises that it is an irqfd of this context. If it replaced one, the tree
        // did not grow.
        self.assigning -= 1;
        let replaced = self.tree.insert(node.into_node(key, irqfd));
        if replaced.is_none() {
            self.active += 1;
        }
        replaced.map(|old| old.to_key_value().1)
    }

    /// Takes `irqfd` out of the tree if it is there (active). Whoever gets it back owns its
    /// shutdown.
    pub(crate) fn take(&mut self, irqfd: &Irqfd<S>) -> Option<Arc<Irqfd<S>>> {
        let key = irqfd.waiter.eventfd().key();
        match self.tree.get(&key) {
            Some(found) if core::ptr::eq(&**found, irqfd) => self.remove(key),
            _ => None,
        }
    }

    /// Takes the irqfd that binds `eventfd` to `gsi` out of the tree, if there is one.
    fn take_bound(&mut self, eventfd: &EventFd, gsi: u32) -> Option<Arc<Irqfd<S>>> {
        // The key is ours while we hold the eventfd: it cannot name another one.
        let key = eventfd.key();
        if self.tree.get(&key).is_some_and(|irqfd| irqfd.gsi == gsi) {
            self.remove(key)
        } else {
            None
        }
    }

    /// Takes every irqfd out of the tree and hands them over, with their shutdowns.
    fn take_all(&mut self) -> RBTree<usize, Arc<Irqfd<S>>> {
        // INVARIANT: The tree is empty now.
        self.active = 0;
        core::mem::replace(&mut self.tree, RBTree::new())
    }

    /// Takes the irqfd of the eventfd `key` out of the tree, if there is one.
    fn remove(&mut self, key: usize) -> Option<Arc<Irqfd<S>>> {
        let irqfd = self.tree.remove(&key)?;
        // INVARIANT: One entry fewer in the tree.
        self.active -= 1;
        Some(irqfd)
    }

    /// Appends to `out`, until it is full, the fdinfo of the active irqfds whose key is `from`
    /// or more, in key order. Returns the key to go on from if some did not fit.
    fn infos(&mut self, from: usize, out: &mut KVec<IrqfdInfo>) -> Option<usize> {
        // The mutable cursor only because the shared one cannot move; nothing is changed.
        let mut cursor = self.tree.cursor_lower_bound_mut(&from);
        while let Some(c) = cursor {
            let (&key, irqfd) = c.current();
            if out.push_within_capacity(irqfd.info()).is_err() {
                return Some(key);
            }
            cursor = c.move_next();
        }
        None
    }
}

/// A context: the owner of a set of irqfds and of the sink they inject into.
#[pin_data]
pub(crate) struct Context<S: Sink> {
    #[pin]
    pub(crate) sink: S,
    /// The active irqfds. IRQ-safe: the `EPOLLHUP` wakeup takes it with interrupts off.
    #[pin]
    pub(crate) irqfds: SpinLockIrq<Irqfds<S>>,
    /// The route of each GSI, read by every injection.
    #[pin]
    pub(crate) routes: Routes,
    /// The resamplers. A mutex: only process context takes it (assign, `RUST_IRQFD_ACK`, and
    /// shutdown), and the ack signals resamplefds while holding it, so that no irqfd can leave,
    /// and no resamplefd reference be put, under a signal (race R20).
    #[pin]
    resamplers: Mutex<Resamplers<S>>,
    /// This context's ordered cleanup queue, where its shutdowns run. Per context, so that
    /// deassign and release wait for this context's shutdowns only. Its last reference is the
    /// context's file's (see [`Context::release`]), so it is never destroyed from its own work.
    pub(crate) cleanup: OrderedQueue,
    /// Never inject from the wakeup; always through the injection work.
    pub(crate) deferred_only: bool,
    /// Most irqfds this context may hold.
    pub(crate) max_irqfds: u32,
    /// Shutdowns completed, for `RUST_IRQFD_GET_INFO`.
    pub(crate) shutdowns: Atomic<u64>,
}

/// A place for one more irqfd, held against the context's limit from the check until the assign
/// puts its irqfd in the tree ([`AssignSlot::commit`]) or fails (drop).
struct AssignSlot<'a, S: Sink> {
    ctx: &'a Context<S>,
}

impl<'a, S: Sink> AssignSlot<'a, S> {
    /// Reserves a place, or `ENOSPC` if the context holds `max_irqfds` already.
    fn reserve(ctx: &'a Context<S>) -> Result<Self> {
        ctx.irqfds.lock().reserve(ctx.max_irqfds)?;
        Ok(Self { ctx })
    }

    /// Puts `irqfd` into `irqfds`, the context's, in the reserved place (see [`Irqfds::insert`]).
    fn commit(
        self,
        irqfds: &mut Irqfds<S>,
        node: RBTreeNodeReservation<usize, Arc<Irqfd<S>>>,
        irqfd: Arc<Irqfd<S>>,
    ) -> Option<Arc<Irqfd<S>>> {
        // The place is taken, not given back.
        core::mem::forget(self);
        irqfds.insert(node, irqfd)
    }
}

impl<S: Sink> Drop for AssignSlot<'_, S> {
    fn drop(&mut self) {
        // The assign failed.
        self.ctx.irqfds.lock().unreserve();
    }
}

impl<S: Sink> Context<S> {
    /// A new context with no irqfds, injecting into the sink `sink` initialises.
    pub(crate) fn new(
        sink: impl PinInit<S, Error>,
        nr_gsis: u32,
        deferred_only: bool,
        max_irqfds: u32,
    ) -> Result<Arc<Self>> {
        let cleanup = OrderedQueue::new(c"rust-irqfd-cleanup")?;
        let routes = Routes::new(nr_gsis)?;
        Arc::pin_init(
            try_pin_init!(Self {
                sink <- sink,
                routes <- routes,
                resamplers <- new_mutex!(RBTree::new(), "Context::resamplers"),
                irqfds <- new_spinlock_irq!(Irqfds::new(), "Context::irqfds"),
                cleanup,
                deferred_only,
                max_irqfds,
                shutdowns: Atomic::new(0),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// Number of active irqfds.
    pub(crate) fn nr_irqfds(&self) -> u32 {
        self.irqfds.lock().len()
    }

    /// Calls `f` with the binding and counters of every active irqfd, in eventfd order.
    ///
    /// Copies at most `CHUNK` at a time under the lock, so that listing 65536 irqfds never keeps
    /// interrupts off for long; irqfds assigned or removed meanwhile may or may not be listed.
    pub(crate) fn for_each_irqfd(&self, mut f: impl FnMut(&IrqfdInfo)) -> Result {
        const CHUNK: usize = 32;
        let mut chunk = KVec::with_capacity(CHUNK, GFP_KERNEL)?;
        let mut from = Some(0usize);
        while let Some(key) = from {
            chunk.clear();
            from = self.irqfds.lock().infos(key, &mut chunk);
            for info in chunk.iter() {
                f(info);
            }
        }
        Ok(())
    }

    /// Binds the eventfd `fd` to `gsi`, level-triggered with resamplefd `resample` if given,
    /// and returns the new irqfd.
    ///
    /// `EINVAL` for a GSI out of range or a file that is not an eventfd, `EBADF` for a bad
    /// descriptor, `ENOSPC` past `max_irqfds`, `ENOMEM`, `EBUSY` if the eventfd is bound already.
    pub(crate) fn assign(
        self: &Arc<Self>,
        fd: u32,
        gsi: u32,
        resample: Option<u32>,
    ) -> Result<Arc<Irqfd<S>>> {
        if gsi >= self.sink.nr_gsis() {
            return Err(EINVAL);
        }
        // Held until the irqfd is in the tree: the eventfd cannot be released (EPOLLHUP) before.
        let file = LocalFile::fget(fd)?;
        let eventfd = EventFd::from_file(&file)?;
        let resample = resample.map(EventFd::fdget).transpose()?;
        let slot = AssignSlot::reserve(self)?;
        let node = RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?;
        let irqfd = Arc::pin_init(
            Irqfd::new(self.clone(), gsi, fd, eventfd, resample),
            GFP_KERNEL_ACCOUNT,
        )?;

        // A resample irqfd joins its GSI's resampler before it can inject: every level injection
        // it makes finds it there when acked.
        if irqfd.resample.is_some() {
            self.join_resampler(&irqfd)?;
        }

        // Hook onto the eventfd first, without our lock: its wakeup takes our lock (on EPOLLHUP)
        // under the wait-queue lock, so holding ours here would invert that order.
        let readable = match EventFdWaiter::register(&irqfd, &file) {
            Ok(readable) => readable,
            Err(e) => {
                self.leave_resampler(&irqfd);
                return Err(e);
            }
        };

        // An event pending before we were hooked on: inject it once, before the irqfd becomes
        // visible to deassign, which must not see an injection after it returns. The counter
        // itself stays for the next signal's wakeup to consume, as in KVM.
        if readable {
            irqfd.inject_now();
        }

        let assigned = irqfd.clone();
        let mut irqfds = self.irqfds.lock();
        // The irqfd goes into the tree of its own context (`irqfd.ctx` is `self`). No other
        // active irqfd has its eventfd: the eventfd takes one irqfd at a time (registration fails
        // with `EBUSY` otherwise), and an irqfd leaves the tree before its shutdown unregisters
        // it.
        if let Some(old) = slot.commit(&mut irqfds, node, irqfd) {
            // Unreachable (see above); should it happen, shut the displaced irqfd down rather
            // than lose it.
            kernel::warn_on!(true);
            shutdown::queue_shutdown(self, old);
        }
        drop(irqfds);
        drop(file);
        Ok(assigned)
    }

    /// Binds each `(fd, gsi)` of `entries`, all or nothing: on the first failure, every irqfd
    /// bound so far is shut down again (waited for), and the index of the failed entry comes
    /// back with its error. A failure that is no entry's (out of memory for the rollback list)
    /// comes back without an index.
    pub(crate) fn assign_batch(
        self: &Arc<Self>,
        entries: &[(u32, u32)],
    ) -> Result<(), (Option<usize>, Error)> {
        let mut done =
            KVec::with_capacity(entries.len(), GFP_KERNEL).map_err(|e| (None, e.into()))?;
        for (i, &(fd, gsi)) in entries.iter().enumerate() {
            match self.assign(fd, gsi, None) {
                Ok(irqfd) => {
                    // Cannot fail: the capacity is `entries.len()`.
                    let _ = done.push_within_capacity(irqfd);
                }
                Err(e) => {
                    self.unassign(&done);
                    return Err((Some(i), e));
                }
            }
        }
        Ok(())
    }

    /// Shuts down those of `irqfds` that are still active (the rollback of a batch) and waits.
    ///
    /// Identity, not the eventfd, decides: an irqfd that another thread deassigned meanwhile,
    /// and whatever it bound to that eventfd since, are left alone.
    fn unassign(&self, irqfds: &[Arc<Irqfd<S>>]) {
        // `LOCK_BATCH` at a time, so that rolling back thousands never keeps interrupts off for
        // long.
        for chunk in irqfds.chunks(LOCK_BATCH) {
            let mut guard = self.irqfds.lock();
            for irqfd in chunk {
                if let Some(item) = guard.take(irqfd) {
                    shutdown::queue_shutdown(self, item);
                }
            }
        }
        self.wait_for_shutdowns();
    }

    /// Unbinds the irqfd of this context that binds the eventfd `fd` to `gsi`, if any, and waits
    /// until it is shut down. Returns 0 when nothing matched.
    pub(crate) fn deassign(&self, fd: u32, gsi: u32) -> Result {
        self.deassign_batch(&[(fd, gsi)]).map_err(|(_, e)| e)
    }

    /// Unbinds the irqfds binding each `(fd, gsi)` of `entries`, if any, and waits once until
    /// they are all shut down. Every descriptor is checked first: on a bad one nothing is
    /// unbound, and its index comes back with the error. A failure that is no entry's (out of
    /// memory) comes back without an index.
    pub(crate) fn deassign_batch(
        &self,
        entries: &[(u32, u32)],
    ) -> Result<(), (Option<usize>, Error)> {
        let mut eventfds =
            KVec::with_capacity(entries.len(), GFP_KERNEL).map_err(|e| (None, e.into()))?;
        for (i, &(fd, gsi)) in entries.iter().enumerate() {
            let eventfd = EventFd::fdget(fd).map_err(|e| (Some(i), e))?;
            // Cannot fail: the capacity is `entries.len()`.
            let _ = eventfds.push_within_capacity((eventfd, gsi));
        }
        // `LOCK_BATCH` at a time, so that a batch of thousands never keeps interrupts off for
        // long. The eventfds are held throughout: no key can name another eventfd meanwhile.
        for chunk in eventfds.chunks(LOCK_BATCH) {
            let mut irqfds = self.irqfds.lock();
            for (eventfd, gsi) in chunk {
                if let Some(irqfd) = irqfds.take_bound(eventfd, *gsi) {
                    shutdown::queue_shutdown(self, irqfd);
                }
            }
        }
        drop(eventfds);
        self.wait_for_shutdowns();
        Ok(())
    }

    /// Waits for every shutdown queued on this context so far: deassign is synchronous, no
    /// injection from a deassigned irqfd happens once it returns. Only this context's queue:
    /// other contexts' shutdowns are not ours to wait for.
    fn wait_for_shutdowns(&self) {
        self.cleanup.flush();
    }

    /// Adds the resample irqfd `irqfd` to its GSI's resampler, creating that.
    fn join_resampler(&self, irqfd: &Arc<Irqfd<S>>) -> Result {
        let mut resamplers = self.resamplers.lock();
        if let Some(list) = resamplers.get_mut(&irqfd.gsi) {
            // INVARIANT: A resample irqfd of this GSI, not yet in the list (it is new).
            list.push(irqfd.clone(), GFP_KERNEL_ACCOUNT)?;
            return Ok(());
        }
        let mut list = KVec::new();
        list.push(irqfd.clone(), GFP_KERNEL_ACCOUNT)?;
        // INVARIANT: A new, non-empty list for a GSI that had none.
        resamplers.try_create_and_insert(irqfd.gsi, list, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Takes `irqfd` out of its GSI's resampler, if it is there. The last one to leave
    /// deasserts the line: nobody is left to resample it.
    pub(crate) fn leave_resampler(&self, irqfd: &Irqfd<S>) {
        let mut resamplers = self.resamplers.lock();
        let Some(list) = resamplers.get_mut(&irqfd.gsi) else {
            return;
        };
        list.retain(|i| !core::ptr::eq(&**i, irqfd));
        if list.is_empty() {
            // INVARIANT: No empty list stays in the tree.
            drop(resamplers.remove(&irqfd.gsi));
            self.sink.deassert(irqfd.gsi);
        }
    }

    /// `RUST_IRQFD_ACK`: the end of interrupt of `gsi`. If a level injection held the line,
    /// deasserts it and signals the resamplefd of each resample irqfd of the GSI; returns how
    /// many it signalled.
    ///
    /// Process context, and never from an eventfd wakeup, so signalling cannot recurse into the
    /// eventfd being woken (race R19): a resamplefd that is the irqfd's own eventfd simply
    /// injects again. The resamplers' lock is held throughout, so no irqfd leaves, and no
    /// resamplefd reference is put, under the walk (race R20).
    pub(crate) fn ack(&self, gsi: u32) -> Result<u32> {
        let resamplers = self.resamplers.lock();
        if !self.sink.ack(gsi)? {
            return Ok(0);
        }
        let mut signalled = 0u32;
        let list = resamplers.get(&gsi).map_or(&[][..], |l| l.as_slice());
        for irqfd in list {
            if let Some(resample) = &irqfd.resample {
                resample.signal();
                signalled += 1;
            }
        }
        Ok(signalled)
    }

    /// `RUST_IRQFD_SET_ROUTE`: routes `gsi` to `route`, in place. Irqfds bound to the GSI inject
    /// with it from their next injection on.
    pub(crate) fn set_route(&self, gsi: u32, route: Route) -> Result {
        self.routes.set(gsi, route)
    }

    /// `RUST_IRQFD_SET_MASK`: masks or unmasks `gsi`; an unmask releases the pending latch with
    /// the route the GSI has then (no route update can run meanwhile).
    pub(crate) fn set_mask(&self, gsi: u32, masked: bool) -> Result {
        if gsi >= self.sink.nr_gsis() {
            return Err(EINVAL);
        }
        self.routes
            .with_stable(gsi, |route| self.sink.set_masked(gsi, masked, route))
    }

    /// Shuts down every irqfd of the context and waits for it: the owner is going away.
    ///
    /// Called once, from the release of the context's file. Once it returns no irqfd holds a
    /// reference to the context, so the file's is the last one.
    pub(crate) fn release(&self) {
        let mut tree = self.irqfds.lock().take_all();
        // Every irqfd taken out is ours to shut down: an EPOLLHUP from now on finds it inactive.
        // Queued outside the lock, so that 65536 of them do not keep interrupts off.
        while let Some(cursor) = tree.cursor_front_mut() {
            let (_, node) = cursor.remove_current();
            shutdown::queue_shutdown(self, node.to_key_value().1);
        }
        self.cleanup.flush();
    }
}

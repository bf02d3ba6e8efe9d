// SPDX-License-Identifier: GPL-2.0
//! The device as a [`Target`]: each thread's context and eventfds, the
//! syscalls an op makes, and the waits for its asynchronous effects.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{PoisonError, RwLock};

use super::check::{Released, Target};
use super::op::{AssignKind, Op, Outcome, Step, Wait, REC};
use super::SLOTS;
use crate::abi::{
    RustIrqfd, RustIrqfdAck, RustIrqfdDelivery, RustIrqfdMask, RustIrqfdRoute, FLAG_DEASSIGN,
    FLAG_RESAMPLE,
};
use crate::dev::Ctx;
use crate::harness::{wait_until, Env};
use crate::sys::{self, Errno};

/// The descriptors of one slot.
struct RealSlot {
    fds: Vec<OwnedFd>,
    /// The dedicated resamplefd of its binding, while the test holds it.
    rfd: Option<OwnedFd>,
}

/// Waits made for asynchronous effects, and how many were already done at
/// the first look.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Waits {
    pub(super) shutdowns: u64,
    pub(super) shutdowns_at_once: u64,
    pub(super) injections: u64,
    pub(super) injections_at_once: u64,
}

/// One thread's context on the device and its eventfds.
pub(super) struct Real<'a> {
    env: &'a Env,
    /// Forks hold it shared; closing a context takes it exclusively, so that
    /// no forked child holds a copy of the context then (its release, and
    /// the shutdown of its irqfds, would wait for the child).
    forks: &'a RwLock<()>,
    ctx: Option<Ctx>,
    slots: Vec<RealSlot>,
    pub(super) waits: Waits,
}

fn new_efd() -> Result<OwnedFd, String> {
    sys::eventfd(0, libc::EFD_NONBLOCK).map_err(|e| format!("eventfd: {e}"))
}

impl<'a> Real<'a> {
    pub(super) fn new(env: &'a Env, forks: &'a RwLock<()>) -> Result<Self, String> {
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
    pub(super) fn close_all(&mut self) -> Result<(), String> {
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

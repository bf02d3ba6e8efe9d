// SPDX-License-Identifier: GPL-2.0
//! Parity: the same assign / deassign / duplicate / resample / route / mask
//! / error-code sequence against every backend that can be opened here
//! (`/dev/rust_irqfd`, `/dev/c_irqfd`, `/dev/kvm`), the results collected
//! into one table, printed (and written to `target/tmp/parity-table.txt`,
//! and to `$PARITY_TABLE_OUT` if that is set), and compared.
//!
//! Each step states what the ABI (Documentation/rust_irqfd.rst and
//! include/uapi/linux/rust_irqfd.h, ABI v2) promises. Where KVM legitimately answers
//! otherwise (it ignores `pad`, does not range check the GSI of `KVM_IRQFD`,
//! accepts any MSI address, has no per-GSI mask and no userspace EOI) the
//! step says so and what KVM answers; such a row is a documented difference,
//! not a failure. Every other row must be identical across the backends and
//! equal to the promise. A few rows probe what the ABI leaves open (the order
//! of two checks): they carry no promise ("?"); the two modules must agree
//! on them, and where KVM answers otherwise the difference is listed, not
//! failed.
//!
//! Level (resample) rows observe the line through
//! [`IrqFdBackend::line_asserted`]: the modules' `asserted` GSI stat, KVM's
//! IOAPIC IRR (GSI `GL` is IOAPIC pin 7 in a fresh KVM VM).

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use common::{absent, open_or_skip, Kind};
use rust_irqfd_vmm::abi::module::{FLAG_DEASSIGN, FLAG_RESAMPLE};
use rust_irqfd_vmm::abi::RawIrqfd;
use rust_irqfd_vmm::{EventFd, IrqFd, IrqFdBackend, Result};

/// GSIs the sequence uses (valid for any `nr_gsis > GL`).
const G: u32 = 5;
const G2: u32 = 6;
/// The level line: routed to IOAPIC pin 7 on KVM, and never given an MSI
/// route by the sequence.
const GL: u32 = 7;
/// A descriptor number that is not open (above any descriptor limit).
const NOT_OPEN: u32 = 1 << 30;
/// How long an injection may take to land (a work item, on KVM or in the
/// modules' deferred mode).
const WAIT: Duration = Duration::from_secs(5);

/// What one backend runs the sequence with.
struct Env {
    /// The context / VM under test.
    a: Box<dyn IrqFdBackend>,
    /// A second context / VM of the same kind.
    b: Box<dyn IrqFdBackend>,
    /// Bound to `G` in `a` for most of the sequence.
    e1: EventFd,
    /// Never bound.
    e2: EventFd,
    /// A descriptor that is open but not an eventfd.
    devnull: File,
    /// Level irqfds on `GL` (the first two) and their resample eventfds.
    l1: EventFd,
    l2: EventFd,
    r1: EventFd,
    r2: EventFd,
}

impl Env {
    fn new(kind: Kind) -> std::result::Result<Self, String> {
        // Skipped only where the device node is not there.
        let open = || match kind.open() {
            Err(e) if !absent(&e) => panic!("{}: {e}", kind.name()),
            r => r.map_err(|e| e.to_string()),
        };
        let a = open()?;
        let b = open()?;
        Ok(Env {
            a,
            b,
            e1: EventFd::new().map_err(|e| e.to_string())?,
            e2: EventFd::new().map_err(|e| e.to_string())?,
            devnull: File::open("/dev/null").map_err(|e| e.to_string())?,
            l1: EventFd::new().map_err(|e| e.to_string())?,
            l2: EventFd::new().map_err(|e| e.to_string())?,
            r1: EventFd::new_nonblocking().map_err(|e| e.to_string())?,
            r2: EventFd::new_nonblocking().map_err(|e| e.to_string())?,
        })
    }

    /// Polls `a.line_asserted(GL)` until it is `want` or [`WAIT`] passes;
    /// returns the last answer.
    fn wait_line(&self, want: bool) -> Result<bool> {
        let start = Instant::now();
        loop {
            let now = self.a.line_asserted(GL)?;
            if now == want || start.elapsed() >= WAIT {
                return Ok(now);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `"asserted"` or `"deasserted"`, after waiting (boundedly) for `want`.
    fn line(&self, want: bool) -> Result<&'static str> {
        Ok(if self.wait_line(want)? {
            "asserted"
        } else {
            "deasserted"
        })
    }

    /// Whether resample eventfd `r` was signalled: its count, or 0.
    fn resampled(r: &EventFd) -> Result<u64> {
        Ok(r.try_read()?.unwrap_or(0))
    }

    /// Sets an MSI route; if the backend took it, restores `restore` (so
    /// that the row leaves the route as it found it).
    fn set_msi_then_restore(&self, addr: u64, data: u32, restore: (u64, u32)) -> Result<()> {
        self.a.set_msi(G, addr, data)?;
        self.a.set_msi(G, restore.0, restore.1)
    }

    /// A raw request through the backend.
    fn raw(&self, req: RawIrqfd) -> Result<()> {
        self.a.irqfd(&req)
    }

    /// Assigns with `req`; if the backend accepted it, deassigns again so
    /// that the row leaves nothing bound.
    fn assign_then_undo(&self, req: RawIrqfd) -> Result<()> {
        self.raw(req)?;
        self.raw(RawIrqfd::deassign(req.fd, req.gsi))
    }
}

fn fd(e: &impl AsRawFd) -> u32 {
    e.as_raw_fd() as u32
}

/// One row of the table.
struct Step {
    what: &'static str,
    /// The ABI's promise: `ok`, an errno name, what a probe observes, or
    /// [`OPEN`] where the ABI promises nothing.
    expect: &'static str,
    /// `Some((kvm's answer, why))` where KVM legitimately differs.
    kvm: Option<(&'static str, &'static str)>,
    run: Run,
}

/// How a step is run.
enum Run {
    /// The outcome is `ok` or the error's tag.
    Plain(fn(&Env) -> Result<()>),
    /// The step observes something and names it (or fails with a tag).
    Probe(fn(&Env) -> Result<String>),
}

/// The promise of a row the ABI leaves open.
const OPEN: &str = "?";

impl Run {
    fn outcome(&self, env: &Env) -> String {
        match self {
            Run::Plain(f) => outcome(f(env)),
            Run::Probe(f) => f(env).unwrap_or_else(|e| e.tag()),
        }
    }
}

/// The documented reason KVM answers `unsupported` to a mask row.
const KVM_NO_MASK: (&str, &str) = (
    "unsupported",
    "KVM has no per-GSI mask (an IrqFdRoute masks by unbinding, on every backend)",
);
/// The documented reason KVM answers `unsupported` to an ack row.
const KVM_NO_ACK: (&str, &str) = (
    "unsupported",
    "KVM's EOI comes from the guest (a vCPU), not from userspace",
);

const STEPS: &[Step] = &[
    Step {
        what: "assign e1 -> G",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G again (same context)",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G2 (same context, other GSI)",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G2)),
    },
    Step {
        what: "assign e1 -> G in a second context/VM",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.b.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "deassign e1 from G2 (bound to G: no match)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.deassign(s.e1.as_fd(), G2)),
    },
    Step {
        what: "deassign e1 from G in the second context (no match)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.b.deassign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G again (still bound after no-match deassigns)",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "deassign e1 from G",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.deassign(s.e1.as_fd(), G)),
    },
    Step {
        what: "deassign e1 from G again (nothing bound)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.deassign(s.e1.as_fd(), G)),
    },
    Step {
        what: "deassign e2 (never bound)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.deassign(s.e2.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G in the second context (free again)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.b.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G in the first context (now EBUSY there)",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "deassign e1 from G in the second context",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.b.deassign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign e1 -> G (rebind after deassign)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "assign fd -1",
        expect: "EBADF",
        kvm: None,
        run: Run::Plain(|s| s.raw(RawIrqfd::assign(u32::MAX, G))),
    },
    Step {
        what: "deassign fd -1",
        expect: "EBADF",
        kvm: None,
        run: Run::Plain(|s| s.raw(RawIrqfd::deassign(u32::MAX, G))),
    },
    Step {
        what: "assign /dev/null (not an eventfd)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| s.raw(RawIrqfd::assign(fd(&s.devnull), G))),
    },
    Step {
        what: "deassign /dev/null (not an eventfd)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| s.raw(RawIrqfd::deassign(fd(&s.devnull), G))),
    },
    Step {
        what: "assign e2 with unknown flag bit 2",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd {
                flags: 1 << 2,
                ..RawIrqfd::assign(fd(&s.e2), G)
            })
        }),
    },
    Step {
        what: "deassign e1 with unknown flag bit 31",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| {
            s.raw(RawIrqfd {
                flags: FLAG_DEASSIGN | 1 << 31,
                ..RawIrqfd::assign(fd(&s.e1), G)
            })
        }),
    },
    Step {
        what: "assign e2 with pad[0] = 1",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM ignores pad; the modules reject it")),
        run: Run::Plain(|s| {
            let mut pad = [0; 16];
            pad[0] = 1;
            s.assign_then_undo(RawIrqfd {
                pad,
                ..RawIrqfd::assign(fd(&s.e2), G)
            })
        }),
    },
    Step {
        what: "deassign e1 with pad[15] = 1",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM ignores pad (and this unbinds e1 on KVM)")),
        run: Run::Plain(|s| {
            let mut pad = [0; 16];
            pad[15] = 1;
            let r = s.raw(RawIrqfd {
                pad,
                ..RawIrqfd::deassign(fd(&s.e1), G)
            });
            if r.is_ok() {
                // Put e1 back so that the rest of the sequence is the same.
                s.a.assign(s.e1.as_fd(), G)?;
            }
            r
        }),
    },
    Step {
        what: "assign e2 -> nr_gsis (out of range)",
        expect: "EINVAL",
        kvm: Some((
            "ok",
            "KVM_IRQFD does not range check the GSI; KVM's range is its routing table (KVM_SET_GSI_ROUTING)",
        )),
        run: Run::Plain(|s| s.assign_then_undo(RawIrqfd::assign(fd(&s.e2), s.a.nr_gsis()))),
    },
    Step {
        what: "assign e2 -> u32::MAX",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM_IRQFD does not range check the GSI")),
        run: Run::Plain(|s| s.assign_then_undo(RawIrqfd::assign(fd(&s.e2), u32::MAX))),
    },
    Step {
        what: "assign e2 with RESAMPLE (fresh resamplefd)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| {
            let r = EventFd::new()?;
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e2), G, fd(&r)))
        }),
    },
    Step {
        what: "assign e2 RESAMPLE, resamplefd -1",
        expect: "EBADF",
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e2), G, u32::MAX))
        }),
    },
    Step {
        what: "assign e2 RESAMPLE, resamplefd not open",
        expect: "EBADF",
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e2), G, NOT_OPEN))
        }),
    },
    Step {
        what: "assign e2 RESAMPLE, resamplefd /dev/null (not an eventfd)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(
                fd(&s.e2),
                G,
                fd(&s.devnull),
            ))
        }),
    },
    Step {
        what: "assign e2 RESAMPLE, resamplefd = e2 itself",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e2), G, fd(&s.e2)))
        }),
    },
    Step {
        what: "assign e1 (bound) with RESAMPLE",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| {
            let r = EventFd::new()?;
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e1), G, fd(&r)))
        }),
    },
    Step {
        what: "assign e1 (bound) RESAMPLE, resamplefd -1: which check first",
        expect: OPEN,
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(fd(&s.e1), G, u32::MAX))
        }),
    },
    Step {
        what: "assign /dev/null RESAMPLE, resamplefd -1: which check first",
        expect: OPEN,
        kvm: None,
        run: Run::Plain(|s| {
            s.assign_then_undo(RawIrqfd::assign_resample(
                fd(&s.devnull),
                G,
                u32::MAX,
            ))
        }),
    },
    Step {
        what: "assign e2 RESAMPLE -> nr_gsis (out of range)",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM_IRQFD does not range check the GSI")),
        run: Run::Plain(|s| {
            let r = EventFd::new()?;
            s.assign_then_undo(RawIrqfd::assign_resample(
                fd(&s.e2),
                s.a.nr_gsis(),
                fd(&r),
            ))
        }),
    },
    Step {
        what: "deassign e1 with RESAMPLE set (ignored on deassign)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| {
            s.raw(RawIrqfd {
                flags: FLAG_DEASSIGN | FLAG_RESAMPLE,
                ..RawIrqfd::assign(fd(&s.e1), G)
            })?;
            // Unbound now: put it back for the rows below.
            s.a.assign(s.e1.as_fd(), G)
        }),
    },
    Step {
        what: "assign e1 -> G (EBUSY: rebound by the previous row)",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| s.a.assign(s.e1.as_fd(), G)),
    },
    Step {
        what: "signal a bound eventfd: the kernel consumes the counter",
        expect: "consumed",
        kvm: None,
        run: Run::Probe(|s| {
            let e = EventFd::new_nonblocking()?;
            s.a.assign(e.as_fd(), G2)?;
            e.signal()?;
            let bound = e.try_read()?;
            s.a.deassign(e.as_fd(), G2)?;
            e.signal()?;
            let unbound = e.try_read()?;
            Ok(match (bound, unbound) {
                (None, Some(1)) => "consumed",
                (Some(_), _) => "left",
                _ => "other",
            }
            .into())
        }),
    },
    Step {
        what: "assign an eventfd signalled before: its counter is left",
        expect: "left",
        kvm: None,
        run: Run::Probe(|s| {
            let e = EventFd::new_nonblocking()?;
            e.signal()?;
            s.a.assign(e.as_fd(), G2)?;
            let r = e.try_read()?;
            s.a.deassign(e.as_fd(), G2)?;
            Ok(match r {
                Some(1) => "left",
                Some(_) => "other",
                None => "consumed",
            }
            .into())
        }),
    },
    // Level lines: two resample irqfds sharing GL's resampler.
    Step {
        what: "level: assign l1 RESAMPLE(r1) -> GL",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.assign_resample(s.l1.as_fd(), GL, s.r1.as_fd())),
    },
    Step {
        what: "level: assign l2 RESAMPLE(r2) -> GL (shares the resampler)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.assign_resample(s.l2.as_fd(), GL, s.r2.as_fd())),
    },
    Step {
        what: "level: line before any signal",
        expect: "deasserted",
        kvm: None,
        run: Run::Probe(|s| s.line(false).map(Into::into)),
    },
    Step {
        what: "level: signal l1 -> line",
        expect: "asserted",
        kvm: None,
        run: Run::Probe(|s| {
            s.l1.signal()?;
            s.line(true).map(Into::into)
        }),
    },
    Step {
        what: "level: signal l2 too -> line, resamplefds signalled",
        expect: "asserted, 0+0",
        kvm: None,
        run: Run::Probe(|s| {
            s.l2.signal()?;
            let line = s.line(true)?;
            // Nothing acknowledged the line: no resample yet.
            std::thread::sleep(Duration::from_millis(10));
            let (r1, r2) = (Env::resampled(&s.r1)?, Env::resampled(&s.r2)?);
            Ok(format!("{line}, {r1}+{r2}"))
        }),
    },
    Step {
        what: "level: deassign l1 -> line (l2 still bound)",
        expect: "asserted",
        kvm: None,
        run: Run::Probe(|s| {
            s.a.deassign(s.l1.as_fd(), GL)?;
            s.line(true).map(Into::into)
        }),
    },
    Step {
        what: "level: deassign l2, the last -> line, resamplefds signalled",
        expect: "deasserted, 0+0",
        kvm: None,
        run: Run::Probe(|s| {
            s.a.deassign(s.l2.as_fd(), GL)?;
            let line = s.line(false)?;
            let (r1, r2) = (Env::resampled(&s.r1)?, Env::resampled(&s.r2)?);
            Ok(format!("{line}, {r1}+{r2}"))
        }),
    },
    Step {
        what: "level: assign l1 and l2 again, signal l1, ack(GL) -> count",
        expect: "2",
        kvm: Some(KVM_NO_ACK),
        run: Run::Probe(|s| {
            s.a.assign_resample(s.l1.as_fd(), GL, s.r1.as_fd())?;
            s.a.assign_resample(s.l2.as_fd(), GL, s.r2.as_fd())?;
            s.l1.signal()?;
            s.wait_line(true)?;
            Ok(s.a.ack(GL)?.to_string())
        }),
    },
    Step {
        what: "level: after the ack -> line, resamplefds signalled",
        expect: "deasserted, 1+1",
        kvm: Some(("asserted, 0+0", "no ack on KVM (the guest EOIs)")),
        run: Run::Probe(|s| {
            // The ack deasserts and signals before it returns: no waiting.
            let line = if s.a.line_asserted(GL)? {
                "asserted"
            } else {
                "deasserted"
            };
            let (r1, r2) = (Env::resampled(&s.r1)?, Env::resampled(&s.r2)?);
            Ok(format!("{line}, {r1}+{r2}"))
        }),
    },
    Step {
        what: "level: ack(GL) with the line deasserted -> count",
        expect: "0",
        kvm: Some(KVM_NO_ACK),
        run: Run::Probe(|s| Ok(s.a.ack(GL)?.to_string())),
    },
    Step {
        what: "level: deassign l1 and l2",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| {
            s.a.deassign(s.l1.as_fd(), GL)?;
            s.a.deassign(s.l2.as_fd(), GL)
        }),
    },
    Step {
        what: "ack(nr_gsis) (out of range)",
        expect: "EINVAL",
        kvm: Some(KVM_NO_ACK),
        run: Run::Plain(|s| s.a.ack(s.a.nr_gsis()).map(drop)),
    },
    // MSI routes, in place (e1 stays bound to G throughout).
    Step {
        what: "set_msi(G, 0xfee00000, 0x41)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.set_msi(G, 0xfee0_0000, 0x41)),
    },
    Step {
        what: "set_msi(G, 0x1_fee01000, 0x42) (update in place)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.set_msi(G, 0x1_fee0_1000, 0x42)),
    },
    Step {
        what: "set_msi(G, address 0)",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM does not check MSI addresses")),
        run: Run::Plain(|s| s.set_msi_then_restore(0, 0x43, (0x1_fee0_1000, 0x42))),
    },
    Step {
        what: "set_msi(G, address 0xfee00002, not 4-byte aligned)",
        expect: "EINVAL",
        kvm: Some(("ok", "KVM does not check MSI addresses")),
        run: Run::Plain(|s| {
            s.set_msi_then_restore(0xfee0_0002, 0x43, (0x1_fee0_1000, 0x42))
        }),
    },
    Step {
        what: "set_msi(nr_gsis) (out of range)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| s.a.set_msi(s.a.nr_gsis(), 0xfee0_0000, 0x41)),
    },
    Step {
        what: "set_msi(u32::MAX)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| s.a.set_msi(u32::MAX, 0xfee0_0000, 0x41)),
    },
    Step {
        what: "signal e1 (bound, routed): consumed",
        expect: "consumed",
        kvm: None,
        run: Run::Probe(|s| {
            s.e1.signal()?;
            let start = Instant::now();
            while s.e1.is_signalled()? && start.elapsed() < WAIT {
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(if s.e1.is_signalled()? { "left" } else { "consumed" }.into())
        }),
    },
    Step {
        what: "clear_msi(G)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.clear_msi(G)),
    },
    Step {
        what: "clear_msi(G) again (no route)",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| s.a.clear_msi(G)),
    },
    Step {
        what: "clear_msi(nr_gsis) (out of range)",
        expect: "EINVAL",
        kvm: None,
        run: Run::Plain(|s| s.a.clear_msi(s.a.nr_gsis())),
    },
    // Masking.
    Step {
        what: "mask(G)",
        expect: "ok",
        kvm: Some(KVM_NO_MASK),
        run: Run::Plain(|s| s.a.mask(G)),
    },
    Step {
        what: "mask(G) again (masked already)",
        expect: "ok",
        kvm: Some(KVM_NO_MASK),
        run: Run::Plain(|s| s.a.mask(G)),
    },
    Step {
        what: "unmask(G)",
        expect: "ok",
        kvm: Some(KVM_NO_MASK),
        run: Run::Plain(|s| s.a.unmask(G)),
    },
    Step {
        what: "unmask(G) again (not masked)",
        expect: "ok",
        kvm: Some(KVM_NO_MASK),
        run: Run::Plain(|s| s.a.unmask(G)),
    },
    Step {
        what: "mask(nr_gsis) (out of range)",
        expect: "EINVAL",
        kvm: Some(KVM_NO_MASK),
        run: Run::Plain(|s| s.a.mask(s.a.nr_gsis())),
    },
    Step {
        what: "IrqFdRoute: pending bit: mask, signal x3, read, reroute, unmask, read",
        expect: "no,yes,yes,no",
        kvm: None,
        run: Run::Probe(|s| {
            let irqfd = IrqFd::new(&*s.a);
            let r = irqfd.new_route()?;
            r.set_msi(0xfee0_0000, 0x50)?;
            r.mask()?;
            let before = r.pending()?;
            for _ in 0..3 {
                r.event().signal()?;
            }
            let masked = [r.pending()?, r.pending()?];
            r.set_msi(0xfee0_1000, 0x51)?;
            r.unmask()?;
            Ok(yes_no(&[before, masked[0], masked[1], r.pending()?]))
        }),
    },
    Step {
        what: "IrqFdRoute: mask, signal, take_pending x2, pending, unmask",
        expect: "yes,no,no",
        kvm: None,
        run: Run::Probe(|s| {
            let irqfd = IrqFd::new(&*s.a);
            let r = irqfd.new_route()?;
            r.mask()?;
            r.event().signal()?;
            let taken = [r.take_pending()?, r.take_pending()?, r.pending()?];
            r.unmask()?;
            Ok(yes_no(&taken))
        }),
    },
    Step {
        what: "IrqFdRoute: take_pending while unmasked; signal stays bound",
        expect: "no",
        kvm: None,
        run: Run::Probe(|s| {
            let irqfd = IrqFd::new(&*s.a);
            let r = irqfd.new_route()?;
            r.event().signal()?;
            Ok(yes_no(&[r.take_pending()?]))
        }),
    },
    Step {
        what: "IrqFdRoute: after unmask, its eventfd is bound again",
        expect: "EBUSY",
        kvm: None,
        run: Run::Plain(|s| {
            let irqfd = IrqFd::new(&*s.a);
            let r = irqfd.new_route()?;
            r.mask()?;
            r.unmask()?;
            s.b.assign(r.event().as_fd(), G2)
        }),
    },
    Step {
        what: "signal e1 (bound) then deassign e1 from G",
        expect: "ok",
        kvm: None,
        run: Run::Plain(|s| {
            s.e1.signal()?;
            s.a.deassign(s.e1.as_fd(), G)
        }),
    },
];

/// `yes,no,...`: a row of bits, short enough for a table cell.
fn yes_no(bits: &[bool]) -> String {
    let words: Vec<_> = bits.iter().map(|&b| if b { "yes" } else { "no" }).collect();
    words.join(",")
}

fn outcome(r: Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.tag(),
    }
}

#[test]
fn parity_table() {
    let mut columns: Vec<(Kind, Vec<String>)> = Vec::new();
    let mut notes = Vec::new();
    for &kind in Kind::ALL {
        let env = match Env::new(kind) {
            Ok(env) => env,
            Err(why) => {
                notes.push(format!("{}: skipped ({why})", kind.name()));
                continue;
            }
        };
        if env.a.nr_gsis() <= GL {
            notes.push(format!(
                "{}: skipped (only {} GSIs)",
                kind.name(),
                env.a.nr_gsis()
            ));
            continue;
        }
        let results = STEPS.iter().map(|st| st.run.outcome(&env)).collect();
        columns.push((kind, results));
    }

    // The table: one row per step, one column per backend ("-": skipped).
    const CELL: usize = 15;
    let mut table = String::new();
    let width = STEPS.iter().map(|s| s.what.len()).max().unwrap_or(0);
    let _ = write!(
        table,
        "{:>2}  {:<width$}  {:<CELL$}",
        "#", "step", "promise"
    );
    for k in Kind::ALL {
        let _ = write!(table, "  {:<CELL$}", k.name());
    }
    let _ = writeln!(table, "  verdict");
    let mut failures = Vec::new();
    let mut documented = 0;
    let mut open_diffs = Vec::new();
    for (i, st) in STEPS.iter().enumerate() {
        let _ = write!(
            table,
            "{:>2}  {:<width$}  {:<CELL$}",
            i + 1,
            st.what,
            st.expect
        );
        for &k in Kind::ALL {
            let cell = columns
                .iter()
                .find(|(c, _)| *c == k)
                .map_or("-", |(_, r)| r[i].as_str());
            let _ = write!(table, "  {cell:<CELL$}");
        }
        let verdict = if st.expect == OPEN {
            open_verdict(i, st, &columns, &mut failures, &mut open_diffs)
        } else {
            promise_verdict(i, st, &columns, &mut failures, &mut documented)
        };
        let _ = writeln!(table, "  {verdict}");
    }
    for n in &notes {
        let _ = writeln!(table, "note: {n}");
    }
    for d in &open_diffs {
        let _ = writeln!(table, "difference (no promise): {d}");
    }
    let ran: Vec<_> = columns.iter().map(|(k, _)| k.name()).collect();
    let _ = writeln!(
        table,
        "{} steps on {} backend(s) [{}]: {} mismatch(es), {} documented KVM difference(s), \
         {} difference(s) on rows without a promise",
        STEPS.len(),
        ran.len(),
        ran.join(", "),
        failures.len(),
        documented,
        open_diffs.len()
    );
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity-table.txt");
    let _ = std::fs::write(&out, &table);
    // Where the binary runs away from its build tree (the VM), the table can
    // be written where the runner collects files.
    if let Some(path) = std::env::var_os("PARITY_TABLE_OUT") {
        let _ = std::fs::write(path, &table);
    }

    // The two ways to reach KVM are one backend: every row, promise or not,
    // the same.
    #[cfg(feature = "kvm-ioctls")]
    {
        let col = |k: Kind| columns.iter().find(|(c, _)| *c == k).map(|(_, r)| r);
        if col(Kind::Kvm).is_some() && col(Kind::KvmIoctls).is_none() {
            failures.push("kvm ran but kvm-ioctls did not: the two cannot be compared".into());
        }
        if let (Some(own), Some(rust_vmm)) = (col(Kind::Kvm), col(Kind::KvmIoctls)) {
            for (i, (a, b)) in own.iter().zip(rust_vmm).enumerate() {
                if a != b {
                    failures.push(format!(
                        "step {} {:?}: kvm gave {a}, kvm-ioctls gave {b}",
                        i + 1,
                        STEPS.get(i).map_or("", |st| st.what)
                    ));
                }
            }
        }
    }

    // Identical where the ABI promises the same result: every backend equals
    // the promise, so they equal each other.
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if columns.is_empty() {
        println!("parity: no backend available here, nothing compared");
    }
}

/// A row with a promise: every backend must give it, or (KVM) the
/// documented answer.
fn promise_verdict(
    i: usize,
    st: &Step,
    columns: &[(Kind, Vec<String>)],
    failures: &mut Vec<String>,
    documented: &mut usize,
) -> String {
    let mut verdict = "same".to_string();
    let mut mismatch = false;
    for (k, r) in columns {
        let got = r[i].as_str();
        if got == st.expect {
            continue;
        }
        match (k, st.kvm) {
            (k, Some((kvm, why))) if k.is_kvm() && got == kvm => {
                if !mismatch {
                    verdict = format!("kvm differs (documented): {why}");
                }
                *documented += 1;
            }
            _ => {
                mismatch = true;
                verdict = "MISMATCH".into();
                failures.push(format!(
                    "step {} {:?}: {} gave {got}, the ABI promises {}",
                    i + 1,
                    st.what,
                    k.name(),
                    st.expect
                ));
            }
        }
    }
    verdict
}

/// A row without a promise: the modules must agree with each other; KVM
/// answering otherwise is listed as a difference, not failed.
fn open_verdict(
    i: usize,
    st: &Step,
    columns: &[(Kind, Vec<String>)],
    failures: &mut Vec<String>,
    open_diffs: &mut Vec<String>,
) -> String {
    let get = |k: Kind| {
        columns
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, r)| r[i].as_str())
    };
    let modules: Vec<(Kind, &str)> = [Kind::Rust, Kind::C]
        .into_iter()
        .filter_map(|k| get(k).map(|g| (k, g)))
        .collect();
    if let [(_, a), (_, b)] = modules.as_slice() {
        if a != b {
            failures.push(format!(
                "step {} {:?}: rust_irqfd gave {a}, c_irqfd gave {b}",
                i + 1,
                st.what
            ));
            return "MISMATCH (the modules differ)".into();
        }
    }
    match (modules.first(), get(Kind::Kvm)) {
        (Some((_, m)), Some(kvm)) if *m != kvm => {
            open_diffs.push(format!(
                "step {} {:?}: modules {m}, kvm {kvm}",
                i + 1,
                st.what
            ));
            format!("differs (no promise): modules {m}, kvm {kvm}")
        }
        (Some(_), Some(_)) => "same".into(),
        _ => "observed (no promise)".into(),
    }
}

/// An eventfd bound in one backend is `EBUSY` in every other one (the
/// modules and KVM all take the eventfd's single exclusive wait entry), and
/// free for it again once unbound.
#[test]
fn ebusy_across_backends() {
    let open: Vec<(Kind, Box<dyn IrqFdBackend>)> = Kind::ALL
        .iter()
        .copied()
        .filter_map(|k| open_or_skip(k, "ebusy_across_backends").map(|b| (k, b)))
        .collect();
    if open.len() < 2 {
        println!(
            "ebusy_across_backends: skipped ({} backend(s) available, 2 needed)",
            open.len()
        );
        return;
    }
    for (ka, a) in &open {
        for (kb, b) in &open {
            if ka == kb {
                continue;
            }
            let e = EventFd::new().unwrap();
            a.assign(e.as_fd(), G).unwrap();
            let r = outcome(b.assign(e.as_fd(), G));
            println!("bound in {}, assign in {}: {r}", ka.name(), kb.name());
            assert_eq!(r, "EBUSY", "{} then {}", ka.name(), kb.name());
            a.deassign(e.as_fd(), G).unwrap();
            b.assign(e.as_fd(), G).unwrap();
            b.deassign(e.as_fd(), G).unwrap();
        }
    }
}

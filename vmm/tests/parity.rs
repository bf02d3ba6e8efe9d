// SPDX-License-Identifier: GPL-2.0
//! Parity: the same assign / deassign / duplicate / error-code sequence
//! against every backend that can be opened here (`/dev/rust_irqfd`,
//! `/dev/c_irqfd`, `/dev/kvm`), the results collected into one table,
//! printed (and written to `target/tmp/parity-table.txt`), and compared.
//!
//! Each step states what the ABI (Documentation/rust_irqfd.rst) promises.
//! Where KVM legitimately answers otherwise (it ignores `pad`, does not range
//! check the GSI of `KVM_IRQFD`, implements resampling and MSI routing that
//! the modules do not have yet) the step says so and what KVM answers; such
//! a row is a documented difference, not a failure. Every other row must be
//! identical across the backends and equal to the promise.

mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use common::{open_or_skip, Kind};
use rust_irqfd_vmm::abi::module::{FLAG_DEASSIGN, FLAG_RESAMPLE};
use rust_irqfd_vmm::abi::RawIrqfd;
use rust_irqfd_vmm::{EventFd, IrqFdBackend, Result};

/// GSIs the sequence uses (valid for any `nr_gsis >= 7`).
const G: u32 = 5;
const G2: u32 = 6;

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
}

impl Env {
    fn new(kind: Kind) -> std::result::Result<Self, String> {
        let a = kind.open().map_err(|e| e.to_string())?;
        let b = kind.open().map_err(|e| format!("second context: {e}"))?;
        Ok(Env {
            a,
            b,
            e1: EventFd::new().map_err(|e| e.to_string())?,
            e2: EventFd::new().map_err(|e| e.to_string())?,
            devnull: File::open("/dev/null").map_err(|e| e.to_string())?,
        })
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
    /// The ABI's promise: `ok`, an errno name, or `unsupported`.
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
    Probe(fn(&Env) -> Result<&'static str>),
}

impl Run {
    fn outcome(&self, env: &Env) -> String {
        match self {
            Run::Plain(f) => outcome(f(env)),
            Run::Probe(f) => match f(env) {
                Ok(s) => s.into(),
                Err(e) => e.tag(),
            },
        }
    }
}

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
        expect: "EINVAL",
        kvm: Some((
            "ok",
            "KVM implements level-triggered resampling; the modules do not yet",
        )),
        run: Run::Plain(|s| {
            let r = EventFd::new()?;
            s.assign_then_undo(RawIrqfd {
                flags: FLAG_RESAMPLE,
                resamplefd: fd(&r),
                ..RawIrqfd::assign(fd(&s.e2), G)
            })
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
            })
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
            })
        }),
    },
    Step {
        what: "set_msi(G, 0xfee00000, 0x41)",
        expect: "unsupported",
        kvm: Some((
            "ok",
            "KVM routes MSIs (KVM_SET_GSI_ROUTING); the modules' routing ABI has not landed",
        )),
        run: Run::Plain(|s| s.a.set_msi(G, 0xfee0_0000, 0x41)),
    },
    Step {
        what: "clear_msi(G)",
        expect: "unsupported",
        kvm: Some(("ok", "as set_msi")),
        run: Run::Plain(|s| s.a.clear_msi(G)),
    },
    Step {
        what: "mask(G)",
        expect: "unsupported",
        kvm: None,
        run: Run::Plain(|s| s.a.mask(G)),
    },
    Step {
        what: "unmask(G)",
        expect: "unsupported",
        kvm: None,
        run: Run::Plain(|s| s.a.unmask(G)),
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
    for kind in Kind::ALL {
        let env = match Env::new(kind) {
            Ok(env) => env,
            Err(why) => {
                notes.push(format!("{}: skipped ({why})", kind.name()));
                continue;
            }
        };
        if env.a.nr_gsis() <= G2 {
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
    let mut table = String::new();
    let width = STEPS.iter().map(|s| s.what.len()).max().unwrap_or(0);
    let _ = write!(table, "{:>2}  {:<width$}  {:<11}", "#", "step", "promise");
    for k in Kind::ALL {
        let _ = write!(table, "  {:<11}", k.name());
    }
    let _ = writeln!(table, "  verdict");
    let mut failures = Vec::new();
    let mut documented = 0;
    for (i, st) in STEPS.iter().enumerate() {
        let _ = write!(
            table,
            "{:>2}  {:<width$}  {:<11}",
            i + 1,
            st.what,
            st.expect
        );
        for k in Kind::ALL {
            let cell = columns
                .iter()
                .find(|(c, _)| *c == k)
                .map_or("-", |(_, r)| r[i].as_str());
            let _ = write!(table, "  {cell:<11}");
        }
        let mut verdict = "same".to_string();
        for (k, r) in &columns {
            let got = r[i].as_str();
            if got == st.expect {
                continue;
            }
            match (k, st.kvm) {
                (Kind::Kvm, Some((kvm, why))) if got == kvm => {
                    verdict = format!("kvm differs (documented): {why}");
                    documented += 1;
                }
                _ => {
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
        let _ = writeln!(table, "  {verdict}");
    }
    for n in &notes {
        let _ = writeln!(table, "note: {n}");
    }
    let ran: Vec<_> = columns.iter().map(|(k, _)| k.name()).collect();
    let _ = writeln!(
        table,
        "{} steps on {} backend(s) [{}]: {} mismatch(es), {} documented KVM difference(s)",
        STEPS.len(),
        ran.len(),
        ran.join(", "),
        failures.len(),
        documented
    );
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity-table.txt");
    let _ = std::fs::write(&out, &table);

    // Identical where the ABI promises the same result: every backend equals
    // the promise, so they equal each other.
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if columns.is_empty() {
        println!("parity: no backend available here, nothing compared");
    }
}

/// An eventfd bound in one backend is `EBUSY` in every other one (the
/// modules and KVM all take the eventfd's single exclusive wait entry), and
/// free for it again once unbound.
#[test]
fn ebusy_across_backends() {
    let open: Vec<(Kind, Box<dyn IrqFdBackend>)> = Kind::ALL
        .into_iter()
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

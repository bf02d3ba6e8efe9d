// SPDX-License-Identifier: GPL-2.0
//! openvmm_adapter: OpenVMM's irqfd traits over this crate.
//!
//! usage: openvmm_adapter [rust_irqfd | c_irqfd | kvm | kvm-ioctls]...   (default: all)
//!
//! OpenVMM's `virt` crate (PR 3194, "virt: add irqfd trait and implement for
//! mshv and KVM", with its masking revision) asks a hypervisor backend for two
//! traits: `IrqFd`, which hands out routes, and `IrqFdRoute`, a GSI with its
//! event whose MSI can be set and cleared and which can be masked, with the
//! pending bit readable for the MSI-X PBA. They are written out below as the
//! PR has them, method names and all (only `pal_event::Event` is stood in for
//! by this crate's `EventFd`), and implemented for this crate's `IrqFd` and
//! `IrqFdRoute` in a few lines each: every backend of the crate (both
//! modules, KVM, KVM through kvm-ioctls) is then an OpenVMM irqfd backend.
//!
//! `main` plays what OpenVMM's MSI-X emulator does through the traits alone,
//! on each backend given, and checks what the kernel did; `tests/adapter.rs`
//! runs the same checks as tests, in `make check` (host and VM).

use std::process::ExitCode;
use std::sync::Arc;

use rust_irqfd_vmm::{self as vmm, IrqFdBackend, KvmBackend, ModuleBackend};

#[path = "support/rust_vmm_vm.rs"]
mod rust_vmm_vm;

/// `pal_event::Event`: the crate's eventfd.
pub type Event = vmm::EventFd;

// OpenVMM's traits (`virt::irqfd`), as the PR declares them.

/// Trait for partitions that support irqfd-based interrupt delivery.
pub trait IrqFd: Send + Sync {
    /// Allocates a GSI, creates an event and registers it; the route frees
    /// both when dropped.
    fn new_irqfd_route(&self) -> anyhow::Result<Box<dyn IrqFdRoute>>;
}

/// A handle to a registered irqfd route.
pub trait IrqFdRoute: Send + Sync {
    /// The event that triggers interrupt injection when signaled.
    fn event(&self) -> &Event;
    /// Sets the MSI routing for this irqfd's GSI.
    fn set_msi(&self, address: u64, data: u32) -> anyhow::Result<()>;
    /// Clears the MSI routing for this irqfd's GSI.
    fn clear_msi(&self) -> anyhow::Result<()>;
    /// Masks the route.
    fn mask(&self) -> anyhow::Result<()>;
    /// Unmasks the route and re-enables interrupt injection.
    fn unmask(&self) -> anyhow::Result<()>;
    /// Drains the pending interrupt state and returns whether an interrupt
    /// was pending. (The PR's default body is `self.event().try_wait()`,
    /// pal_event's; here the route reads its own counter.)
    fn consume_pending(&self) -> bool;
}

// The adapter: the whole of it.

impl<B: IrqFdBackend + 'static> IrqFd for vmm::IrqFd<B> {
    fn new_irqfd_route(&self) -> anyhow::Result<Box<dyn IrqFdRoute>> {
        Ok(Box::new(self.new_route()?))
    }
}

impl<B: IrqFdBackend + 'static> IrqFdRoute for vmm::IrqFdRoute<B> {
    fn event(&self) -> &Event {
        self.event()
    }
    fn set_msi(&self, address: u64, data: u32) -> anyhow::Result<()> {
        Ok(self.set_msi(address, data)?)
    }
    fn clear_msi(&self) -> anyhow::Result<()> {
        Ok(self.clear_msi()?)
    }
    fn mask(&self) -> anyhow::Result<()> {
        Ok(self.mask()?)
    }
    fn unmask(&self) -> anyhow::Result<()> {
        Ok(self.unmask()?)
    }
    fn consume_pending(&self) -> bool {
        // The trait has no room for an error: a failed read of the route's
        // own eventfd reads as "nothing pending", and is said on stderr.
        self.take_pending().unwrap_or_else(|e| {
            eprintln!("consume_pending (GSI {}): {e}", self.gsi());
            false
        })
    }
}

// What OpenVMM's MSI-X emulator does with them, and the checks.

/// MSI messages the guest programs: (address, data).
pub const V0: (u64, u32) = (0xfee0_0000, 0x41);
/// Vector 0, retargeted while masked.
pub const V0_MOVED: (u64, u32) = (0xfee0_2000, 0x51);
/// Vector 1.
pub const V1: (u64, u32) = (0xfee0_1000, 0x42);

/// What [`msix_story`] saw through the traits: `consume_pending` after two
/// signals while masked, then again.
pub type Seen = [bool; 2];

/// Two MSI-X vectors through the traits alone: vector 0 fires unmasked,
/// is masked, fires twice (the emulator drains the pending bit into its
/// PBA), fires again, is retargeted and unmasked (one interrupt, with the
/// new route); vector 1 is routed, then disabled. `guest` is called after
/// each of the two interrupts, where the guest would take it. Returns the
/// routes, still alive, for the caller to check the kernel's side.
pub fn msix_story(
    irqfd: &dyn IrqFd,
    guest: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<Box<dyn IrqFdRoute>>, Seen)> {
    let v0 = irqfd.new_irqfd_route()?;
    let v1 = irqfd.new_irqfd_route()?;
    v0.set_msi(V0.0, V0.1)?;
    v1.set_msi(V1.0, V1.1)?;
    v0.event().signal()?;
    guest()?;
    v0.mask()?;
    v0.event().signal()?;
    v0.event().signal()?;
    let pba = [v0.consume_pending(), v0.consume_pending()];
    v0.event().signal()?;
    v0.set_msi(V0_MOVED.0, V0_MOVED.1)?;
    // OpenVMM's emulator drains the pending bit before it unmasks and
    // delivers from its PBA itself; this one leaves it to the kernel.
    v0.unmask()?;
    guest()?;
    v1.clear_msi()?;
    Ok((vec![v0, v1], pba))
}

/// The backend a name stands for, as an OpenVMM partition would hand out
/// `Arc<dyn IrqFd>`, with the crate's view of it kept for the checks.
pub enum Opened {
    /// A module context.
    Module(vmm::IrqFd<ModuleBackend>),
    /// A KVM VM.
    Kvm(vmm::IrqFd<KvmBackend>),
}

impl Opened {
    /// Opens `name`.
    pub fn open(name: &str) -> vmm::Result<Self> {
        Ok(match name {
            "rust_irqfd" => Opened::Module(vmm::IrqFd::new(ModuleBackend::open_rust()?)),
            "c_irqfd" => Opened::Module(vmm::IrqFd::new(ModuleBackend::open_c()?)),
            "kvm-ioctls" => Opened::Kvm(vmm::IrqFd::new(rust_vmm_vm::kvm_ioctls_backend()?)),
            "kvm" => Opened::Kvm(vmm::IrqFd::new(KvmBackend::new()?)),
            other => {
                return Err(vmm::Error::Unsupported {
                    op: vmm::Op::Open,
                    backend: format!("{other:?} (not rust_irqfd, c_irqfd, kvm or kvm-ioctls)"),
                })
            }
        })
    }

    /// What OpenVMM holds.
    pub fn as_dyn(&self) -> Arc<dyn IrqFd> {
        match self {
            Opened::Module(i) => Arc::new(i.clone()),
            Opened::Kvm(i) => Arc::new(i.clone()),
        }
    }

    /// Runs [`msix_story`] and checks the kernel's side: the delivery
    /// records (modules: the guest reads them at each interrupt, before a
    /// later injection could merge into a record it left pending), or the
    /// routing table and the eventfds' binding (KVM). Then drops the routes
    /// and checks that nothing is left.
    pub fn check(&self) -> Result<(), String> {
        let mut taken = Vec::new();
        let mut guest = || -> anyhow::Result<()> {
            if let Opened::Module(irqfd) = self {
                let records = wait_records(irqfd.backend(), 1).map_err(anyhow::Error::msg)?;
                taken.push(
                    records
                        .iter()
                        .map(|d| (d.msi(), d.count))
                        .collect::<Vec<_>>(),
                );
            }
            Ok(())
        };
        let (routes, seen) =
            msix_story(&*self.as_dyn(), &mut guest).map_err(|e| format!("{e:#}"))?;
        if seen != [true, false] {
            return Err(format!(
                "consume_pending gave {seen:?}, expected [true, false]"
            ));
        }
        match self {
            Opened::Module(_) => {
                let expect = vec![vec![(Some(V0), 1)], vec![(Some(V0_MOVED), 1)]];
                if taken != expect {
                    return Err(format!("deliveries {taken:?}, expected {expect:?}"));
                }
            }
            Opened::Kvm(irqfd) => {
                let kvm = irqfd.backend();
                let msis: Vec<_> = kvm.routes().iter().filter_map(|e| e.as_msi()).collect();
                if msis != [V0_MOVED] {
                    return Err(format!("MSI routes {msis:x?}, expected [{V0_MOVED:x?}]"));
                }
                // Both eventfds are bound: KVM consumes a signal.
                for r in &routes {
                    r.event().signal().map_err(|e| e.to_string())?;
                    if !r.event().wait_unsignalled() {
                        return Err("a route's eventfd is not bound".into());
                    }
                }
            }
        }
        drop(routes);
        let (in_use, reserved) = match self {
            Opened::Module(i) => (i.allocator().in_use(), i.backend().reserved_gsis().len()),
            Opened::Kvm(i) => (i.allocator().in_use(), i.backend().reserved_gsis().len()),
        };
        if usize::try_from(in_use).ok() != Some(reserved) {
            return Err(format!(
                "{in_use} GSIs in use after the drop, {reserved} reserved"
            ));
        }
        Ok(())
    }
}

/// Waits (at most 5 s) until `n` records are there, then 50 ms more for
/// any that should not be, and returns them all.
fn wait_records(ctx: &ModuleBackend, n: usize) -> Result<Vec<vmm::abi::module::Delivery>, String> {
    let mut all = Vec::new();
    let start = std::time::Instant::now();
    while all.len() < n && start.elapsed() < std::time::Duration::from_secs(5) {
        all.extend(ctx.read_deliveries().map_err(|e| e.to_string())?);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    all.extend(ctx.read_deliveries().map_err(|e| e.to_string())?);
    Ok(all)
}

/// Waiting for KVM's irqfd to consume a signal.
trait WaitUnsignalled {
    fn wait_unsignalled(&self) -> bool;
}

impl WaitUnsignalled for Event {
    fn wait_unsignalled(&self) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(5) {
            if !self.is_signalled().unwrap_or(true) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        false
    }
}

#[allow(dead_code)] // tests/adapter.rs includes this file for the above.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if args.is_empty() {
        vec!["rust_irqfd", "c_irqfd", "kvm", "kvm-ioctls"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let mut failed = false;
    for name in names {
        match Opened::open(name).map_err(|e| e.to_string()) {
            Err(why) => println!("{name}: skipped ({why})"),
            Ok(b) => match b.check() {
                Ok(()) => println!("{name}: OpenVMM's IrqFd/IrqFdRoute over it: as expected"),
                Err(why) => {
                    println!("{name}: FAILED: {why}");
                    failed = true;
                }
            },
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

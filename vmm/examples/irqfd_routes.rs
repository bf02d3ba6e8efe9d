// SPDX-License-Identifier: GPL-2.0
//! irqfd_routes: what a VMM does with the crate, on any backend.
//!
//! usage: irqfd_routes [rust_irqfd | c_irqfd | kvm | DEVICE-PATH]   (default kvm)
//!
//! Makes three routes (GSI + eventfd), points each at an MSI, masks them,
//! signals them (held while masked), retargets them and unmasks them (one
//! interrupt each, with the new route), shows what the kernel did (the
//! modules' delivery records, or KVM's routing table), and drops them.

use std::process::ExitCode;
use std::time::Duration;

use rust_irqfd_vmm::{Error, IrqFd, IrqFdBackend, KvmBackend, ModuleBackend};

fn main() -> ExitCode {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "kvm".into());
    let result = match arg.as_str() {
        "kvm" => KvmBackend::new().and_then(run_kvm),
        "rust_irqfd" => ModuleBackend::open_rust().and_then(run_module),
        "c_irqfd" => ModuleBackend::open_c().and_then(run_module),
        path if path.ends_with("kvm") => KvmBackend::open(path).and_then(run_kvm),
        path => ModuleBackend::open(path).and_then(run_module),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("irqfd_routes: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_kvm(k: KvmBackend) -> Result<(), Error> {
    let irqfd = IrqFd::new(k);
    run(&irqfd, |k| {
        let msis: Vec<_> = k
            .routes()
            .iter()
            .filter_map(|e| {
                e.as_msi()
                    .map(|(a, d)| format!("GSI {} -> {a:#x}/{d:#x}", e.gsi))
            })
            .collect();
        println!(
            "KVM routing table: {} entries; MSI routes: {}",
            k.routes().len(),
            msis.join(", ")
        );
        Ok(())
    })?;
    println!(
        "after the drop: KVM routing table back to {} entries (the irqchip defaults)",
        irqfd.backend().routes().len()
    );
    Ok(())
}

fn run_module(m: ModuleBackend) -> Result<(), Error> {
    let irqfd = IrqFd::new(m);
    run(&irqfd, |m| {
        let mut got = 0;
        while got < 3 {
            let d = m.wait_deliveries(Duration::from_secs(2))?;
            if d.is_empty() {
                println!("no more deliveries within 2 s");
                break;
            }
            for d in d {
                println!(
                    "delivery seq {} on GSI {} (count {}, MSI {:?})",
                    d.seq,
                    d.gsi,
                    d.count,
                    d.msi().map(|(a, v)| format!("{a:#x}/{v:#x}"))
                );
                got += 1;
            }
        }
        println!("{} irqfds active", m.info()?.nr_irqfds);
        Ok(())
    })?;
    println!(
        "after the drop: {} irqfds active",
        irqfd.backend().info()?.nr_irqfds
    );
    Ok(())
}

/// Three routes on `irqfd`: set an MSI and mask each, signal them, retarget
/// and unmask them, `show` what the kernel did, then drop them.
fn run<B: IrqFdBackend>(
    irqfd: &IrqFd<B>,
    show: impl Fn(&B) -> Result<(), Error>,
) -> Result<(), Error> {
    let b = irqfd.backend();
    println!(
        "backend {}: {} GSIs, {} reserved ({:?}), allocator of {}",
        b.name(),
        b.nr_gsis(),
        b.reserved_gsis().len(),
        b.reserved_gsis(),
        irqfd.allocator().capacity()
    );
    let routes = (0..3)
        .map(|_| irqfd.new_route())
        .collect::<Result<Vec<_>, _>>()?;
    for (i, r) in routes.iter().enumerate() {
        let data = 0x40 + i as u32;
        r.set_msi(0xfee0_0000, data)?;
        r.mask()?;
        println!(
            "route GSI {}: MSI 0xfee00000/{data:#x} set, masked",
            r.gsi()
        );
    }
    for r in &routes {
        r.event().signal()?;
        println!(
            "signalled the eventfd of GSI {} (masked: held; pending bit {})",
            r.gsi(),
            r.pending()?
        );
    }
    for (i, r) in routes.iter().enumerate() {
        let data = 0x50 + i as u32;
        r.set_msi(0xfee0_1000, data)?;
        r.unmask()?;
        println!(
            "route GSI {}: retargeted to 0xfee01000/{data:#x} and unmasked: one interrupt",
            r.gsi()
        );
    }
    show(b)?;
    drop(routes);
    println!(
        "dropped the routes: {} GSIs in use (the reserved ones)",
        irqfd.allocator().in_use()
    );
    Ok(())
}

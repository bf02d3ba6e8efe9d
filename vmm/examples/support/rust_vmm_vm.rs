// SPDX-License-Identifier: GPL-2.0
//! A VM made the way a rust-vmm VMM makes one (kvm-ioctls: `Kvm::new`,
//! `create_vm`, `create_irq_chip`), handed to `KvmBackend::from_vm_fd`.
//! Shared by `examples/openvmm_adapter.rs` and the integration tests
//! (`tests/common`), which include this file.

use rust_irqfd_vmm::{Error, KvmBackend};

/// The backend over a fresh kvm-ioctls VM. `Error::Open` if `/dev/kvm`
/// cannot be opened (the tests skip KVM then); any later failure is the
/// kernel's error for that step.
#[cfg(feature = "kvm-ioctls")]
pub fn kvm_ioctls_backend() -> Result<KvmBackend, Error> {
    use rust_irqfd_vmm::{Errno, Op};
    use std::sync::Arc;
    let errno = |e: kvm_ioctls::Error| Errno::from_raw_os_error(e.errno());
    let kvm = kvm_ioctls::Kvm::new().map_err(|e| Error::Open {
        path: KvmBackend::PATH.into(),
        errno: errno(e),
    })?;
    let vm = kvm
        .create_vm()
        .map_err(|e| Error::kernel(Op::CreateVm, None, errno(e)))?;
    vm.create_irq_chip()
        .map_err(|e| Error::kernel(Op::CreateIrqchip, None, errno(e)))?;
    KvmBackend::from_vm_fd(Arc::new(vm))
}

/// Without the `kvm-ioctls` feature there is no such backend.
#[cfg(not(feature = "kvm-ioctls"))]
pub fn kvm_ioctls_backend() -> Result<KvmBackend, Error> {
    Err(Error::Unsupported {
        op: rust_irqfd_vmm::Op::Open,
        backend: "kvm-ioctls (build with --features kvm-ioctls)".into(),
    })
}

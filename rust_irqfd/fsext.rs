// SPDX-License-Identifier: GPL-2.0

//! What `kernel::fs::Kiocb` does not expose yet: whether a read must not block.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h)

use kernel::{
    fs::{
        file::flags::O_NONBLOCK,
        Kiocb, //
    },
    types::ForeignOwnable, //
};

/// Whether the file of `kiocb` was opened (or set) `O_NONBLOCK`.
pub(crate) fn nonblocking<T: ForeignOwnable>(kiocb: &Kiocb<'_, T>) -> bool {
    let raw = kiocb.as_raw();
    // SAFETY: A `Kiocb` wraps a valid `struct kiocb` whose `ki_filp` is the file being read, valid
    // for the duration of the call. `fcntl(F_SETFL)` may change `f_flags` concurrently, so it is
    // read with a volatile load, as `File::flags()` does.
    let flags = unsafe { core::ptr::addr_of!((*(*raw).ki_filp).f_flags).read_volatile() };
    flags & O_NONBLOCK != 0
}

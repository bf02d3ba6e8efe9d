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
    // for the duration of the call; `f_flags` is a plain word that `fcntl(F_SETFL)` may change
    // concurrently, which is fine for a flag tested once.
    let flags = unsafe { (*(*raw).ki_filp).f_flags };
    flags & O_NONBLOCK != 0
}

// SPDX-License-Identifier: GPL-2.0

//! Bounds checks that speculation cannot get past, for the table indices userspace chooses.
//!
//! C header: [`include/linux/nospec.h`](srctree/include/linux/nospec.h)

use crate::ffi;

/// `index` as a position in a table of `len` entries: `None` if it is out of range, else
/// `index` passed through `array_index_nospec()`.
///
/// A CPU may run ahead of a bounds check that fails, and a load from a table at an index that
/// userspace chose leaks through the cache what lies past the table (Spectre v1). The index
/// returned is `index` architecturally and 0 under such speculation, so that what the caller
/// loads with it stays inside the table.
pub(crate) fn index(index: u32, len: usize) -> Option<usize> {
    let i = usize::try_from(index).ok()?;
    if i >= len {
        return None;
    }
    // SAFETY: The function only computes with its two integers; it has no preconditions.
    Some(unsafe { ffi::rust_irqfd_array_index_nospec(i, len) })
}

// SPDX-License-Identifier: GPL-2.0
//! [`GsiAllocator`]: a fixed table of interrupt lines.

use std::ops::Range;
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// A fixed table of GSIs, each free or in use; [`alloc`](Self::alloc) hands
/// out the lowest free one.
///
/// Like OpenVMM's KVM GSI table it has a fixed size, 2048 by default
/// ([`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)); when every GSI is taken,
/// `alloc` fails with [`Error::GsisExhausted`] rather than growing.
/// [`IrqFd`](crate::IrqFd) uses one to number its routes and frees a route's
/// GSI when the route is dropped; only routes give GSIs back, so outside an
/// `IrqFd`, [`reserve`](Self::reserve) and [`alloc`](Self::alloc) take GSIs
/// for good (lines wired by hand, say).
///
/// It is `Send + Sync` (one mutex around the table) so that routes can be
/// made and dropped from any thread. A poisoned mutex is recovered, not
/// propagated: the table is a plain bitmap, valid after any panic elsewhere.
///
/// ```
/// use rust_irqfd_vmm::{Error, GsiAllocator};
///
/// let gsis = GsiAllocator::new(26);
/// gsis.reserve(0..24); // lines with a fixed meaning
/// assert_eq!(gsis.alloc()?, 24);
/// assert_eq!(gsis.alloc()?, 25);
/// assert_eq!(gsis.alloc(), Err(Error::GsisExhausted { capacity: 26 }));
/// assert_eq!(gsis.in_use(), 26);
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct GsiAllocator {
    capacity: u32,
    table: Mutex<Table>,
}

#[derive(Debug)]
struct Table {
    /// Bit `g % 64` of word `g / 64` is set while GSI `g` is in use.
    words: Vec<u64>,
    in_use: u32,
}

impl GsiAllocator {
    /// The table size OpenVMM uses for KVM: 2048 GSIs.
    pub const DEFAULT_CAPACITY: u32 = 2048;

    /// A table of GSIs `0 .. capacity`, all free.
    pub fn new(capacity: u32) -> Self {
        let words = capacity.div_ceil(64) as usize;
        Self {
            capacity,
            table: Mutex::new(Table {
                words: vec![0; words],
                in_use: 0,
            }),
        }
    }

    /// A table of [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY) GSIs.
    pub fn with_default_capacity() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many GSIs the table has (`0 .. capacity`).
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many GSIs are in use (allocated or reserved).
    pub fn in_use(&self) -> u32 {
        self.lock().in_use
    }

    /// Whether `gsi` is in use; `false` for GSIs outside the table.
    pub fn is_allocated(&self, gsi: u32) -> bool {
        let t = self.lock();
        t.words
            .get((gsi / 64) as usize)
            .is_some_and(|w| w & (1 << (gsi % 64)) != 0)
    }

    /// Takes the lowest free GSI, or fails with [`Error::GsisExhausted`].
    pub fn alloc(&self) -> Result<u32> {
        let mut t = self.lock();
        let capacity = self.capacity;
        let found = t
            .words
            .iter()
            .enumerate()
            .find(|(_, w)| **w != u64::MAX)
            .map(|(i, w)| (i, w.trailing_ones()));
        match found {
            Some((i, bit)) => {
                let gsi = i as u32 * 64 + bit;
                if gsi >= capacity {
                    return Err(Error::GsisExhausted { capacity });
                }
                if let Some(w) = t.words.get_mut(i) {
                    *w |= 1 << bit;
                }
                t.in_use += 1;
                Ok(gsi)
            }
            None => Err(Error::GsisExhausted { capacity }),
        }
    }

    /// Returns `gsi` to the table. Returns `false`, and changes nothing, if
    /// it was not in use (a double free, or outside the table). Only the
    /// route that holds a GSI gives it back (its `Drop`): freeing it from
    /// outside would let a second route take a GSI the first still owns.
    pub(crate) fn free(&self, gsi: u32) -> bool {
        if gsi >= self.capacity {
            return false;
        }
        let mut t = self.lock();
        let Some(w) = t.words.get_mut((gsi / 64) as usize) else {
            return false;
        };
        let bit = 1u64 << (gsi % 64);
        if *w & bit == 0 {
            return false;
        }
        *w &= !bit;
        t.in_use -= 1;
        true
    }

    /// Marks every free GSI of `range` (clipped to the table) as in use so
    /// that [`alloc`](Self::alloc) never hands it out, e.g. lines with fixed
    /// meanings such as KVM's default irqchip routes. Returns how many were
    /// newly reserved.
    pub fn reserve(&self, range: Range<u32>) -> u32 {
        let mut t = self.lock();
        let mut n = 0;
        for gsi in range.start..range.end.min(self.capacity) {
            if let Some(w) = t.words.get_mut((gsi / 64) as usize) {
                let bit = 1u64 << (gsi % 64);
                if *w & bit == 0 {
                    *w |= bit;
                    n += 1;
                }
            }
        }
        t.in_use += n;
        n
    }
}

impl Default for GsiAllocator {
    fn default() -> Self {
        Self::with_default_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_2048() {
        let a = GsiAllocator::default();
        assert_eq!(a.capacity(), 2048);
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn alloc_is_lowest_free() {
        let a = GsiAllocator::new(200);
        for want in 0..130 {
            assert_eq!(a.alloc().unwrap(), want);
        }
        assert!(a.free(3));
        assert!(a.free(70));
        assert!(a.free(64));
        assert_eq!(a.alloc().unwrap(), 3);
        assert_eq!(a.alloc().unwrap(), 64);
        assert_eq!(a.alloc().unwrap(), 70);
        assert_eq!(a.alloc().unwrap(), 130);
        assert_eq!(a.in_use(), 131);
    }

    #[test]
    fn free_reports_double_free_and_out_of_range() {
        let a = GsiAllocator::new(10);
        let g = a.alloc().unwrap();
        assert!(a.is_allocated(g));
        assert!(a.free(g));
        assert!(!a.is_allocated(g));
        assert!(!a.free(g), "double free");
        assert!(!a.free(10), "outside the table");
        assert!(!a.free(u32::MAX));
        assert!(!a.is_allocated(u32::MAX));
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn exhaustion_is_an_error() {
        // Not a multiple of 64: the tail of the last word is not a GSI.
        let a = GsiAllocator::new(70);
        for _ in 0..70 {
            a.alloc().unwrap();
        }
        assert_eq!(a.alloc(), Err(Error::GsisExhausted { capacity: 70 }));
        assert!(a.free(69));
        assert_eq!(a.alloc().unwrap(), 69);
        assert_eq!(a.alloc(), Err(Error::GsisExhausted { capacity: 70 }));

        let full = GsiAllocator::new(2048);
        for want in 0..2048 {
            assert_eq!(full.alloc().unwrap(), want);
        }
        assert_eq!(full.alloc(), Err(Error::GsisExhausted { capacity: 2048 }));

        let empty = GsiAllocator::new(0);
        assert_eq!(empty.alloc(), Err(Error::GsisExhausted { capacity: 0 }));
    }

    #[test]
    fn reserve_skips_fixed_lines() {
        let a = GsiAllocator::new(100);
        assert_eq!(a.reserve(0..24), 24);
        assert_eq!(a.reserve(20..30), 6);
        assert_eq!(a.reserve(90..1000), 10, "clipped to the table");
        assert_eq!(a.alloc().unwrap(), 30);
        assert_eq!(a.in_use(), 41);
    }

    #[test]
    fn concurrent_allocs_are_distinct() {
        let a = std::sync::Arc::new(GsiAllocator::new(2048));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || (0..512).map(|_| a.alloc().unwrap()).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u32> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..2048).collect::<Vec<_>>());
        assert!(a.alloc().is_err());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The module parameters, checked at load and read at open.

use kernel::prelude::*;

use crate::module_parameters;

/// Highest accepted `nr_gsis`.
const MAX_GSIS: u32 = 65536;

/// The module parameters, as read at open.
pub(crate) struct Params {
    /// Interrupt lines of each new context.
    pub(crate) nr_gsis: u32,
    /// Never inject from the wakeup.
    pub(crate) deferred_only: bool,
}

/// The current module parameters.
pub(crate) fn get() -> Params {
    Params {
        nr_gsis: module_parameters::nr_gsis.value(),
        deferred_only: module_parameters::deferred_only.value(),
    }
}

/// Rejects parameters out of range, with `EINVAL`.
pub(crate) fn check() -> Result {
    let nr = get().nr_gsis;
    if nr == 0 || nr > MAX_GSIS {
        pr_err!("nr_gsis={} is out of range 1..={}\n", nr, MAX_GSIS);
        return Err(EINVAL);
    }
    Ok(())
}

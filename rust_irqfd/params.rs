// SPDX-License-Identifier: GPL-2.0

//! The module parameters, checked at load and read at open.

use kernel::prelude::*;

use crate::{
    compat,
    module_parameters, //
};

/// Highest accepted `nr_gsis`.
const MAX_GSIS: u32 = 65536;
/// Highest accepted `max_irqfds`.
const MAX_IRQFDS: u32 = 1 << 20;

/// The module parameters, as read at open.
pub(crate) struct Params {
    /// Interrupt lines of each new context.
    pub(crate) nr_gsis: u32,
    /// Most irqfds each new context may hold.
    pub(crate) max_irqfds: u32,
    /// Never inject from the wakeup.
    pub(crate) deferred_only: bool,
}

/// The current module parameters.
pub(crate) fn get() -> Params {
    Params {
        nr_gsis: compat::param(&module_parameters::nr_gsis),
        max_irqfds: compat::param(&module_parameters::max_irqfds),
        deferred_only: compat::deferred_only(),
    }
}

/// Rejects parameters out of range, with `EINVAL`.
pub(crate) fn check() -> Result {
    let p = get();
    if p.nr_gsis == 0 || p.nr_gsis > MAX_GSIS {
        pr_err!("nr_gsis={} is out of range 1..={}\n", p.nr_gsis, MAX_GSIS);
        return Err(EINVAL);
    }
    if p.max_irqfds == 0 || p.max_irqfds > MAX_IRQFDS {
        pr_err!(
            "max_irqfds={} is out of range 1..={}\n",
            p.max_irqfds,
            MAX_IRQFDS
        );
        return Err(EINVAL);
    }
    Ok(())
}

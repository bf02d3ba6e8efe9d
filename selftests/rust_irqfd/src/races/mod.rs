// SPDX-License-Identifier: GPL-2.0
//! Race stress scenarios: one per entry of the race catalogue (races.md,
//! R1-R23, R21b of its addendum, and R21c, ours) that applies to the
//! module, each a few threads hammering one interleaving for a bounded
//! time and op count (`--stress-secs`, `--stress-ops`), with the
//! catalogue's oracles asserted where the ABI makes them exact:
//!
//! * I1: once a deassign has returned, that eventfd injects nothing more;
//! * I2: once a context is closed, its eventfds bind again at once, and a
//!   fresh context has no irqfd;
//! * I3: once a deassign has returned, re-assigning the eventfd succeeds;
//! * I5: a signal on a bound eventfd is followed by an injection;
//! * exactly one of several concurrent assigns of one eventfd wins;
//! * every irqfd is shut down exactly once (`shutdowns` of GET_INFO);
//! * delivery accounting: per GSI, the counts read add up to `injected`
//!   (for a level GSI: lie between `acks` and `injected`), and the records
//!   come out with seq 1, 2, 3, ... in order, each of its GSI's kind
//!   (plain, LEVEL, or MSI with one of the GSI's routes whole: R21);
//! * every ACK signals each resample irqfd of the GSI once, and only an ACK
//!   signals a resamplefd (R19, R20);
//! * `nr_irqfds` is back to what it must be at the end of every scenario.
//!
//! Racing calls may legitimately fail (a deassign racing the close of its
//! eventfd gets `EBADF`, a second assign gets `EBUSY`): such outcomes are
//! accepted only where the semantics allow them, and counted by errno for
//! the comparison table. Each scenario runs in the frame of
//! [`crate::stress::scenario`] (kmsg markers, leak checks, report).
//!
//! Descriptor numbers: several scenarios pass a raw fd number to a thread
//! that uses it while another closes it (`EBADF` then). While such a race
//! runs, no thread opens anything, so a closed number can only be taken by
//! a file the scenario itself creates for that purpose (fd-number reuse,
//! the ABA of races.md) and never by an unrelated file.
//!
//! Layout: [`oracle`] holds the delivery accounting and the invariant
//! checks (I1, I2, I5, `nr_irqfds`, one shutdown per irqfd) the scenarios
//! assert; [`calls`] the racing calls (raw descriptor numbers, the
//! outcomes a racing call may have) and what several scenarios share
//! around them. The scenarios live by family. One that races one
//! interleaving per round states its leader (prepare, race, check), its
//! racers (one step a race) and its free-running threads, and leaves the
//! rendezvous protocol to [`crate::stress::Run::rounds`]; one that runs
//! free states its threads as loops over the budget:
//!
//! * [`teardown`]: EPOLLHUP, close and context release against assign and
//!   deassign (R1, R2, R4, R7, R12, R13);
//! * [`refcount`]: eventfd references and recycled fd numbers (R5, R11);
//! * [`assign`]: concurrent, duplicate and refused assigns (R6, R10, R23);
//! * [`injection`]: injections against shutdown, pending events, the
//!   counter, moving targets (R3, R8, R9, R22);
//! * [`locking`]: the wakeup's context and the locks around it: atomic and
//!   hard-IRQ wakeups, lock order, flushes (R14, R15, R16, R17);
//! * [`module`]: module unload (R18);
//! * [`resample`]: resample irqfds (R19, R20);
//! * [`routes`]: route updates against the wakeup, a deassign in
//!   progress and each other (R21, R21b, R21c);
//! * [`fdinfo`]: fdinfo listings against mass deassign, `EPOLLHUP` and
//!   release (R13b).

mod assign;
mod calls;
mod fdinfo;
mod injection;
mod locking;
mod module;
mod oracle;
mod refcount;
mod resample;
mod routes;
mod teardown;

use crate::harness::{Needs, Stop, Tag, Test};
use crate::stress::scenario;

/// R15's hard-IRQ signaller, for the wakeup tests too.
pub(crate) use locking::{hardirq_signal, open_hardirq};

/// `race!(name, body, [tags])`: a race scenario, run in the stress frame;
/// the body returns `TestResult` or `Ran`.
macro_rules! race {
    ($name:ident, $body:path, [$($tag:ident),* $(,)?]) => {
        Test {
            name: stringify!($name),
            run: |env| scenario(env, stringify!($name), |run| $body(run).map_err(Stop::from)),
            needs: Needs::gsis(NEED_GSIS),
            tags: &[$(Tag::$tag,)* Tag::Race],
        }
    };
}

/// The race scenarios, in catalogue order.
pub const TESTS: &[Test] = &[
    race!(race_r1_hup_vs_deassign, teardown::r1, [Core]),
    race!(race_r2_hup_vs_running_shutdown, teardown::r2, []),
    race!(race_r3_inject_vs_shutdown, injection::r3, [Inject, Core]),
    race!(race_r4_release_vs_hup, teardown::r4, [Core]),
    race!(race_r5_eventfd_refcount, refcount::r5, []),
    race!(race_r6_assign_vs_deassign, assign::r6, []),
    race!(race_r7_hup_mid_assign, teardown::r7, []),
    race!(race_r8_pending_at_assign, injection::r8, [Inject]),
    race!(race_r9_counter_drain, injection::r9, []),
    race!(race_r10_duplicate_assign, assign::r10, []),
    race!(race_r11_deassign_recycled_fd, refcount::r11, []),
    race!(race_r12_teardown_vs_assign, teardown::r12, []),
    race!(race_r13_mass_release, teardown::r13, [Core]),
    race!(race_r13b_fdinfo_vs_teardown, fdinfo::r13b, [Core]),
    race!(race_r14_atomic_wakeup, locking::r14, []),
    race!(race_r15_hardirq_signal, locking::r15, [Inject, Hooks]),
    race!(race_r16_lock_order, locking::r16, []),
    race!(race_r17_flush_interplay, locking::r17, []),
    race!(race_r18_module_unload, module::r18, [Module]),
    race!(race_r19_wakeup_resignal, resample::r19, [Inject, Core]),
    race!(race_r20_resampler, resample::r20, [Inject, Core]),
    race!(race_r21_routing_update, routes::r21, [Inject, Core, Hooks]),
    race!(
        race_r21b_route_vs_deassign,
        routes::r21b,
        [Inject, Core, Hooks]
    ),
    race!(race_r21c_route_writers, routes::r21c, [Inject, Core, Hooks]),
    race!(race_r22_target_swap, injection::r22, [Inject]),
    race!(race_r23_assign_error_paths, assign::r23, []),
];

// The first GSI the scenarios use (`harness::G`); they use `G .. G + 4`.
use crate::harness::G;
/// GSIs a context needs for the scenarios.
const NEED_GSIS: u32 = 8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_catalogue_ordered_and_prefixed() {
        // An entry is `race_r<number>[<letter>]_...`: R13b comes after R13.
        let mut last = (0, String::new());
        for t in TESTS {
            let rest = t.name.strip_prefix("race_r").expect(t.name);
            let id = rest.split('_').next().unwrap();
            let digits = id.find(|c: char| !c.is_ascii_digit()).unwrap_or(id.len());
            let n: u32 = id[..digits].parse().unwrap();
            let key = (n, id[digits..].to_string());
            assert!(key > last, "{} out of order", t.name);
            last = key;
        }
        assert_eq!(TESTS.len(), 26);
    }
}

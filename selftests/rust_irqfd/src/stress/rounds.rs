// SPDX-License-Identifier: GPL-2.0
//! The round protocol of the scenarios that race one interleaving at a
//! time. In each round the leader (thread 0) prepares alone (fresh
//! eventfds, the values it hands over); a first rendezvous lets every
//! racer (threads 1 .. parties) run one step of the race at the same
//! moment, the leader too if it races; a second one waits until all of
//! them are done; then the leader checks the round alone (the oracle).
//!
//! [`Rounds`] owns that protocol: the two waits around each race, leaving
//! the loops quietly when the rendezvous is cancelled (a thread failed, or
//! a wait timed out: that thread or [`Run::round_workers`] reports it),
//! the leader's loop condition (at least one round, then until the budget
//! is over), and at the leader's end the stop of the budget and the
//! cancel of the rendezvous, which let the racers and the free-running
//! threads leave theirs. A scenario states only its threads, its race and
//! its oracle:
//!
//! ```text
//! let rounds = run.rounds(&b, 2);
//! run.round_workers(&rounds, 3, |w| match w.idx {
//!     0 => rounds.lead(w, |w, round, race| {
//!         ... prepare round `round` ...
//!         race.run()?;  // or: let v = race.join(w, |w| the leader's step)?;
//!         ... check it ...
//!         Ok(())
//!     }),
//!     1 => rounds.racer(w, |w| ... one step of the race ...),
//!     _ => ... a free-running thread (a reader) until the budget is over ...,
//! })
//! ```
//!
//! The waits are those of the hand-written loops the scenarios had:
//! the leader `wait, [its step], wait` per race, a racer
//! `while wait { step; if !wait { break } }`; a round with two races
//! (R14) is two `race.run()`/`race.join()` of the leader and two steps of
//! each racer.

use std::cell::Cell;

use super::threads::{Budget, Rendezvous, Run, Worker};
use crate::harness::TestResult;

/// Why a round of the leader ended early.
#[derive(Debug, PartialEq, Eq)]
pub enum Cut {
    /// The rendezvous was cancelled: a thread failed or a wait timed out,
    /// and that is reported elsewhere. The leader leaves its loop quietly.
    Cancelled,
    /// The round failed: what was expected and what was got.
    Fail(String),
}

impl From<String> for Cut {
    fn from(m: String) -> Self {
        Cut::Fail(m)
    }
}

impl From<&str> for Cut {
    fn from(m: &str) -> Self {
        Cut::Fail(m.to_string())
    }
}

/// The rounds of one scenario (or one phase of it): a rendezvous of the
/// leader and its racers, and the budget the leader's loop runs on.
pub struct Rounds<'b> {
    budget: &'b Budget,
    rv: Rendezvous,
}

impl<'e> Run<'e> {
    /// The rounds of `parties` threads (the leader, thread 0, and its
    /// racers, threads 1 .. parties) over `budget`.
    pub fn rounds<'b>(&self, budget: &'b Budget, parties: usize) -> Rounds<'b> {
        Rounds {
            budget,
            rv: self.rendezvous(parties),
        }
    }

    /// Runs `n` threads of `f` (each gets its [`Worker`]) over the budget
    /// of `rounds`: its leader and racers, threads 0 .. parties, and any
    /// free-running threads after them. A failing thread stops the budget
    /// and cancels the rendezvous; a wait that timed out is a failure.
    pub fn round_workers<F>(&self, rounds: &Rounds<'_>, n: usize, f: F) -> TestResult
    where
        F: Fn(&mut Worker<'_>) -> TestResult + Sync,
    {
        self.spawn(rounds.budget, n, Some(&rounds.rv), f)
    }
}

impl Rounds<'_> {
    /// The leader's loop (thread 0): `round(w, n, race)` for rounds n = 0,
    /// 1, ...: at least one, then until the budget is over. Each prepares
    /// its round, lets it race through `race` (once per race of the
    /// round) and checks it. A cancelled rendezvous ends the loop quietly;
    /// a failure ends it with that failure (the thread frame then stops
    /// the budget and cancels the rendezvous). At the end the leader stops
    /// the budget and cancels the rendezvous: the racers leave their loops.
    pub fn lead(
        &self,
        w: &mut Worker<'_>,
        mut round: impl FnMut(&mut Worker<'_>, u64, &Race<'_>) -> Result<(), Cut>,
    ) -> TestResult {
        let race = Race {
            rv: &self.rv,
            races: Cell::new(0),
        };
        let mut n = 0;
        while w.more_rounds(n) {
            race.races.set(0);
            match round(w, n, &race) {
                Ok(()) => {}
                Err(Cut::Cancelled) => break,
                Err(Cut::Fail(m)) => return Err(m),
            }
            if race.races.get() == 0 {
                return Err(format!("internal: round {n} of the leader ran no race"));
            }
            n += 1;
        }
        self.budget.stop();
        self.rv.cancel();
        Ok(())
    }

    /// A racer's loop: `step` once per race, between its two rendezvous,
    /// until the rendezvous is cancelled (by the leader at its end, or
    /// because a thread failed); a failure of `step` ends it.
    pub fn racer(
        &self,
        w: &mut Worker<'_>,
        mut step: impl FnMut(&mut Worker<'_>) -> TestResult,
    ) -> TestResult {
        while self.rv.wait() {
            step(w)?;
            if !self.rv.wait() {
                break;
            }
        }
        Ok(())
    }
}

/// The leader's hold on the race of its current round.
pub struct Race<'a> {
    rv: &'a Rendezvous,
    races: Cell<u32>,
}

impl Race<'_> {
    /// One race in which the leader takes no part: the racers run their
    /// step, the leader waits until they are done.
    pub fn run(&self) -> Result<(), Cut> {
        self.races.set(self.races.get() + 1);
        if !self.rv.wait() || !self.rv.wait() {
            return Err(Cut::Cancelled);
        }
        Ok(())
    }

    /// One race in which the leader races too: `step` runs at the same
    /// time as the racers' steps, and its value comes back once they are
    /// all done. A failing `step` fails the round at once.
    pub fn join<T>(
        &self,
        w: &mut Worker<'_>,
        step: impl FnOnce(&mut Worker<'_>) -> Result<T, String>,
    ) -> Result<T, Cut> {
        self.races.set(self.races.get() + 1);
        if !self.rv.wait() {
            return Err(Cut::Cancelled);
        }
        let v = step(w)?;
        if !self.rv.wait() {
            return Err(Cut::Cancelled);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::super::threads::test_env;
    use super::super::{lock, Slot, StressCfg};
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::time::Duration;

    fn short(secs: f64) -> StressCfg {
        StressCfg {
            secs,
            ops: u64::MAX,
            kmemleak: crate::stress::Kmemleak::Off,
        }
    }

    /// The round structure of the scenarios (leader sets up, two
    /// rendezvous per round, racers loop until cancelled, a free-running
    /// thread until the budget stops) ends on the budget, in every thread,
    /// and every racer steps once per round.
    #[test]
    fn rounds_terminate_on_the_budget() {
        let env = test_env(short(0.05));
        let run = Run::for_tests(&env);
        let b = run.budget(1.0);
        let rounds = run.rounds(&b, 3);
        let slot = Slot::new();
        let done = AtomicU64::new(0);
        let r = run.round_workers(&rounds, 4, |w| match w.idx {
            0 => {
                rounds.lead(w, |_, round, race| {
                    slot.put(round);
                    race.run()?;
                    done.store(round + 1, Relaxed);
                    Ok(())
                })?;
                assert!(w.over());
                Ok(())
            }
            1 | 2 => rounds.racer(w, |w| {
                w.op();
                if w.idx == 1 {
                    slot.take("round")?;
                }
                Ok(())
            }),
            _ => w.repeat(|_| {
                std::thread::yield_now();
                Ok(())
            }),
        });
        assert_eq!(r, Ok(()));
        let n = done.load(Relaxed);
        assert!(n >= 1);
        assert_eq!(lock(&run.tally).ops, 2 * n);
    }

    /// At least one round however small the budget; the leader's step runs
    /// between the rendezvous, its value comes back; two races a round
    /// are two steps of each racer.
    #[test]
    fn one_round_at_least_and_two_races() {
        let env = test_env(short(0.0));
        let run = Run::for_tests(&env);
        let b = run.budget(1.0);
        let rounds = run.rounds(&b, 2);
        let steps = AtomicU64::new(0);
        let got = AtomicU64::new(0);
        let r = run.round_workers(&rounds, 2, |w| match w.idx {
            0 => rounds.lead(w, |w, round, race| {
                assert_eq!(round, 0);
                race.run()?;
                assert_eq!(steps.load(Relaxed), 1);
                let v = race.join(w, |_| Ok(7))?;
                got.store(v, Relaxed);
                assert_eq!(steps.load(Relaxed), 2);
                Ok(())
            }),
            _ => rounds.racer(w, |_| {
                steps.fetch_add(1, Relaxed);
                Ok(())
            }),
        });
        assert_eq!(r, Ok(()));
        assert_eq!(got.load(Relaxed), 7);
        assert_eq!(steps.load(Relaxed), 2);
    }

    /// A failing racer cancels the rendezvous: the leader leaves quietly
    /// and the failure is the racer's. A failing leader step releases the
    /// racers. A round without a race is a bug of the scenario.
    #[test]
    fn failures_release_everyone() {
        let env = test_env(short(3600.0));
        let run = Run::for_tests(&env);
        let b = run.budget(1.0);
        let rounds = run.rounds(&b, 2);
        let r = run.round_workers(&rounds, 2, |w| match w.idx {
            0 => rounds.lead(w, |_, _, race| race.run()),
            _ => rounds.racer(w, |_| Err("racer".into())),
        });
        assert_eq!(r, Err("thread 1: racer".to_string()));

        let b = run.budget(1.0);
        let rounds = run.rounds(&b, 3);
        let r = run.round_workers(&rounds, 3, |w| match w.idx {
            0 => rounds.lead(w, |w, _, race| {
                race.join(w, |_| Err::<(), _>("leader".into()))
            }),
            _ => rounds.racer(w, |_| Ok(())),
        });
        assert_eq!(r, Err("thread 0: leader".to_string()));

        let b = run.budget(1.0);
        let rounds = run.rounds(&b, 2);
        let r = run.round_workers(&rounds, 2, |w| match w.idx {
            0 => rounds.lead(w, |_, _, _| Ok(())),
            _ => rounds.racer(w, |_| Ok(())),
        });
        assert!(r.unwrap_err().contains("ran no race"));
    }

    /// A racer that never comes makes the leader's wait time out: a
    /// failure of the scenario, not a hang.
    #[test]
    fn a_missing_racer_times_out() {
        let env = test_env(short(3600.0));
        let run = Run::for_tests(&env);
        let b = run.budget(1.0);
        let rounds = Rounds {
            budget: &b,
            rv: Rendezvous::new(2, Duration::from_millis(30)),
        };
        let r = run.round_workers(&rounds, 1, |w| rounds.lead(w, |_, _, race| race.run()));
        assert!(r.unwrap_err().contains("did not reach the rendezvous"));
    }
}
